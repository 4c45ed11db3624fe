package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Key file names under the data directory.
const (
	KeyFile       = "audit-key"     // the note signer key (PRIVATE+KEY+...), mode 0600
	PublicKeyFile = "audit-key.pub" // the note verifier key, to give auditors
)

// Signer signs checkpoints with an Ed25519 note key. Its name is the log's
// origin (the first line of every checkpoint).
type Signer struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

// NewSigner parses a note signer key ("PRIVATE+KEY+name+hash+key", as
// note.GenerateKey writes) and derives its public verifier key.
func NewSigner(skey string) (*Signer, error) {
	skey = strings.TrimSpace(skey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit signer key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>
	// (the name has no "+", the key's base64 may).
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, errors.New("audit signer key: not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("audit signer key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("audit signer key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("audit verifier key: %w", err)
	}
	return &Signer{signer: s, verifier: v, vkey: vkey}, nil
}

// Name is the key name, which is also the log origin.
func (s *Signer) Name() string { return s.signer.Name() }

// PublicKey returns the verifier key in note format (name+hash+base64), the
// one string an auditor needs.
func (s *Signer) PublicKey() string { return s.vkey }

// Verifier returns the verifier of this signer's notes.
func (s *Signer) Verifier() note.Verifier { return s.verifier }

// LoadOrCreateSigner reads dir/audit-key, or creates it (with a fresh
// Ed25519 key named "portcullis/audit/<random>", so that every installation
// has its own origin) and writes the public key to dir/audit-key.pub.
func LoadOrCreateSigner(dir string) (*Signer, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKey(dir); err != nil {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read audit key: %w", err)
	}
	s, err := NewSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pubPath := filepath.Join(dir, PublicKeyFile)
	if _, err := os.Stat(pubPath); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileSync(pubPath, []byte(s.vkey+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("write audit public key: %w", err)
		}
	}
	return s, nil
}

// createKey writes a new key to a temporary file and links it into place, so
// that two processes racing get the same key and a crash leaves no half file.
func createKey(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create audit key: %w", err)
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("create audit key: %w", err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, "portcullis/audit/"+hex.EncodeToString(suffix[:]))
	if err != nil {
		return fmt.Errorf("create audit key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".audit-key-*")
	if err != nil {
		return fmt.Errorf("create audit key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("create audit key: %w", err)
	}
	if _, err := tmp.WriteString(skey + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("create audit key: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("create audit key: %w", err)
	}
	if err := os.Link(tmp.Name(), filepath.Join(dir, KeyFile)); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create audit key: %w", err)
	}
	return syncDir(dir)
}

func writeFileSync(path string, b []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// LoadVerifier reads a note verifier key (as in audit-key.pub) from a file.
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read audit public key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestParseCheckpoint(t *testing.T) {
	l, _ := testLog(t)
	appendN(t, l, 0, 3)
	sc, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := bytes.Cut(sc.Note, []byte("\n\n"))
	lines := bytes.Split(text, []byte("\n"))
	if len(lines) != 3 || string(lines[0]) != l.signer.Name() || string(lines[1]) != "3" {
		t.Errorf("checkpoint body = %q, want origin, size and root", text)
	}
	if _, err := ParseCheckpoint(sc.Note, l.verifier); err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateSigner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCheckpoint(sc.Note, other.Verifier()); !errors.Is(err, ErrBadCheckpoint) {
		t.Errorf("checkpoint verified with another key: %v", err)
	}
	// A key with the same name but another secret is still another key.
	forger, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), l.signer.Name())
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewSigner(forger)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := signCheckpoint(Checkpoint{Origin: l.signer.Name(), Size: 3, Root: make([]byte, 32)}, fs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCheckpoint(forged, l.verifier); !errors.Is(err, ErrBadCheckpoint) {
		t.Errorf("forged checkpoint verified: %v", err)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	s, err := NewSigner(mustKey(f))
	if err != nil {
		f.Fatal(err)
	}
	good, err := signCheckpoint(Checkpoint{Origin: s.Name(), Size: 3, Root: make([]byte, 32)}, s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("origin\n1\nAAAA\n\n— x y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b, s.Verifier())
		if err == nil && (c.Origin != s.Name() || len(c.Root) != 32) {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}

func mustKey(f *testing.F) string {
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)), "portcullis/audit/fuzz")
	if err != nil {
		f.Fatal(err)
	}
	return skey
}

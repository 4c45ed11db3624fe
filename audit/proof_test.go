package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// checkpointsAt appends records and signs a checkpoint at each size; it
// returns the checkpoints as an auditor gets them: parsed from the note.
func checkpointsAt(t *testing.T, l *Log, v note.Verifier, sizes ...int) []Checkpoint {
	t.Helper()
	ctx := context.Background()
	var out []Checkpoint
	n := 0
	for _, size := range sizes {
		appendN(t, l, n, size-n)
		n = size
		sc, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := ParseCheckpoint(sc.Note, v)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != uint64(size) {
			t.Fatalf("checkpoint size %d, want %d", cp.Size, size)
		}
		out = append(out, cp)
	}
	return out
}

func flip(h [][]byte, i int) [][]byte {
	c := make([][]byte, len(h))
	for j := range h {
		c[j] = bytes.Clone(h[j])
	}
	c[i][0] ^= 1
	return c
}

func TestInclusionProofs(t *testing.T) {
	ctx := context.Background()
	l, dir := testLog(t)
	v, err := LoadVerifier(dir + "/" + PublicKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cps := checkpointsAt(t, l, v, 1, 2, 5, 8, 13, 21, 37)
	for _, cp := range cps {
		for i := range cp.Size {
			e, err := l.Get(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			p, err := l.InclusionProof(ctx, i, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(cp, e.Leaf, p); err != nil {
				t.Fatalf("record %d in %d: %v", i, cp.Size, err)
			}
			// Altered: every way must fail.
			if len(p.Hashes) > 0 {
				bad := p
				bad.Hashes = flip(p.Hashes, len(p.Hashes)-1)
				if err := VerifyInclusion(cp, e.Leaf, bad); !errors.Is(err, ErrProof) {
					t.Errorf("record %d in %d: altered hash verified (%v)", i, cp.Size, err)
				}
			}
			leaf := bytes.Replace(e.Leaf, []byte(`"reason `), []byte(`"REASON `), 1)
			if err := VerifyInclusion(cp, leaf, p); !errors.Is(err, ErrProof) {
				t.Errorf("record %d in %d: altered leaf verified (%v)", i, cp.Size, err)
			}
			if cp.Size > 1 {
				moved := p
				moved.Index = (i + 1) % cp.Size
				if err := VerifyInclusion(cp, e.Leaf, moved); !errors.Is(err, ErrProof) {
					t.Errorf("record %d in %d: proof for another index verified (%v)", i, cp.Size, err)
				}
			}
			other := cp
			other.Root = flip([][]byte{cp.Root}, 0)[0]
			if err := VerifyInclusion(other, e.Leaf, p); !errors.Is(err, ErrProof) {
				t.Errorf("record %d in %d: verified against another root (%v)", i, cp.Size, err)
			}
		}
	}
	if _, err := l.InclusionProof(ctx, 37, 37); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("proof of index 37 in 37: %v, want ErrOutOfRange", err)
	}
	if _, err := l.InclusionProof(ctx, 0, 38); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("proof in a tree larger than the log: %v, want ErrOutOfRange", err)
	}
}

func TestConsistencyProofs(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	cps := checkpointsAt(t, l, l.verifier, 1, 2, 3, 4, 7, 8, 9, 16, 31)
	for a := range cps {
		for b := a; b < len(cps); b++ {
			older, newer := cps[a], cps[b]
			p, err := l.ConsistencyProof(ctx, older.Size, newer.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(older, newer, p); err != nil {
				t.Fatalf("%d -> %d: %v", older.Size, newer.Size, err)
			}
			if len(p.Hashes) > 0 {
				bad := p
				bad.Hashes = flip(p.Hashes, 0)
				if err := VerifyConsistency(older, newer, bad); !errors.Is(err, ErrProof) {
					t.Errorf("%d -> %d: altered proof verified (%v)", older.Size, newer.Size, err)
				}
			}
			if a != b {
				forked := older
				forked.Root = flip([][]byte{older.Root}, 0)[0]
				if err := VerifyConsistency(forked, newer, p); !errors.Is(err, ErrProof) {
					t.Errorf("%d -> %d: a rewritten history verified (%v)", older.Size, newer.Size, err)
				}
				if err := VerifyConsistency(newer, older, p); !errors.Is(err, ErrProof) {
					t.Errorf("%d -> %d: swapped checkpoints verified (%v)", older.Size, newer.Size, err)
				}
			}
		}
	}
	for _, bad := range [][2]uint64{{0, 5}, {6, 5}, {5, 32}} {
		if _, err := l.ConsistencyProof(ctx, bad[0], bad[1]); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("ConsistencyProof(%d, %d) = %v, want ErrOutOfRange", bad[0], bad[1], err)
		}
	}
}

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

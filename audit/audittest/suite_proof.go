package audittest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
	"golang.org/x/mod/sumdb/note"
)

// checkpointsAt appends records and signs a checkpoint at each size; it
// returns the checkpoints as an auditor gets them: parsed from the note.
func checkpointsAt(t *testing.T, l *audit.Log, v note.Verifier, sizes ...int) []audit.Checkpoint {
	t.Helper()
	ctx := context.Background()
	var out []audit.Checkpoint
	n := 0
	for _, size := range sizes {
		AppendN(t, l, n, size-n)
		n = size
		sc, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := audit.ParseCheckpoint(sc.Note, v)
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

func testInclusionProofs(t *testing.T, h Harness) {
	ctx := context.Background()
	l, dir := newLog(t, h)
	v, err := audit.LoadVerifier(dir + "/" + audit.PublicKeyFile)
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
			if err := audit.VerifyInclusion(cp, e.Leaf, p); err != nil {
				t.Fatalf("record %d in %d: %v", i, cp.Size, err)
			}
			// Altered: every way must fail.
			if len(p.Hashes) > 0 {
				bad := p
				bad.Hashes = flip(p.Hashes, len(p.Hashes)-1)
				if err := audit.VerifyInclusion(cp, e.Leaf, bad); !errors.Is(err, audit.ErrProof) {
					t.Errorf("record %d in %d: altered hash verified (%v)", i, cp.Size, err)
				}
			}
			leaf := bytes.Replace(e.Leaf, []byte(`"reason `), []byte(`"REASON `), 1)
			if err := audit.VerifyInclusion(cp, leaf, p); !errors.Is(err, audit.ErrProof) {
				t.Errorf("record %d in %d: altered leaf verified (%v)", i, cp.Size, err)
			}
			if cp.Size > 1 {
				moved := p
				moved.Index = (i + 1) % cp.Size
				if err := audit.VerifyInclusion(cp, e.Leaf, moved); !errors.Is(err, audit.ErrProof) {
					t.Errorf("record %d in %d: proof for another index verified (%v)", i, cp.Size, err)
				}
			}
			other := cp
			other.Root = flip([][]byte{cp.Root}, 0)[0]
			if err := audit.VerifyInclusion(other, e.Leaf, p); !errors.Is(err, audit.ErrProof) {
				t.Errorf("record %d in %d: verified against another root (%v)", i, cp.Size, err)
			}
		}
	}
	if _, err := l.InclusionProof(ctx, 37, 37); !errors.Is(err, audit.ErrOutOfRange) {
		t.Errorf("proof of index 37 in 37: %v, want audit.ErrOutOfRange", err)
	}
	if _, err := l.InclusionProof(ctx, 0, 38); !errors.Is(err, audit.ErrOutOfRange) {
		t.Errorf("proof in a tree larger than the log: %v, want audit.ErrOutOfRange", err)
	}
}

func testConsistencyProofs(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h)
	cps := checkpointsAt(t, l, l.Verifier(), 1, 2, 3, 4, 7, 8, 9, 16, 31)
	for a := range cps {
		for b := a; b < len(cps); b++ {
			older, newer := cps[a], cps[b]
			p, err := l.ConsistencyProof(ctx, older.Size, newer.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := audit.VerifyConsistency(older, newer, p); err != nil {
				t.Fatalf("%d -> %d: %v", older.Size, newer.Size, err)
			}
			if len(p.Hashes) > 0 {
				bad := p
				bad.Hashes = flip(p.Hashes, 0)
				if err := audit.VerifyConsistency(older, newer, bad); !errors.Is(err, audit.ErrProof) {
					t.Errorf("%d -> %d: altered proof verified (%v)", older.Size, newer.Size, err)
				}
			}
			if a != b {
				forked := older
				forked.Root = flip([][]byte{older.Root}, 0)[0]
				if err := audit.VerifyConsistency(forked, newer, p); !errors.Is(err, audit.ErrProof) {
					t.Errorf("%d -> %d: a rewritten history verified (%v)", older.Size, newer.Size, err)
				}
				if err := audit.VerifyConsistency(newer, older, p); !errors.Is(err, audit.ErrProof) {
					t.Errorf("%d -> %d: swapped checkpoints verified (%v)", older.Size, newer.Size, err)
				}
			}
		}
	}
	for _, bad := range [][2]uint64{{0, 5}, {6, 5}, {5, 32}} {
		if _, err := l.ConsistencyProof(ctx, bad[0], bad[1]); !errors.Is(err, audit.ErrOutOfRange) {
			t.Errorf("ConsistencyProof(%d, %d) = %v, want audit.ErrOutOfRange", bad[0], bad[1], err)
		}
	}
}

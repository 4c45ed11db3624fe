package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Remote is a log read from elsewhere, as through its HTTP API: what
// VerifyRemote needs of it.
type Remote interface {
	// Checkpoints returns every signed checkpoint note.
	Checkpoints(ctx context.Context) ([][]byte, error)
	// Search returns one page of the records matching f.
	Search(ctx context.Context, f Filter) (Page, error)
	// ConsistencyProof proves the tree of size from a prefix of that of size to.
	ConsistencyProof(ctx context.Context, from, to uint64) (ConsistencyProof, error)
}

// VerifyRemote downloads every checkpoint and every record of r and checks
// them as Log.Verify does, with v, except the database's own columns and
// head, which a remote log does not expose; served leaf hashes are
// recomputed, never trusted. The remote's consistency proofs between
// consecutive checkpoints are checked too.
func VerifyRemote(ctx context.Context, r Remote, v note.Verifier) (VerifyReport, error) {
	if v == nil {
		return VerifyReport{}, errors.New("audit verify: no public key")
	}
	notes, err := r.Checkpoints(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	stored := make([]StoredCheckpoint, 0, len(notes))
	for _, n := range notes {
		sc, err := parseStored(StoredCheckpoint{Signed: n})
		if err != nil {
			return VerifyReport{}, &TamperError{Index: -1, Reason: err.Error()}
		}
		stored = append(stored, StoredCheckpoint{Size: sc.Size, Signed: n})
	}
	vf, err := newVerification(stored, v, false)
	if err != nil {
		return VerifyReport{}, err
	}
	f := Filter{Ascending: true, Limit: MaxLimit}
	for {
		p, err := r.Search(ctx, f)
		if err != nil {
			return VerifyReport{}, err
		}
		for _, e := range p.Entries {
			if err := vf.add(StoredLeaf{Index: e.Index, Leaf: e.Leaf, LeafHash: e.LeafHash}); err != nil {
				return VerifyReport{}, err
			}
		}
		if p.Next == "" {
			break
		}
		if f.After, err = ParseCursor(p.Next); err != nil {
			return VerifyReport{}, err
		}
	}
	rep, err := vf.finish(nil)
	if err != nil {
		return rep, err
	}
	for i := 1; i < len(vf.cps); i++ {
		older, newer := vf.cps[i-1], vf.cps[i]
		if older.Size == 0 {
			continue
		}
		p, err := r.ConsistencyProof(ctx, older.Size, newer.Size)
		if err != nil {
			return rep, err
		}
		if err := VerifyConsistency(older, newer, p); err != nil {
			return rep, &TamperError{Index: -1, Checkpoint: newer.Size, Reason: err.Error()}
		}
	}
	return rep, nil
}

// VerifyProved checks offline a Proved (from Log.Prove or the HTTP API's client):
// the checkpoint's signature with v, then the record's inclusion in it.
func VerifyProved(p Proved, v note.Verifier) (Checkpoint, error) {
	if p.Checkpoint == "" || p.Proof == nil {
		return Checkpoint{}, fmt.Errorf("record %d is not covered by a checkpoint yet", p.Entry.Index)
	}
	cp, err := ParseCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		return Checkpoint{}, err
	}
	if p.Proof.Index != p.Entry.Index {
		return cp, fmt.Errorf("%w: proof is for record %d, not %d", ErrProof, p.Proof.Index, p.Entry.Index)
	}
	return cp, VerifyInclusion(cp, p.Entry.Leaf, *p.Proof)
}

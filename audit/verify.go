package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// ErrTampered is wrapped by every *TamperError.
var ErrTampered = errors.New("audit log verification failed")

// TamperError says where the log stops matching itself or its signed
// checkpoints.
type TamperError struct {
	// Index is the first bad (changed, missing or moved) record, or -1 when
	// the failure is a checkpoint's alone (say, a forged signature).
	Index int64
	// Checkpoint is the size of the checkpoint involved, if any.
	Checkpoint uint64
	Reason     string
}

func (e *TamperError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%v: checkpoint of size %d: %s", ErrTampered, e.Checkpoint, e.Reason)
	}
	return fmt.Sprintf("%v: record %d: %s", ErrTampered, e.Index, e.Reason)
}

func (e *TamperError) Unwrap() error { return ErrTampered }

// VerifyReport is the result of a successful Verify.
type VerifyReport struct {
	// Size is the number of records, all checked.
	Size uint64 `json:"size"`
	// Root is the recomputed root hash of the whole log.
	Root []byte `json:"root"`
	// Checkpoints is how many signed checkpoints matched the recomputed tree.
	Checkpoints int `json:"checkpoints"`
	// LatestCheckpoint is the size of the latest one.
	LatestCheckpoint uint64 `json:"latestCheckpoint"`
	// Unanchored counts the records after the latest checkpoint: they are
	// consistent, but not yet covered by a signature.
	Unanchored uint64 `json:"unanchored"`
}

// Verify recomputes the whole tree from the stored records and checks, in
// one pass: that indexes run 0, 1, 2... with none missing; that each record's
// leaf hash, embedded index and indexed columns match; that every stored
// checkpoint is signed by the verifier's key and commits to the recomputed
// tree at its size; that consecutive checkpoints (and the head) are
// consistent through the stored subtree hashes that proofs are built from.
// It returns a *TamperError (wrapping ErrTampered) naming the first bad
// record, or another error if the log could not be read. Cost: O(n) reads,
// hashes and JSON decodes, O(log n) memory.
func (l *Log) Verify(ctx context.Context) (VerifyReport, error) {
	if l.verifier == nil {
		return VerifyReport{}, errors.New("audit verify: no public key (WithVerifier)")
	}
	cps, err := l.store.Checkpoints(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	v, err := newVerification(cps, l.verifier, true)
	if err != nil {
		return VerifyReport{}, err
	}
	// Verify the log as of now; appends made meanwhile are left for next time.
	head, err := l.store.Size(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	err = l.store.Scan(ctx, 0, func(sl StoredLeaf) error {
		if sl.Index >= head {
			return errStop
		}
		return v.add(sl)
	})
	if err != nil && !errors.Is(err, errStop) {
		return VerifyReport{}, err
	}
	rep, err := v.finish(&head)
	if err != nil {
		return rep, err
	}
	if err := l.checkNoRowsBeyondHead(ctx); err != nil {
		return rep, err
	}
	// Proofs are served from stored nodes: check them along the checkpoints.
	sizes := make([]uint64, 0, len(v.cps)+1)
	for _, c := range v.cps {
		if c.Size > 0 {
			sizes = append(sizes, c.Size)
		}
	}
	if rep.Size > 0 && (len(sizes) == 0 || sizes[len(sizes)-1] != rep.Size) {
		sizes = append(sizes, rep.Size)
	}
	roots := map[uint64][]byte{rep.Size: rep.Root}
	for _, c := range v.cps {
		roots[c.Size] = c.Root
	}
	for i := 1; i < len(sizes); i++ {
		from, to := sizes[i-1], sizes[i]
		p, err := consistencyProof(ctx, l.store, from, to)
		if err == nil {
			err = VerifyConsistency(Checkpoint{Size: from, Root: roots[from]}, Checkpoint{Size: to, Root: roots[to]}, p)
		}
		if err != nil {
			return rep, &TamperError{Index: -1, Checkpoint: to, Reason: fmt.Sprintf("stored subtree hashes give no valid consistency proof from %d: %v", from, err)}
		}
	}
	return rep, nil
}

// checkNoRowsBeyondHead finds records stored past the tree head, which no
// append wrote (they would show in queries without being in the tree). A
// concurrent append moves the head first, so reading it after seeing the
// row tells the two apart.
func (l *Log) checkNoRowsBeyondHead(ctx context.Context) error {
	head, err := l.store.Size(ctx)
	if err != nil {
		return err
	}
	var extra *uint64
	err = l.store.Scan(ctx, head, func(sl StoredLeaf) error {
		extra = &sl.Index
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if extra == nil {
		return nil
	}
	if now, err := l.store.Size(ctx); err != nil || now > *extra {
		return err // appended meanwhile
	}
	return &TamperError{Index: int64(*extra), Reason: fmt.Sprintf("stored beyond the tree head (%d records): inserted in the database", head)}
}

// verification checks leaves streamed in index order against checkpoints.
type verification struct {
	cps          []Checkpoint // verified, by increasing size
	next         int          // first checkpoint not reached yet
	rng          *compact.Range
	matched      uint64 // size of the last checkpoint that matched
	checkColumns bool
}

func newVerification(stored []StoredCheckpoint, v note.Verifier, checkColumns bool) (*verification, error) {
	vf := &verification{rng: rangeFactory.NewEmptyRange(0), checkColumns: checkColumns}
	for _, sc := range stored {
		c, err := ParseCheckpoint(sc.Signed, v)
		if err != nil {
			return nil, &TamperError{Index: -1, Checkpoint: sc.Size, Reason: err.Error()}
		}
		if c.Size != sc.Size {
			return nil, &TamperError{Index: -1, Checkpoint: sc.Size, Reason: fmt.Sprintf("stored as size %d but signed for size %d", sc.Size, c.Size)}
		}
		vf.cps = append(vf.cps, c)
	}
	slices.SortFunc(vf.cps, func(a, b Checkpoint) int { return compareUint(a.Size, b.Size) })
	if err := vf.reach(); err != nil {
		return nil, err
	}
	return vf, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// reach compares the tree with the checkpoints of its current size.
func (vf *verification) reach() error {
	size := vf.rng.End()
	for vf.next < len(vf.cps) && vf.cps[vf.next].Size == size {
		c := vf.cps[vf.next]
		if !bytes.Equal(rootOf(vf.rng), c.Root) {
			return &TamperError{Index: int64(vf.matched), Checkpoint: c.Size, Reason: fmt.Sprintf(
				"the records [%d, %d) do not hash to the signed checkpoint of size %d: one of them (from %d on) was rewritten together with its stored hash",
				vf.matched, c.Size, c.Size, vf.matched)}
		}
		vf.matched = size
		vf.next++
	}
	return nil
}

func (vf *verification) add(sl StoredLeaf) error {
	want := vf.rng.End()
	bad := func(format string, a ...any) error {
		return &TamperError{Index: int64(want), Reason: fmt.Sprintf(format, a...)}
	}
	if sl.Index != want {
		return bad("missing (deleted?): the next stored record is %d", sl.Index)
	}
	h := LeafHash(sl.Leaf)
	if !bytes.Equal(h, sl.LeafHash) {
		return bad("content changed: its leaf hash does not match the stored one")
	}
	idx, r, err := decodeLeaf(sl.Leaf)
	if err != nil {
		return bad("not a valid record: %v", err)
	}
	if idx != sl.Index {
		return bad("holds the record of index %d (records reordered?)", idx)
	}
	if vf.checkColumns && ColumnsOf(r) != sl.Columns {
		return bad("indexed columns differ from the hashed record (edited in the database)")
	}
	if err := vf.rng.Append(h, nil); err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	return vf.reach()
}

// finish checks what remains once every leaf was added; head is the size the
// store says it has, if known.
func (vf *verification) finish(head *uint64) (VerifyReport, error) {
	size := vf.rng.End()
	rep := VerifyReport{Size: size, Root: rootOf(vf.rng), Checkpoints: vf.next}
	if vf.next < len(vf.cps) {
		c := vf.cps[vf.next]
		return rep, &TamperError{Index: int64(size), Checkpoint: c.Size, Reason: fmt.Sprintf(
			"missing: the log ends at %d records but a signed checkpoint covers %d", size, c.Size)}
	}
	if head != nil && *head != size {
		first := min(*head, size)
		return rep, &TamperError{Index: int64(first), Reason: fmt.Sprintf(
			"the tree head says %d records but %d are stored", *head, size)}
	}
	if vf.next > 0 {
		rep.LatestCheckpoint = vf.cps[vf.next-1].Size
	}
	rep.Unanchored = size - rep.LatestCheckpoint
	return rep, nil
}

package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// InclusionProof proves that the leaf at Index is in the tree of TreeSize
// leaves (RFC 6962 section 2.1.1 audit path).
type InclusionProof struct {
	Index    uint64   `json:"index"`
	TreeSize uint64   `json:"treeSize"`
	Hashes   [][]byte `json:"hashes"`
}

// ConsistencyProof proves that the tree of From leaves is a prefix of the
// tree of To leaves (RFC 6962 section 2.1.2).
type ConsistencyProof struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes [][]byte `json:"hashes"`
}

// ErrProof is wrapped by the errors of VerifyInclusion and VerifyConsistency.
var ErrProof = errors.New("proof does not verify")

// VerifyInclusion checks offline that leaf (an Entry's Leaf bytes) is at
// p.Index in the tree committed to by cp, a checkpoint verified with
// ParseCheckpoint. It also checks that the leaf names p.Index itself.
func VerifyInclusion(cp Checkpoint, leaf []byte, p InclusionProof) error {
	if p.TreeSize != cp.Size {
		return fmt.Errorf("%w: proof for tree size %d, checkpoint has %d", ErrProof, p.TreeSize, cp.Size)
	}
	idx, _, err := decodeLeaf(leaf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProof, err)
	}
	if idx != p.Index {
		return fmt.Errorf("%w: leaf says index %d, proof is for %d", ErrProof, idx, p.Index)
	}
	if err := proof.VerifyInclusion(hasher, p.Index, p.TreeSize, LeafHash(leaf), p.Hashes, cp.Root); err != nil {
		return fmt.Errorf("%w: record %d in tree of size %d: %w", ErrProof, p.Index, p.TreeSize, err)
	}
	return nil
}

// VerifyConsistency checks offline that checkpoint older is a prefix of
// checkpoint newer (both verified with ParseCheckpoint): the history up to
// older.Size was not rewritten.
func VerifyConsistency(older, newer Checkpoint, p ConsistencyProof) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: origins %q and %q differ", ErrProof, older.Origin, newer.Origin)
	}
	if p.From != older.Size || p.To != newer.Size {
		return fmt.Errorf("%w: proof is %d->%d, checkpoints are %d->%d", ErrProof, p.From, p.To, older.Size, newer.Size)
	}
	if err := proof.VerifyConsistency(hasher, p.From, p.To, p.Hashes, older.Root, newer.Root); err != nil {
		return fmt.Errorf("%w: consistency %d->%d: %w", ErrProof, p.From, p.To, err)
	}
	return nil
}

// Proofs are computed from stored nodes: each needs O(log n) node reads
// (level 0 from records, perfect subtrees from tree_nodes) and rehashing of
// at most one ephemeral node, so cost does not grow with the log.

func inclusionProof(ctx context.Context, s TreeStore, index, size uint64) (InclusionProof, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("inclusion proof: %w", err)
	}
	hashes, err := s.Nodes(ctx, nodes.IDs)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("inclusion proof %d in %d: %w", index, size, err)
	}
	h, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("inclusion proof %d in %d: %w", index, size, err)
	}
	return InclusionProof{Index: index, TreeSize: size, Hashes: nonNil(h)}, nil
}

func consistencyProof(ctx context.Context, s TreeStore, from, to uint64) (ConsistencyProof, error) {
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("consistency proof: %w", err)
	}
	hashes, err := s.Nodes(ctx, nodes.IDs)
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("consistency proof %d->%d: %w", from, to, err)
	}
	h, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("consistency proof %d->%d: %w", from, to, err)
	}
	return ConsistencyProof{From: from, To: to, Hashes: nonNil(h)}, nil
}

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// loadRange reads the compact range [0, size) from the store.
func loadRange(ctx context.Context, s TreeStore, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := s.Nodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load tree of size %d: %w", size, err)
	}
	return rangeFactory.NewRange(0, size, hashes)
}

// rootOf returns the root hash of a compact range starting at 0.
func rootOf(r *compact.Range) []byte {
	if r.End() == 0 {
		return hasher.EmptyRoot()
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		panic(err) // unreachable: all ranges here begin at 0
	}
	return root
}

func cloneRange(r *compact.Range) *compact.Range {
	h := make([][]byte, len(r.Hashes()))
	copy(h, r.Hashes())
	c, err := rangeFactory.NewRange(r.Begin(), r.End(), h)
	if err != nil {
		panic(err) // unreachable: same shape as r
	}
	return c
}

func nonNil(h [][]byte) [][]byte {
	if h == nil {
		return [][]byte{}
	}
	return h
}

package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Page is one page of a search.
type Page struct {
	Entries []Entry `json:"decisions"`
	// Next is the opaque cursor of the next page; empty on the last page.
	Next string `json:"nextCursor,omitempty"`
}

// ParseCursor parses a cursor from Page.Next ("" is the first page).
func ParseCursor(s string) (*uint64, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bad cursor %q", s)
	}
	return &n, nil
}

// Search returns one page of the records matching f. The page has a
// cursor only when more records match: the store is asked for one record
// more than the page holds.
func (l *Log) Search(ctx context.Context, f Filter) (Page, error) {
	limit := f.limit()
	probe := f
	probe.Limit = limit + 1
	leaves, err := l.store.Search(ctx, probe)
	if err != nil {
		return Page{}, err
	}
	more := len(leaves) > limit
	leaves = leaves[:min(len(leaves), limit)]
	p := Page{Entries: make([]Entry, 0, len(leaves))}
	for _, sl := range leaves {
		e, err := entryOf(sl)
		if err != nil {
			return Page{}, err
		}
		p.Entries = append(p.Entries, e)
	}
	if more {
		p.Next = strconv.FormatUint(leaves[len(leaves)-1].Index, 10)
	}
	return p, nil
}

func entryOf(sl StoredLeaf) (Entry, error) {
	_, r, err := decodeLeaf(sl.Leaf)
	if err != nil {
		return Entry{}, fmt.Errorf("record %d: %w", sl.Index, err)
	}
	return Entry{Index: sl.Index, Leaf: sl.Leaf, LeafHash: sl.LeafHash, Record: r}, nil
}

var errStop = errors.New("stop")

// Get returns the record at index.
func (l *Log) Get(ctx context.Context, index uint64) (Entry, error) {
	var found *StoredLeaf
	err := l.store.Scan(ctx, index, func(sl StoredLeaf) error {
		if sl.Index == index {
			found = &sl
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return Entry{}, err
	}
	if found == nil {
		return Entry{}, fmt.Errorf("record %d: %w", index, ErrNotFound)
	}
	return entryOf(*found)
}

// Running returns what is running as far as admissions tell: per
// (Kubernetes namespace, workload kind, workload name, image digest), the
// latest admit or break-glass record that let it run (verdict allow, or
// any verdict admitted in warn mode: Enforcement "warn"), with the
// evidence it was admitted on. The log sees admissions, not deletions: a workload deleted
// since is still listed. namespace "" lists every namespace.
func (l *Log) Running(ctx context.Context, namespace string) ([]Entry, error) {
	leaves, err := l.store.Running(ctx, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(leaves))
	for _, sl := range leaves {
		e, err := entryOf(sl)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// InclusionProof proves record index is in the tree of treeSize records
// (treeSize must be at most Size; normally a checkpoint's size).
func (l *Log) InclusionProof(ctx context.Context, index, treeSize uint64) (InclusionProof, error) {
	size, err := l.store.Size(ctx)
	if err != nil {
		return InclusionProof{}, err
	}
	if treeSize > size || index >= treeSize {
		return InclusionProof{}, fmt.Errorf("inclusion proof of %d in a tree of %d (log has %d records): %w", index, treeSize, size, ErrOutOfRange)
	}
	return inclusionProof(ctx, l.store, index, treeSize)
}

// ConsistencyProof proves the tree of from records is a prefix of the tree
// of to records (0 < from <= to <= Size).
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) (ConsistencyProof, error) {
	size, err := l.store.Size(ctx)
	if err != nil {
		return ConsistencyProof{}, err
	}
	if from == 0 || from > to || to > size {
		return ConsistencyProof{}, fmt.Errorf("consistency proof %d->%d (log has %d records): %w", from, to, size, ErrOutOfRange)
	}
	return consistencyProof(ctx, l.store, from, to)
}

// ErrOutOfRange is returned for proofs about sizes or indexes the log does not have.
var ErrOutOfRange = errors.New("out of range")

// Proved is a record with its inclusion proof against a checkpoint: all an
// auditor needs, with the public key, to check it offline.
type Proved struct {
	Entry      Entry  `json:"decision"`
	Checkpoint string `json:"checkpoint,omitempty"` // signed note
	// Proof is nil when no checkpoint covers the record yet.
	Proof *InclusionProof `json:"inclusionProof,omitempty"`
}

// Prove returns record index with its inclusion proof against the checkpoint
// of treeSize records, or the latest checkpoint when treeSize is 0.
func (l *Log) Prove(ctx context.Context, index, treeSize uint64) (Proved, error) {
	e, err := l.Get(ctx, index)
	if err != nil {
		return Proved{}, err
	}
	cp, err := l.store.Checkpoint(ctx, treeSize)
	switch {
	case errors.Is(err, ErrNotFound) && treeSize != 0:
		return Proved{}, fmt.Errorf("no checkpoint of size %d: %w", treeSize, ErrNotFound)
	case errors.Is(err, ErrNotFound):
		return Proved{Entry: e}, nil
	case err != nil:
		return Proved{}, err
	}
	out := Proved{Entry: e, Checkpoint: string(cp.Signed)}
	if index >= cp.Size {
		return out, nil
	}
	p, err := inclusionProof(ctx, l.store, index, cp.Size)
	if err != nil {
		return Proved{}, err
	}
	out.Proof = &p
	return out, nil
}

// Export writes the records matching f as JSON lines (one Entry per line,
// oldest first); f's order, cursor and limit are ignored.
func (l *Log) Export(ctx context.Context, w io.Writer, f Filter) error {
	return ExportPages(ctx, w, f, l.Search)
}

// ExportPages writes, as Log.Export does, the records that search pages
// through: a local log's Search or a remote one's.
func ExportPages(ctx context.Context, w io.Writer, f Filter, search func(context.Context, Filter) (Page, error)) error {
	f.Ascending, f.After, f.Limit = true, nil, MaxLimit
	enc := json.NewEncoder(w)
	for {
		p, err := search(ctx, f)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for _, e := range p.Entries {
			if err := enc.Encode(e); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		if p.Next == "" {
			return nil
		}
		if f.After, err = ParseCursor(p.Next); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
}

// AdmittedSince reports whether digest was let run at or after since: an
// admit or break-glass record with verdict allow. Garbage collection's
// "admitted recently" retention asks it.
func (l *Log) AdmittedSince(ctx context.Context, digest string, since time.Time) (bool, error) {
	for _, action := range []string{ActionAdmit, ActionBreakGlass} {
		p, err := l.Search(ctx, Filter{Digest: digest, Action: action, Verdict: VerdictAllow, Since: since, Limit: 1})
		if err != nil {
			return false, fmt.Errorf("audit: admissions of %s: %w", digest, err)
		}
		if len(p.Entries) > 0 {
			return true, nil
		}
	}
	return false, nil
}

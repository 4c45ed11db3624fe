package audit

import (
	"context"
	"errors"
	"time"

	"github.com/transparency-dev/merkle/compact"
)

// Store persists the log. SQLite implements it (OpenSQLite); a PostgreSQL
// implementation for several replicas can follow: Append's compare-and-set on
// the tree size is what makes several writers safe.
type Store interface {
	TreeStore
	CheckpointStore
	Searcher
	Close() error
}

// TreeStore holds leaves and the hashes of the tree's perfect subtrees.
type TreeStore interface {
	// Size returns the number of leaves.
	Size(ctx context.Context) (uint64, error)
	// Nodes returns the hashes of the given nodes: level 0 are leaf hashes,
	// higher levels are perfect subtrees stored by Append. A missing node is
	// an error wrapping ErrNotFound.
	Nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error)
	// Append stores leaves [size, size+len(leaves)) and the new subtree nodes
	// in one durable transaction, if the log still has size leaves;
	// otherwise it returns ErrConflict and stores nothing.
	Append(ctx context.Context, size uint64, leaves []StoredLeaf, nodes []Node) error
	// Scan calls fn for every stored leaf with index >= from, in the order
	// of the stored index (which Verify checks is 0, 1, 2...).
	Scan(ctx context.Context, from uint64, fn func(StoredLeaf) error) error
}

// CheckpointStore keeps signed checkpoints.
type CheckpointStore interface {
	// AddCheckpoint stores a signed checkpoint for its tree size (once).
	AddCheckpoint(ctx context.Context, size uint64, signed []byte) error
	// Checkpoints returns the stored signed checkpoints by increasing size.
	Checkpoints(ctx context.Context) ([]StoredCheckpoint, error)
	// Checkpoint returns the checkpoint of tree size size, or the latest
	// if size is 0; ErrNotFound if there is none.
	Checkpoint(ctx context.Context, size uint64) (StoredCheckpoint, error)
}

// Searcher answers the auditors' queries.
type Searcher interface {
	// Search returns at most f.Limit leaves matching f (up to MaxLimit+1,
	// so that Log.Search learns whether a page is the last; 0 means
	// DefaultLimit), after f.After, in the order that Filter.Ascending
	// describes.
	Search(ctx context.Context, f Filter) ([]StoredLeaf, error)
	// Running returns, per (namespace, workload kind, workload name, image
	// digest), the last admit or break-glass leaf that let the workload
	// run: allowed, or admitted in warn mode (Record.Enforcement).
	Running(ctx context.Context, namespace string) ([]StoredLeaf, error)
}

// StoredLeaf is a leaf as the store holds it.
type StoredLeaf struct {
	Index    uint64
	Leaf     []byte
	LeafHash []byte
	// Columns are the indexed fields, kept apart from Leaf for queries.
	Columns Columns
}

// Node is the hash of a perfect subtree (level >= 1).
type Node struct {
	ID   compact.NodeID
	Hash []byte
}

// StoredCheckpoint is a signed checkpoint note as stored.
type StoredCheckpoint struct {
	Size   uint64
	Signed []byte
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("log size changed concurrently")
)

// Filter selects records. Empty fields match everything.
type Filter struct {
	Digest string
	// Repository matches the subject's or the target's repository.
	Repository string
	Action     string
	Verdict    string
	// Actor matches the identity, the Kubernetes user or the service account.
	Actor          string
	PolicyRevision string
	// Namespace matches the target namespace.
	Namespace string
	// Since and Until bound the record time: Since <= time < Until.
	Since, Until time.Time
	// Ascending lists oldest first; the default is newest first. A search
	// bounded in time (Since or Until set) is ordered by record time, then
	// index; any other search by index, which is the order of appending.
	// The two differ only where the gate's decision times are out of order.
	Ascending bool
	// After is the cursor: list records after (in the listing order) this
	// index. Nil starts at the beginning.
	After *uint64
	// Limit caps the result (1..MaxLimit; 0 means DefaultLimit).
	Limit int
}

// Limits of a Search.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

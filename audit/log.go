package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// Log is the append-only, tamper-evident decision log. It is safe for
// concurrent use; concurrent Appends are committed together (group commit),
// one durable transaction per batch.
type Log struct {
	store    Store
	signer   *Signer
	verifier note.Verifier
	opts     options
	log      *slog.Logger

	queueMu sync.Mutex
	queue   []*pending

	// mu is held by the goroutine committing a batch or a checkpoint; it
	// guards the fields below.
	mu       sync.Mutex
	rng      *compact.Range // the tree [0, size) as a compact range
	lastCP   uint64         // size of the latest checkpoint (0 if none)
	hasCP    bool
	lastCPAt time.Time
}

type pending struct {
	rec  Record
	done chan appendResult // buffered (1)
}

type appendResult struct {
	entry Entry
	err   error
}

// Verifier returns the key the log's checkpoints are checked with
// (WithVerifier, or the signer's), nil if it has none.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// OpenSQLite opens (creating if needed) the log in the SQLite file at path.
func OpenSQLite(ctx context.Context, path string, opts ...Option) (*Log, error) {
	return openStore(ctx, opts, func(o options) (*sqlStore, error) { return openSQLiteStore(ctx, path, o.readOnly) })
}

// OpenPostgres opens (creating if needed) the log in the PostgreSQL
// database at dsn, which several replicas may append to at once.
func OpenPostgres(ctx context.Context, dsn string, opts ...Option) (*Log, error) {
	return openStore(ctx, opts, func(o options) (*sqlStore, error) {
		if o.readOnly {
			return nil, errors.New("a read-only log on PostgreSQL: connect with a read-only role instead")
		}
		return openPostgresStore(ctx, dsn)
	})
}

// openStore builds the options, opens the store with them and the log on
// it; the store is closed if the log cannot open.
func openStore(ctx context.Context, opts []Option, openS func(options) (*sqlStore, error)) (*Log, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	s, err := openS(o)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l, err := open(ctx, s, o)
	if err != nil {
		s.Close()
		return nil, err
	}
	return l, nil
}

// Open opens a log on any Store (the Log then owns it and closes it).
func Open(ctx context.Context, s Store, opts ...Option) (*Log, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return open(ctx, s, o)
}

func buildOptions(opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	if !o.readOnly && o.signer == nil {
		return o, errors.New("audit: a writable log needs a signer (WithSigner)")
	}
	if o.verifier == nil && o.signer != nil {
		o.verifier = o.signer.Verifier()
	}
	return o, nil
}

func open(ctx context.Context, s Store, o options) (*Log, error) {
	l := &Log{store: s, signer: o.signer, verifier: o.verifier, opts: o, log: o.logger}
	if err := l.reload(ctx); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if n := len(cps); n > 0 {
		l.lastCP, l.hasCP = cps[n-1].Size, true
	}
	l.lastCPAt = time.Now()
	return l, nil
}

// reload reads the tree head from the store. Callers hold mu (or own l).
func (l *Log) reload(ctx context.Context) error {
	size, err := l.store.Size(ctx)
	if err != nil {
		return err
	}
	rng, err := loadRange(ctx, l.store, size)
	if err != nil {
		return err
	}
	l.rng = rng
	return nil
}

// Close writes a last checkpoint if records are not covered by one yet
// (writable logs), then closes the store.
func (l *Log) Close() error {
	var err error
	if !l.opts.readOnly {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l.mu.Lock()
		if !l.hasCP || l.rng.End() > l.lastCP {
			_, err = l.checkpointLocked(ctx)
		}
		l.mu.Unlock()
		cancel()
	}
	return errors.Join(err, l.store.Close())
}

// Size returns the number of records in the log.
func (l *Log) Size(ctx context.Context) (uint64, error) { return l.store.Size(ctx) }

// Append durably records r and returns its entry. A zero r.Time is set to
// now. Append returns only after the record is committed (fsync); a
// concurrent batch shares the commit. The context is checked before the
// record is queued: once queued, the record is written even if ctx ends.
func (l *Log) Append(ctx context.Context, r Record) (Entry, error) {
	if l.opts.readOnly {
		return Entry{}, fmt.Errorf("audit append: %w", errReadOnly)
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("audit append: %w", err)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	if err := r.Validate(); err != nil {
		return Entry{}, err
	}
	p := &pending{rec: r, done: make(chan appendResult, 1)}
	l.queueMu.Lock()
	l.queue = append(l.queue, p)
	l.queueMu.Unlock()

	// Whoever holds mu commits the queue, oldest first, in batches, until
	// its own record is done (a previous holder may have done it).
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		select {
		case res := <-p.done:
			return res.entry, res.err
		default:
		}
		l.queueMu.Lock()
		n := min(len(l.queue), l.opts.maxBatch)
		batch := l.queue[:n:n]
		l.queue = l.queue[n:]
		l.queueMu.Unlock()
		l.commitLocked(context.WithoutCancel(ctx), batch)
	}
}

// commitLocked writes one batch; every pending gets its result.
func (l *Log) commitLocked(ctx context.Context, batch []*pending) {
	// Another writer (a replica on the same database) may append between
	// our read of the tree and our commit: then re-read and renumber, after
	// a short random pause so that two busy writers do not collide again.
	const attempts = 100
	var err error
	for attempt := range attempts {
		if attempt > 0 {
			time.Sleep(time.Duration(rand.IntN(1+min(attempt, 10)*500)) * time.Microsecond)
		}
		var entries []Entry
		entries, err = l.tryCommit(ctx, batch)
		if err == nil {
			for i, p := range batch {
				p.done <- appendResult{entry: entries[i]}
			}
			l.maybeCheckpointLocked(ctx)
			return
		}
		if !errors.Is(err, ErrConflict) {
			break
		}
		// Another writer appended: re-read the tree and renumber.
		if rerr := l.reload(ctx); rerr != nil {
			err = errors.Join(err, rerr)
			break
		}
	}
	for _, p := range batch {
		p.done <- appendResult{err: fmt.Errorf("audit append: %w", err)}
	}
}

func (l *Log) tryCommit(ctx context.Context, batch []*pending) ([]Entry, error) {
	rng := cloneRange(l.rng)
	size := rng.End()
	leaves := make([]StoredLeaf, len(batch))
	entries := make([]Entry, len(batch))
	var nodes []Node
	visit := func(id compact.NodeID, h []byte) {
		if id.Level > 0 {
			nodes = append(nodes, Node{ID: id, Hash: h})
		}
	}
	for i, p := range batch {
		idx := size + uint64(i)
		leaf, err := encodeLeaf(idx, p.rec)
		if err != nil {
			return nil, err
		}
		h := LeafHash(leaf)
		if err := rng.Append(h, visit); err != nil {
			return nil, fmt.Errorf("extend tree: %w", err)
		}
		leaves[i] = StoredLeaf{Index: idx, Leaf: leaf, LeafHash: h, Columns: ColumnsOf(p.rec)}
		entries[i] = Entry{Index: idx, Leaf: leaf, LeafHash: h, Record: p.rec}
	}
	if err := l.store.Append(ctx, size, leaves, nodes); err != nil {
		return nil, err
	}
	l.rng = rng
	return entries, nil
}

// AppendAll records rs in one transaction (for imports and tests); the
// records are validated first and none is written if one is invalid.
func (l *Log) AppendAll(ctx context.Context, rs []Record) ([]Entry, error) {
	if l.opts.readOnly {
		return nil, fmt.Errorf("audit append: %w", errReadOnly)
	}
	batch := make([]*pending, len(rs))
	for i, r := range rs {
		if r.Time.IsZero() {
			r.Time = time.Now()
		}
		r.Time = r.Time.UTC()
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("record %d of %d: %w", i, len(rs), err)
		}
		batch[i] = &pending{rec: r, done: make(chan appendResult, 1)}
	}
	l.mu.Lock()
	l.commitLocked(ctx, batch)
	l.mu.Unlock()
	out := make([]Entry, len(batch))
	for i, p := range batch {
		res := <-p.done
		if res.err != nil {
			return nil, res.err
		}
		out[i] = res.entry
	}
	return out, nil
}

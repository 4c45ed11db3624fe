package audit

import (
	"context"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
)

// TestPostgresTwoReplicas appends through two Logs on one database at
// once, as two replicas do: every acknowledged record is in the log at the
// index it was given, with no index given twice, and the whole log
// verifies against the checkpoints both signed.
func TestPostgresTwoReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	s, err := LoadOrCreateSigner(dir) // replicas share the audit key
	if err != nil {
		t.Fatal(err)
	}
	var logs [2]*Log
	for i := range logs {
		l, err := OpenPostgres(ctx, dsn, WithSigner(s), WithCheckpointEvery(25, 1<<62), WithMaxBatch(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		logs[i] = l
	}
	const perWriter, writers = 40, 4
	var mu sync.Mutex
	got := map[uint64]Entry{}
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for i := range logs {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range perWriter {
					e, err := logs[i].Append(ctx, record(i*1000+w*100+n))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if prev, dup := got[e.Index]; dup {
						t.Errorf("index %d given twice: %s and %s", e.Index, prev.Record.Reasons, e.Record.Reasons)
					}
					got[e.Index] = e
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	want := uint64(len(logs) * writers * perWriter)
	if size, err := logs[0].Size(ctx); err != nil || size != want || uint64(len(got)) != want {
		t.Fatalf("size %d (%v), %d acknowledged; want %d", size, err, len(got), want)
	}
	for idx, e := range got {
		stored, err := logs[1].Get(ctx, idx)
		if err != nil {
			t.Fatalf("Get(%d): %v", idx, err)
		}
		if string(stored.Leaf) != string(e.Leaf) {
			t.Fatalf("record %d: stored leaf differs from the one acknowledged", idx)
		}
	}
	if _, err := logs[0].Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := logs[1].Verify(ctx)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Size != want || rep.Checkpoints == 0 {
		t.Fatalf("Verify checked %d records against %d checkpoints, want %d and at least one", rep.Size, rep.Checkpoints, want)
	}
}

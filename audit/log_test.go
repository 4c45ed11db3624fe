package audit

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestAppendAndGet(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	for i := range 3 {
		r := record(i)
		e, err := l.Append(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if e.Index != uint64(i) {
			t.Errorf("index = %d, want %d", e.Index, i)
		}
		if !bytes.Equal(e.LeafHash, LeafHash(e.Leaf)) {
			t.Errorf("leaf hash is not SHA-256(0x00 || leaf)")
		}
		got, err := l.Get(ctx, e.Index)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Record, r) {
			t.Errorf("Get(%d).Record = %+v, want %+v", i, got.Record, r)
		}
		if !bytes.Equal(got.Leaf, e.Leaf) {
			t.Errorf("Get(%d).Leaf differs from the appended leaf", i)
		}
	}
	if _, err := l.Get(ctx, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(3) error = %v, want ErrNotFound", err)
	}
}

func TestAppendSetsTimeAndValidates(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	before := time.Now()
	e, err := l.Append(ctx, Record{Action: ActionAdmit, Verdict: VerdictError, Error: "tag did not resolve"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Record.Time.Before(before) || e.Record.Time.Location() != time.UTC {
		t.Errorf("time = %v, want now in UTC", e.Record.Time)
	}
	for _, bad := range []Record{
		{Action: "erase", Verdict: VerdictAllow},
		{Action: ActionPush, Verdict: "maybe"},
		{Action: ActionBreakGlass, Verdict: VerdictAllow},
		{Action: ActionAdmit, Verdict: VerdictDeny, Enforcement: "audit"},
	} {
		if _, err := l.Append(ctx, bad); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Append(%+v) error = %v, want ErrInvalidRecord", bad, err)
		}
	}
	if n, _ := l.Size(ctx); n != 1 {
		t.Errorf("size = %d after invalid appends, want 1", n)
	}
}

func TestReopenKeepsTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	l, err := OpenSQLite(ctx, path, WithSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 21)
	cp1, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := LoadOrCreateSigner(dir) // the same key again
	if err != nil {
		t.Fatal(err)
	}
	if s2.PublicKey() != s.PublicKey() {
		t.Fatal("LoadOrCreateSigner made a new key on reopen")
	}
	l, err = OpenSQLite(ctx, path, WithSigner(s2))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es := appendN(t, l, 21, 12)
	if es[0].Index != 21 {
		t.Fatalf("first index after reopen = %d, want 21", es[0].Index)
	}
	cp2, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.ConsistencyProof(ctx, cp1.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(cp1.Checkpoint, cp2.Checkpoint, p); err != nil {
		t.Fatalf("history before reopen is not a prefix of the one after: %v", err)
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 33 || rep.Checkpoints != 2 || rep.Unanchored != 0 {
		t.Errorf("report = %+v, want size 33, 2 checkpoints, none unanchored", rep)
	}
}

func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t, WithCheckpointEvery(37, time.Hour), WithMaxBatch(3))
	const goroutines, each = 16, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []Entry
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e, err := l.Append(ctx, record(g*each+i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got = append(got, e)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b Entry) int { return compareUint(a.Index, b.Index) })
	for i, e := range got {
		if e.Index != uint64(i) {
			t.Fatalf("indexes are not 0..%d without gaps: position %d has %d", goroutines*each-1, i, e.Index)
		}
		stored, err := l.Get(ctx, e.Index)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored.Leaf, e.Leaf) {
			t.Fatalf("record %d: returned entry differs from the stored one", e.Index)
		}
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != goroutines*each || rep.Checkpoints < (goroutines*each)/37 {
		t.Errorf("report = %+v", rep)
	}
}

func TestCheckpointsEveryNRecords(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t, WithCheckpointEvery(10, time.Hour))
	for i := range 25 {
		if _, err := l.Append(ctx, record(i)); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := l.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []uint64
	for _, c := range cps {
		sizes = append(sizes, c.Size)
	}
	if !slices.Equal(sizes, []uint64{10, 20}) {
		t.Errorf("checkpoint sizes = %v, want [10 20]", sizes)
	}
	// On demand, and not twice for the same size.
	c1, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c1.Size != 25 || !bytes.Equal(c1.Note, c2.Note) {
		t.Errorf("on-demand checkpoints: %d and %d, notes equal %v", c1.Size, c2.Size, bytes.Equal(c1.Note, c2.Note))
	}
}

func TestRunCheckpointsIdleLog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l, _ := testLog(t, WithCheckpointEvery(1000, 20*time.Millisecond))
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	appendN(t, l, 0, 3)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := l.LatestCheckpoint(ctx)
		if err == nil && c.Size == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of the 3 records after 5s (latest %v, %v)", c.Size, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseCheckpointsUnanchoredRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	l, err := OpenSQLite(ctx, path, WithSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenSQLite(ctx, path, ReadOnly(), WithVerifier(s.Verifier()))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LatestCheckpoint != 5 {
		t.Errorf("latest checkpoint after Close = %d, want 5", rep.LatestCheckpoint)
	}
	if _, err := ro.Append(ctx, record(0)); err == nil {
		t.Error("Append on a read-only log succeeded")
	}
}

func TestOpenNeedsSigner(t *testing.T) {
	if _, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db")); err == nil {
		t.Fatal("OpenSQLite without a signer succeeded")
	}
	if _, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "missing.db"), ReadOnly()); err == nil {
		t.Fatal("read-only open of a missing file succeeded")
	}
}

func TestVerifyDuringAppends(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t, WithCheckpointEvery(20, time.Hour))
	done := make(chan error)
	go func() {
		for i := range 300 {
			if _, err := l.Append(ctx, record(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for verified := 0; ; verified++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if verified == 0 {
				t.Log("appends finished before the first Verify")
			}
			if _, err := l.Verify(ctx); err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		if _, err := l.Verify(ctx); err != nil {
			t.Fatalf("Verify during appends: %v", err)
		}
	}
}

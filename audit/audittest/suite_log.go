package audittest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

func testAppendAndGet(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h)
	for i := range 3 {
		r := Record(i)
		e, err := l.Append(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if e.Index != uint64(i) {
			t.Errorf("index = %d, want %d", e.Index, i)
		}
		if !bytes.Equal(e.LeafHash, audit.LeafHash(e.Leaf)) {
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
	if _, err := l.Get(ctx, 3); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("Get(3) error = %v, want audit.ErrNotFound", err)
	}
}

func testAppendSetsTimeAndValidates(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h)
	before := time.Now()
	e, err := l.Append(ctx, audit.Record{Action: audit.ActionAdmit, Verdict: audit.VerdictError, Error: "tag did not resolve"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Record.Time.Before(before) || e.Record.Time.Location() != time.UTC {
		t.Errorf("time = %v, want now in UTC", e.Record.Time)
	}
	for _, bad := range []audit.Record{
		{Action: "erase", Verdict: audit.VerdictAllow},
		{Action: audit.ActionPush, Verdict: "maybe"},
		{Action: audit.ActionBreakGlass, Verdict: audit.VerdictAllow},
		{Action: audit.ActionAdmit, Verdict: audit.VerdictDeny, Enforcement: "audit"},
	} {
		if _, err := l.Append(ctx, bad); !errors.Is(err, audit.ErrInvalidRecord) {
			t.Errorf("Append(%+v) error = %v, want audit.ErrInvalidRecord", bad, err)
		}
	}
	if n, _ := l.Size(ctx); n != 1 {
		t.Errorf("size = %d after invalid appends, want 1", n)
	}
}

// testConcurrentAppends: appends from many goroutines at once (committed
// in shared batches) get indexes 0..n-1 without gaps, the entries they
// return are the stored ones, and the log verifies. The goroutines start
// together, and the test checks that appends were in flight at the same
// time: run one after the other, it would test nothing.
func testConcurrentAppends(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h, audit.WithCheckpointEvery(37, time.Hour), audit.WithMaxBatch(3))
	const goroutines, each = 16, 25
	var (
		wg, ready     sync.WaitGroup
		start         = make(chan struct{})
		mu            sync.Mutex // guards the three below
		inFlight, top int        // appends called and not returned; the most at once
		got           []audit.Entry
	)
	errs := make(chan error, goroutines)
	ready.Add(goroutines)
	for g := range goroutines {
		wg.Go(func() {
			ready.Done()
			<-start
			for i := range each {
				mu.Lock()
				inFlight++
				top = max(top, inFlight)
				mu.Unlock()
				e, err := l.Append(ctx, Record(g*each+i))
				mu.Lock()
				inFlight--
				if err == nil {
					got = append(got, e)
				}
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b audit.Entry) int { return cmp.Compare(a.Index, b.Index) })
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
	if top < 2 {
		t.Errorf("at most %d append in flight at once: the appends did not overlap", top)
	}
	t.Logf("at most %d of %d goroutines' appends in flight at once", top, goroutines)
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != goroutines*each || rep.Checkpoints < (goroutines*each)/37 {
		t.Errorf("report = %+v", rep)
	}
}

func testCheckpointsEveryNRecords(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h, audit.WithCheckpointEvery(10, time.Hour))
	for i := range 25 {
		if _, err := l.Append(ctx, Record(i)); err != nil {
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

func testRunCheckpointsIdleLog(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	l, _ := newLog(t, h, audit.WithCheckpointEvery(1000, 20*time.Millisecond))
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	AppendN(t, l, 0, 3)
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

func testVerifyDuringAppends(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h, audit.WithCheckpointEvery(20, time.Hour))
	done := make(chan error)
	go func() {
		for i := range 300 {
			if _, err := l.Append(ctx, Record(i)); err != nil {
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

package scanner_test

import (
	"context"
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/scanner"
)

// panickingScanner panics, as a scanner reading a crafted image might.
type panickingScanner struct{}

func (panickingScanner) Scan(context.Context, digest.Digest, v1.Image) (*scanner.Report, error) {
	var r *scanner.Report
	return r, errors.New(r.Digest) // nil dereference
}

// TestQueueScanPanics: a scanner's panic, in a worker or in the caller's
// goroutine, is that scan's error for every waiter (I3); the queue keeps
// working.
func TestQueueScanPanics(t *testing.T) {
	c := newMemContent()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	d := c.add(t, img)
	q, err := scanner.NewQueue(panickingScanner{}, c, scanner.QueueOptions{Workers: 1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	// In a worker: the process would exit if it were not recovered.
	if !q.Enqueue(t.Context(), "staging/app", d) {
		t.Fatal("Enqueue refused")
	}
	for range 2 { // the second is scanned on demand, in this goroutine
		r, err := q.Report(t.Context(), "staging/app", d)
		var pe *panics.Error
		if r != nil || !errors.As(err, &pe) || pe.Where != "scanner.Scan" {
			t.Fatalf("Report = %v, %v; want no report and the recovered panic", r, err)
		}
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/scanner"
)

// askedContent is a scanner.Content that records which repositories a
// scan read and has nothing in them.
type askedContent struct {
	mu    sync.Mutex
	repos []string
}

func (c *askedContent) Manifest(_ context.Context, repo string, _ digest.Digest) (string, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.repos = append(c.repos, repo)
	return "", nil, errors.New("not found")
}

func (c *askedContent) OpenBlob(context.Context, string, digest.Digest) (io.ReadCloser, error) {
	return nil, errors.New("not found")
}

type noScanner struct{}

func (noScanner) Scan(context.Context, digest.Digest, v1.Image) (*scanner.Report, error) {
	return nil, errors.New("not reached")
}

// TestScanOnPushNamespace: scan on push for "staging" queues pushes to
// staging and below it, never to a repository that only shares the
// prefix (staging-old/, it once did: a raw HasPrefix).
func TestScanOnPushNamespace(t *testing.T) {
	t.Parallel()
	c := &askedContent{}
	q, err := scanner.NewQueue(noScanner{}, c, scanner.QueueOptions{Workers: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := &scanOnPush{prefixes: []string{"staging"}, log: slog.New(slog.DiscardHandler), q: q}
	for i, repo := range []string{"staging-old/app", "stagingapp", "staging/app", "team/staging", "staging"} {
		h.pushed(t.Context(), repo, digest.FromString(repo+string(rune('a'+i))))
	}
	// Close waits for every queued scan: each has read its manifest.
	if err := q.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(c.repos)
	if want := []string{"staging", "staging/app"}; !slices.Equal(c.repos, want) {
		t.Fatalf("scanned %q, want %q", c.repos, want)
	}
}

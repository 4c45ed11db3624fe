package scanner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullis-dev/portcullis/scanner"
)

// memContent is a scanner.Content over maps, filled from real images.
type memContent struct {
	mu        sync.Mutex
	manifests map[digest.Digest]memManifest
	blobs     map[digest.Digest][]byte
}

type memManifest struct {
	mt   string
	body []byte
}

func newMemContent() *memContent {
	return &memContent{manifests: map[digest.Digest]memManifest{}, blobs: map[digest.Digest][]byte{}}
}

// add stores img's manifest, config and layers and returns its digest.
func (c *memContent) add(t testing.TB, img v1.Image) digest.Digest {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cn, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.manifests[dg(d)] = memManifest{string(mt), raw}
	c.blobs[dg(cn)] = cfg
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		c.blobs[dg(ld)] = b
	}
	return dg(d)
}

// dg is h as the project's digest type.
func dg(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }

func (c *memContent) Manifest(_ context.Context, _ string, d digest.Digest) (string, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.manifests[d]
	if !ok {
		return "", nil, fmt.Errorf("manifest %s: not found", d)
	}
	return m.mt, m.body, nil
}

func (c *memContent) OpenBlob(_ context.Context, _ string, d digest.Digest) (io.ReadCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blobs[d]
	if !ok {
		return nil, fmt.Errorf("blob %s: not found", d)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestNewImage(t *testing.T) {
	c := newMemContent()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	d := c.add(t, img)
	got, err := scanner.NewImage(t.Context(), c, "staging/app", d)
	if err != nil {
		t.Fatal(err)
	}
	gd, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if dg(gd) != d {
		t.Fatalf("digest %s, want %s", gd, d)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("%d layers, want 2", len(layers))
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("reading a good layer: %v", err)
		}
		rc.Close()
	}

	t.Run("digest mismatch", func(t *testing.T) {
		ld, err := layers[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		orig := c.blobs[dg(ld)]
		bad := bytes.Clone(orig)
		bad[len(bad)/2] ^= 0xff
		c.mu.Lock()
		c.blobs[dg(ld)] = bad
		c.mu.Unlock()
		t.Cleanup(func() { c.mu.Lock(); c.blobs[dg(ld)] = orig; c.mu.Unlock() })
		img, err := scanner.NewImage(t.Context(), c, "staging/app", d)
		if err != nil {
			t.Fatal(err)
		}
		l, err := img.LayerByDigest(ld)
		if err != nil {
			t.Fatal(err)
		}
		// Compressed checks the whole blob before handing it out.
		rc, err := l.Compressed()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if !errors.Is(err, scanner.ErrImage) || !strings.Contains(err.Error(), "digest") {
			t.Fatalf("reading a corrupted layer: %v, want ErrImage about its digest", err)
		}
	})

	t.Run("not an image", func(t *testing.T) {
		idx, err := random.Index(64, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := idx.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		id, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		c.manifests[dg(id)] = memManifest{string(types.OCIImageIndex), raw}
		c.mu.Unlock()
		if _, err := scanner.NewImage(t.Context(), c, "staging/app", dg(id)); !errors.Is(err, scanner.ErrNotImage) {
			t.Fatalf("index: %v, want ErrNotImage", err)
		}
	})
}

// countingScanner is a Scanner that records its calls and reports no
// findings; DB digests come from db, so tests can "update the DB".
type countingScanner struct {
	calls   atomic.Int32
	started chan digest.Digest
	release chan struct{} // when not nil, each scan waits for it (or ctx)
	mu      sync.Mutex
	db      string
}

func (s *countingScanner) setDB(d string) { s.mu.Lock(); s.db = d; s.mu.Unlock() }

func (s *countingScanner) DBInfo(context.Context) (scanner.DBInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return scanner.DBInfo{Version: 2, Digest: s.db}, nil
}

func (s *countingScanner) Scan(ctx context.Context, d digest.Digest, img v1.Image) (*scanner.Report, error) {
	s.calls.Add(1)
	if s.started != nil {
		s.started <- d
	}
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// Read the image as a real scanner would.
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	info, _ := s.DBInfo(ctx)
	return &scanner.Report{Digest: d.String(), DB: info, Counts: map[string]int{}}, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestQueueScansOnceAndCaches(t *testing.T) {
	c := newMemContent()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	d := c.add(t, img)
	s := &countingScanner{db: "sha256:db1", started: make(chan digest.Digest, 10), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	q, err := scanner.NewQueue(s, c, scanner.QueueOptions{Workers: 2, Size: 4, Logger: quietLogger(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close(context.Background()) })

	if !q.Enqueue(t.Context(), "staging/app", d) {
		t.Fatal("first Enqueue refused")
	}
	<-s.started // the scan is running
	if q.Enqueue(t.Context(), "staging/app", d) {
		t.Fatal("Enqueue of a digest being scanned was accepted")
	}
	// Report waits for the running scan instead of starting another.
	type result struct {
		r   *scanner.Report
		err error
	}
	res := make(chan result, 1)
	go func() { r, err := q.Report(t.Context(), "staging/app", d); res <- result{r, err} }()
	close(s.release)
	got := <-res
	if got.err != nil || got.r.Digest != d.String() {
		t.Fatalf("Report = %+v, %v", got.r, got.err)
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d scans, want 1", n)
	}
	// Cached: neither a push nor a request scans again.
	if q.Enqueue(t.Context(), "staging/app", d) {
		t.Fatal("Enqueue of a cached digest was accepted")
	}
	if _, err := q.Report(t.Context(), "staging/app", d); err != nil {
		t.Fatal(err)
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d scans after cached requests, want 1", n)
	}
	if v := metricValue(t, reg, "portcullis_scan_cache_hits_total"); v < 1 {
		t.Fatalf("cache hits metric %v, want >= 1", v)
	}
	// A new database makes the cached report stale.
	s.setDB("sha256:db2")
	r, err := q.Report(t.Context(), "staging/app", d)
	if err != nil {
		t.Fatal(err)
	}
	if r.DB.Digest != "sha256:db2" || s.calls.Load() != 2 {
		t.Fatalf("after a DB update: report DB %q, %d scans; want db2 and 2 scans", r.DB.Digest, s.calls.Load())
	}
	if n, err := testutil.GatherAndCount(reg, "portcullis_scans_total"); err != nil || n == 0 {
		t.Fatalf("portcullis_scans_total not gathered: %d, %v", n, err)
	}
}

func TestQueueSkipsNonImages(t *testing.T) {
	c := newMemContent()
	idx, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	id, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c.manifests[dg(id)] = memManifest{string(types.OCIImageIndex), raw}
	s := &countingScanner{db: "sha256:db1"}
	q, err := scanner.NewQueue(s, c, scanner.QueueOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if !q.Enqueue(t.Context(), "staging/app", dg(id)) {
		t.Fatal("Enqueue refused")
	}
	if err := q.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := s.calls.Load(); n != 0 {
		t.Fatalf("an index was scanned %d times", n)
	}
}

func TestQueueBounded(t *testing.T) {
	c := newMemContent()
	s := &countingScanner{db: "sha256:db1", started: make(chan digest.Digest, 10), release: make(chan struct{})}
	q, err := scanner.NewQueue(s, c, scanner.QueueOptions{Workers: 1, Size: 1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var ds []digest.Digest
	for range 3 {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, c.add(t, img))
	}
	if !q.Enqueue(t.Context(), "r", ds[0]) {
		t.Fatal("first Enqueue refused")
	}
	<-s.started // the worker holds ds[0]; the queue is empty
	if !q.Enqueue(t.Context(), "r", ds[1]) {
		t.Fatal("second Enqueue refused with room in the queue")
	}
	if q.Enqueue(t.Context(), "r", ds[2]) {
		t.Fatal("Enqueue accepted beyond the queue size")
	}
	close(s.release)
	if err := q.Close(t.Context()); err != nil {
		t.Fatalf("Close (drain): %v", err)
	}
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d scans after drain, want 2", n)
	}
	if q.Enqueue(t.Context(), "r", ds[2]) {
		t.Fatal("Enqueue accepted after Close")
	}
}

func TestQueueCloseAbandons(t *testing.T) {
	c := newMemContent()
	s := &countingScanner{db: "sha256:db1", started: make(chan digest.Digest, 10), release: make(chan struct{})} // never released
	q, err := scanner.NewQueue(s, c, scanner.QueueOptions{Workers: 1, Size: 8, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !q.Enqueue(t.Context(), "r", c.add(t, img)) {
			t.Fatal("Enqueue refused")
		}
	}
	<-s.started
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = q.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with stuck scans: %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %s", took)
	}
	// Only the running scan started; the queued ones were dropped.
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d scans started, want 1", n)
	}
}

// metricValue sums the samples of a counter or gauge family.
func metricValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

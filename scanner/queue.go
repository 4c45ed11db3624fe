package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/panics"
)

// QueueOptions configures a [Queue]. Zero values take the defaults.
type QueueOptions struct {
	// Workers is how many scans run at once. Default 2.
	Workers int
	// Size bounds the scans waiting for a worker; Enqueue drops a scan
	// when the queue is full (it is then done on demand). Default 100.
	Size int
	// CacheSize bounds the cached reports; the oldest goes first.
	// Default 1024.
	CacheSize int
	// Logger receives progress. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the queue's metrics (portcullis_scan_*). Nil:
	// the metrics are kept but not registered.
	Registerer prometheus.Registerer
}

// Queue scans images in the background with a bounded pool of workers and
// a bounded queue, and caches reports by (image digest, database digest):
// asking twice costs one scan, and a database update makes every cached
// report stale. It reads images in-process through [Content].
type Queue struct {
	s    Scanner
	c    Content
	log  *slog.Logger
	opts QueueOptions
	m    queueMetrics

	jobs   chan job
	ctx    context.Context // the workers'; canceled to abandon scans
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	inflight map[digest.Digest]*call
	cache    map[cacheKey]*Report
	order    []cacheKey // insertion order, for eviction
}

type job struct {
	repo string
	d    digest.Digest
	c    *call
}

// call is one scan, queued or running, that others may wait for.
type call struct {
	done chan struct{}
	rep  *Report
	err  error
}

type cacheKey struct {
	image digest.Digest
	db    string
}

// NewQueue starts the workers. Close stops them.
func NewQueue(s Scanner, c Content, opts QueueOptions) (*Queue, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Size <= 0 {
		opts.Size = 100
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := newQueueMetrics()
	if opts.Registerer != nil {
		if err := m.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("scan queue metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		s: s, c: c, log: opts.Logger, opts: opts, m: m,
		jobs: make(chan job, opts.Size), ctx: ctx, cancel: cancel,
		inflight: map[digest.Digest]*call{}, cache: map[cacheKey]*Report{},
	}
	for range opts.Workers {
		q.wg.Add(1)
		go q.work()
	}
	return q, nil
}

// Enqueue queues a background scan of repo@d and reports whether it did:
// not when d is already queued or being scanned, when a report for the
// current database is cached, when the queue is full, or after Close. It
// never blocks.
func (q *Queue) Enqueue(ctx context.Context, repo string, d digest.Digest) bool {
	if _, ok := q.cached(ctx, d); ok {
		q.m.enqueued.WithLabelValues("cached").Inc()
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.m.enqueued.WithLabelValues("closed").Inc()
		return false
	}
	if _, ok := q.inflight[d]; ok {
		q.m.enqueued.WithLabelValues("duplicate").Inc()
		q.log.DebugContext(ctx, "scan already queued", "repo", repo, "digest", d.String())
		return false
	}
	c := &call{done: make(chan struct{})}
	select {
	case q.jobs <- job{repo: repo, d: d, c: c}:
	default:
		q.m.enqueued.WithLabelValues("dropped").Inc()
		q.log.WarnContext(ctx, "scan queue full: scan dropped, it will run on demand", "repo", repo, "digest", d.String(), "size", q.opts.Size)
		return false
	}
	q.inflight[d] = c
	q.m.enqueued.WithLabelValues("queued").Inc()
	q.m.depth.Set(float64(len(q.jobs)))
	q.log.InfoContext(ctx, "scan queued", "repo", repo, "digest", d.String(), "queued", len(q.jobs))
	return true
}

// Report returns the report for repo@d: from the cache when one was made
// with the current database, by waiting for a queued or running scan of
// d, or by scanning now in the caller's goroutine. Reports are shared
// between callers: do not modify them.
func (q *Queue) Report(ctx context.Context, repo string, d digest.Digest) (*Report, error) {
	if r, ok := q.cached(ctx, d); ok {
		q.m.cacheHits.Inc()
		return r, nil
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, errors.New("scan queue is closed")
	}
	c, waiting := q.inflight[d]
	if !waiting {
		c = &call{done: make(chan struct{})}
		q.inflight[d] = c
	}
	q.mu.Unlock()
	if !waiting {
		q.run(ctx, job{repo: repo, d: d, c: c})
	}
	select {
	case <-c.done:
		return c.rep, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the scan of %s@%s: %w", repo, d, ctx.Err())
	}
}

// Close stops taking scans and waits for the queued and running ones to
// finish. When ctx ends first, it abandons them (running scans are
// canceled, queued ones dropped) and returns ctx's error once every worker
// has stopped.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return fmt.Errorf("scan queue: abandoned scans: %w", ctx.Err())
	}
}

func (q *Queue) work() {
	defer q.wg.Done()
	for j := range q.jobs {
		q.m.depth.Set(float64(len(q.jobs)))
		q.run(q.ctx, j)
	}
}

// run scans j and completes its call.
func (q *Queue) run(ctx context.Context, j job) {
	defer func() {
		q.mu.Lock()
		if q.inflight[j.d] == j.c {
			delete(q.inflight, j.d)
		}
		q.mu.Unlock()
		close(j.c.done)
	}()
	if err := ctx.Err(); err != nil {
		q.m.scans.WithLabelValues("abandoned").Inc()
		j.c.err = fmt.Errorf("scan of %s@%s abandoned: %w", j.repo, j.d, err)
		return
	}
	if r, ok := q.cached(ctx, j.d); ok {
		j.c.rep = r
		return
	}
	start := time.Now()
	q.log.InfoContext(ctx, "scan started", "repo", j.repo, "digest", j.d.String())
	r, err := q.scan(ctx, j)
	took := time.Since(start)
	switch {
	case errors.Is(err, ErrNotImage):
		q.m.scans.WithLabelValues("skipped").Inc()
		q.log.DebugContext(ctx, "scan skipped: not an image", "repo", j.repo, "digest", j.d.String(), "err", err)
	case ctx.Err() != nil && err != nil:
		q.m.scans.WithLabelValues("abandoned").Inc()
		q.log.WarnContext(ctx, "scan abandoned", "repo", j.repo, "digest", j.d.String(), "err", err)
	case err != nil:
		q.m.scans.WithLabelValues("error").Inc()
		q.log.WarnContext(ctx, "scan failed", "repo", j.repo, "digest", j.d.String(), "took", took, "err", err)
	default:
		q.m.scans.WithLabelValues("ok").Inc()
		q.m.duration.Observe(took.Seconds())
		q.store(j.d, r)
		q.log.InfoContext(ctx, "scan finished", "repo", j.repo, "digest", j.d.String(), "took", took,
			"packages", r.Packages, "vulnerabilities", len(r.Vulnerabilities),
			"critical", r.Counts[SeverityCritical], "high", r.Counts[SeverityHigh], "db", r.DB.Digest)
	}
	j.c.rep, j.c.err = r, err
}

// scan scans j. A panic in the scanner (Trivy reading a crafted image, say)
// is the scan's error: the worker and the server live on, and the waiting
// decisions see a failed scan, which the gate denies (I3).
func (q *Queue) scan(ctx context.Context, j job) (r *Report, err error) {
	defer panics.Recover(ctx, q.log, "scanner.Scan", &err)
	img, err := NewImage(ctx, q.c, j.repo, j.d)
	if err != nil {
		return nil, err
	}
	return q.s.Scan(ctx, j.d, img)
}

// cached returns the report for d made with the scanner's current
// database. A scanner that cannot say which database it uses is never
// answered from the cache.
func (q *Queue) cached(ctx context.Context, d digest.Digest) (*Report, bool) {
	st, ok := q.s.(DBStater)
	if !ok {
		return nil, false
	}
	info, err := st.DBInfo(ctx)
	if err != nil || info.Digest == "" {
		return nil, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	r, ok := q.cache[cacheKey{d, info.Digest}]
	return r, ok
}

func (q *Queue) store(d digest.Digest, r *Report) {
	if r.DB.Digest == "" {
		return
	}
	k := cacheKey{d, r.DB.Digest}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.cache[k]; !ok {
		q.order = append(q.order, k)
	}
	q.cache[k] = r
	for len(q.order) > q.opts.CacheSize {
		delete(q.cache, q.order[0])
		q.order = q.order[1:]
	}
	q.m.cached.Set(float64(len(q.cache)))
}

type queueMetrics struct {
	depth     prometheus.Gauge
	cached    prometheus.Gauge
	enqueued  *prometheus.CounterVec
	scans     *prometheus.CounterVec
	cacheHits prometheus.Counter
	duration  prometheus.Histogram
}

func newQueueMetrics() queueMetrics {
	return queueMetrics{
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_scan_queue_depth", Help: "Scans waiting for a worker.",
		}),
		cached: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_scan_cached_reports", Help: "Scan reports held in the cache.",
		}),
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_scan_enqueue_total", Help: "Background scan requests, by outcome (queued, duplicate, cached, dropped, closed).",
		}, []string{"outcome"}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_scans_total", Help: "Scans run, by result (ok, error, skipped, abandoned).",
		}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_scan_cache_hits_total", Help: "Reports answered from the cache.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "portcullis_scan_duration_seconds", Help: "Duration of successful scans.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
	}
}

func (m queueMetrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.depth, m.cached, m.enqueued, m.scans, m.cacheHits, m.duration} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

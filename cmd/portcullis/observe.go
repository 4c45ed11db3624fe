package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/webhook"
)

// readiness answers /readyz: 200 only when the metadata database and the
// blob storage answer within 2 s and every policy set has a compiled
// engine; otherwise 503 with what failed, so a load balancer sends no
// traffic to a replica that would fail it.
func readiness(db *sqldb.DB, blobs *blobstore.Store, ps *policy.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		var failed []string
		if err := db.Ping(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("metadata database: %v", err))
		}
		if err := blobs.Ready(ctx); err != nil {
			failed = append(failed, err.Error())
		}
		if b, ok := ps.Lookup(policy.DefaultSetName); !ok || b.Engine() == nil {
			failed = append(failed, "policies: no compiled default policy")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, strings.Join(failed, "\n")+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

// httpMetrics are the request metrics of the registry listener.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "portcullis_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_http_request_bytes_total", Help: "Request body bytes received, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_http_response_bytes_total", Help: "Response body bytes sent, by route.",
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_http_requests_in_flight", Help: "Requests being served.",
		}),
	}
	if err := register(reg, m.requests, m.latency, m.bytesIn, m.bytesOut, m.inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

// routeOf names a request's route with a bounded set of labels (never a
// repository name or digest).
func routeOf(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "base"
	case p == "/v2/_catalog":
		return "catalog"
	case strings.HasPrefix(p, "/v2/"):
		switch {
		case strings.Contains(p, "/blobs/uploads"):
			return "blob_upload"
		case strings.Contains(p, "/blobs/"):
			return "blob"
		case strings.Contains(p, "/manifests/"):
			return "manifest"
		case strings.HasSuffix(p, "/tags/list"):
			return "tags"
		case strings.Contains(p, "/referrers/"):
			return "referrers"
		}
		return "other"
	case strings.HasPrefix(p, "/portcullis/v1/"):
		rest := strings.TrimPrefix(p, "/portcullis/v1/")
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		switch rest {
		case "promotions", "decisions", "checkpoints", "proofs", "running", "token", "policies":
			return "api_" + rest
		}
		return "api_other"
	case strings.HasPrefix(p, "/ui/"):
		return "ui"
	case p == "/metrics", p == "/healthz", p == "/readyz":
		return strings.TrimPrefix(p, "/")
	}
	return "other"
}

// middleware counts and times every request, gives it an ID (the
// client's X-Request-Id if it sent a sane one) that it returns in
// X-Request-Id and that every log line of the request carries
// (requestIDHandler), and logs the request at debug level when it ends.
func (m *httpMetrics) middleware(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		route := routeOf(req.URL.Path)
		id := req.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\r\n\"") {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		req = req.WithContext(context.WithValue(req.Context(), requestIDKey{}, id))
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		cw := &countingWriter{ResponseWriter: w, code: http.StatusOK}
		var body *countingBody
		if req.Body != nil && req.Body != http.NoBody {
			body = &countingBody{ReadCloser: req.Body}
			req.Body = body
		}
		next.ServeHTTP(cw, req)
		m.requests.WithLabelValues(route, req.Method, strconv.Itoa(cw.code)).Inc()
		m.latency.WithLabelValues(route, req.Method).Observe(time.Since(start).Seconds())
		m.bytesOut.WithLabelValues(route).Add(float64(cw.n))
		if body != nil {
			m.bytesIn.WithLabelValues(route).Add(float64(body.n))
		}
		log.LogAttrs(req.Context(), slog.LevelDebug, "request", slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.Int("status", cw.code), slog.Int64("bytes", cw.n), slog.Duration("duration", time.Since(start)))
	})
}

type countingWriter struct {
	http.ResponseWriter
	code        int
	n           int64
	wroteHeader bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps sendfile for blob downloads.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wroteHeader = true
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines, sendfile through ReadFrom).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// requestIDKey is the context key of the request ID.
type requestIDKey struct{}

// requestIDHandler adds the request ID of the record's context, and its
// trace ID when the request is traced, to every log record.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// decisionMetrics counts and times the gate's decisions as they are
// recorded (every decision is, before it is returned).
type decisionMetrics struct {
	next      gate.Recorder
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	policy    prometheus.Histogram
	evidence  *prometheus.CounterVec
}

func newDecisionMetrics(reg prometheus.Registerer, next gate.Recorder) (*decisionMetrics, error) {
	m := &decisionMetrics{
		next: next,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_decisions_total", Help: "Gate decisions by action (promote, push, admit) and verdict (allow, deny, error).",
		}, []string{"action", "verdict"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "portcullis_decision_duration_seconds", Help: "Time to decide: evidence, scan and policy.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"action"}),
		policy: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "portcullis_policy_eval_duration_seconds", Help: "Rego policy evaluation latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_evidence_cache_total", Help: "Verified-evidence lookups by result (hit, miss); hit / (hit + miss) is the cache hit ratio.",
		}, []string{"result"}),
	}
	if err := register(reg, m.decisions, m.latency, m.policy, m.evidence); err != nil {
		return nil, err
	}
	return m, nil
}

// Record implements gate.Recorder.
func (m *decisionMetrics) Record(ctx context.Context, d *gate.Decision) error {
	err := m.next.Record(ctx, d)
	verdict := "allow"
	switch {
	case err != nil || d.Error != "":
		verdict = "error"
	case !d.Allow:
		verdict = "deny"
	}
	action := string(d.Request.Action)
	if !d.Request.Action.Valid() {
		action = "invalid"
	}
	m.decisions.WithLabelValues(action, verdict).Inc()
	m.latency.WithLabelValues(action).Observe(d.Duration.Seconds())
	if d.Input != nil { // decided by policy (also on a VSA)
		m.policy.Observe(d.PolicyDuration.Seconds())
		switch {
		case d.VSA != nil:
			// The evidence came from a verification summary: the
			// verified-evidence cache was not asked.
		case d.CachedEvidence:
			m.evidence.WithLabelValues("hit").Inc()
		default:
			m.evidence.WithLabelValues("miss").Inc()
		}
	}
	return err
}

// uploadMetrics time blob uploads from session start to the stored blob.
func newUploadMetrics(reg prometheus.Registerer) (registry.Option, error) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "portcullis_blob_upload_duration_seconds", Help: "Blob uploads, from the session's start to the stored blob.",
		Buckets: prometheus.ExponentialBuckets(0.001, 3, 14),
	})
	if err := register(reg, h); err != nil {
		return nil, err
	}
	return registry.WithUploadFinished(func(_ context.Context, _ string, _ digest.Digest, _ int64, took time.Duration) {
		h.Observe(took.Seconds())
	}), nil
}

// registerCacheStats exports the webhook's decision cache counters.
func registerCacheStats(reg prometheus.Registerer, stats func() webhook.CacheStats) error {
	return register(reg,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "portcullis_admission_cache_hits_total", Help: "Admission decisions answered from the webhook's decision cache.",
		}, func() float64 { return float64(stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "portcullis_admission_cache_misses_total", Help: "Admission decisions the webhook's decision cache did not have.",
		}, func() float64 { return float64(stats().Misses) }),
	)
}

// register registers every collector, stopping at the first error.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

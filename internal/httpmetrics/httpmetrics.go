// Package httpmetrics counts and times the requests of an HTTP listener,
// gives each request an ID, and adds that ID (and the trace ID) to every
// log line of the request.
//
// Route labels come from the caller (the route table of the HTTP API), so
// that metrics never carry a repository name or a digest.
package httpmetrics

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

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the request metrics of one listener.
type Metrics struct {
	route    func(path string) string
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	inFlight prometheus.Gauge
}

// New registers the request metrics with reg; route names a request path
// with a bounded set of labels.
func New(reg prometheus.Registerer, route func(path string) string) (*Metrics, error) {
	if route == nil {
		return nil, fmt.Errorf("httpmetrics: no route labeller")
	}
	m := &Metrics{
		route: route,
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

// Middleware counts and times every request, gives it an ID (the
// client's X-Request-Id if it sent a sane one) that it returns in
// X-Request-Id and that every log line of the request carries (through
// LogHandler), and logs the request at debug level when it ends.
func (m *Metrics) Middleware(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		route := m.route(req.URL.Path)
		id := req.Header.Get("X-Request-Id")
		if !saneID(id) {
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

// saneID reports whether a client's request ID may be used as given.
func saneID(id string) bool {
	return id != "" && len(id) <= 64 && !strings.ContainsAny(id, " \t\r\n\"")
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

// register registers every collector, stopping at the first error.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

package httpmetrics

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, func(p string) string {
		if strings.HasPrefix(p, "/v2/") {
			return "registry"
		}
		return "other"
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	var seenID string
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seenID, _ = RequestID(req.Context())
		b, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(append(b, '!'))
	}), log)

	for _, tc := range []struct {
		name, sent string
		keep       bool
	}{
		{"client's ID kept", "abc-123", true},
		{"none sent: one made", "", false},
		{"with a space: replaced", "a b", false},
		{"too long: replaced", strings.Repeat("x", 65), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPut, "/v2/prod/app/manifests/v1", strings.NewReader("body"))
			if tc.sent != "" {
				req.Header.Set("X-Request-Id", tc.sent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get("X-Request-Id")
			if got != seenID || got == "" {
				t.Fatalf("X-Request-Id %q, handler saw %q", got, seenID)
			}
			if (got == tc.sent) != tc.keep {
				t.Errorf("sent %q, got %q (keep %v)", tc.sent, got, tc.keep)
			}
			if !strings.Contains(logs.String(), "request_id="+got) {
				t.Errorf("log lacks request_id=%s:\n%s", got, logs.String())
			}
		})
	}
	if n := testutil.ToFloat64(m.requests.WithLabelValues("registry", "PUT", "201")); n != 4 {
		t.Errorf("requests{registry,PUT,201} = %v, want 4", n)
	}
	if n := testutil.ToFloat64(m.bytesIn.WithLabelValues("registry")); n != 16 {
		t.Errorf("request bytes = %v, want 16", n)
	}
	if n := testutil.ToFloat64(m.bytesOut.WithLabelValues("registry")); n != 20 {
		t.Errorf("response bytes = %v, want 20", n)
	}
	if n := testutil.ToFloat64(m.inFlight); n != 0 {
		t.Errorf("in flight after the requests = %v", n)
	}
	if _, err := New(reg, func(string) string { return "" }); err == nil {
		t.Error("registering the metrics twice: no error")
	}
}

func TestLogHandlerWithoutRequest(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&logs, nil))).With("k", "v").WithGroup("g")
	log.Info("hello", "x", 1)
	if s := logs.String(); strings.Contains(s, "request_id") || !strings.Contains(s, "k=v") || !strings.Contains(s, "g.x=1") {
		t.Errorf("log line %q", s)
	}
}

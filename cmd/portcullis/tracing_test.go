package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis-dev/portcullis/registry"
)

// collectedSpan is a span as an OTLP collector received it.
type collectedSpan struct {
	name, trace, id, parent string
	attrs                   map[string]string
}

// otlpCollector is an OTLP/HTTP trace receiver: it decodes the protobuf
// export requests the server's exporter sends to /v1/traces.
type otlpCollector struct {
	mu    sync.Mutex
	spans []collectedSpan
	bad   []string
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &req)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		c.bad = append(c.bad, fmt.Sprintf("%s %s (%s): %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err))
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				cs := collectedSpan{name: s.Name, trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
					parent: hex.EncodeToString(s.ParentSpanId), attrs: map[string]string{}}
				for _, a := range s.Attributes {
					cs.attrs[a.Key] = anyValue(a.Value)
				}
				for _, a := range rs.Resource.GetAttributes() {
					cs.attrs["resource."+a.Key] = a.Value.GetStringValue()
				}
				c.spans = append(c.spans, cs)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func anyValue(v *commonv1.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonv1.AnyValue_StringValue:
		return x.StringValue
	case *commonv1.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonv1.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonv1.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return fmt.Sprint(v.GetValue())
}

// TestObservability pushes an image and promotes it (denied: it is
// unsigned) with a W3C traceparent. The metrics count the uploads, the
// decision by verdict, the policy evaluation and the evidence cache miss.
// What the server exported over OTLP/HTTP to a collector is one trace, the
// caller's, running from the registry's server span through the gate to
// the verifier and the policy evaluation, with the decision on the gate's
// span.
func TestObservability(t *testing.T) {
	col := &otlpCollector{}
	cs := httptest.NewServer(col)
	t.Cleanup(cs.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "tracing:\n  endpoint: %s\n  serviceName: portcullis-test\n", cs.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, filepath.Join(dir, "data"), "--config", cfg)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, srv.Addr+"/staging/traced:1"); err != nil {
		t.Fatal(err)
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body, _ := json.Marshal(registry.PromotionRequest{Source: "staging/traced:1", Target: "prod/traced:1"})
	req, _ := http.NewRequest(http.MethodPost, srv.URL(registry.PromotionsPath), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("promotion of an unsigned image: %s, want 403", resp.Status)
	}
	for sample, want := range map[string]float64{
		`portcullis_decisions_total{action="promote",verdict="deny"}`:                     1,
		`portcullis_decisions_total{action="promote",verdict="allow"}`:                    0,
		`portcullis_decision_duration_seconds_count{action="promote"}`:                    1,
		`portcullis_policy_eval_duration_seconds_count`:                                   1,
		`portcullis_evidence_cache_total{result="miss"}`:                                  1,
		`portcullis_blob_upload_duration_seconds_count`:                                   2, // the layer and the config
		`portcullis_http_requests_total{code="403",method="POST",route="api_promotions"}`: 1,
	} {
		if got := metric(t, srv, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	srv.Stop() // flushes the spans still batched

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.bad) > 0 {
		t.Fatalf("the collector refused exports: %q", col.bad)
	}
	byName := map[string]collectedSpan{}
	for _, s := range col.spans {
		if s.trace == traceID {
			byName[s.name] = s
		}
	}
	server, ok := byName["POST api_promotions"]
	if !ok {
		var names []string
		for _, s := range col.spans {
			names = append(names, s.name+" "+s.trace)
		}
		t.Fatalf("no server span for the promotion in the caller's trace; got %q", names)
	}
	if server.parent != parentID {
		t.Errorf("the server span's parent is %s, want the caller's %s", server.parent, parentID)
	}
	chain := []struct{ name, parent string }{
		{"gate.Evaluate", "POST api_promotions"},
		{"verifier.Collect", "gate.Evaluate"},
		{"policy.Eval", "gate.Evaluate"},
	}
	for _, c := range chain {
		s, ok := byName[c.name]
		if !ok {
			t.Errorf("no %s span in the trace", c.name)
			continue
		}
		if s.parent != byName[c.parent].id {
			t.Errorf("%s's parent is %s, want %s (%s)", c.name, s.parent, c.parent, byName[c.parent].id)
		}
	}
	g := byName["gate.Evaluate"]
	if g.attrs["portcullis.allow"] != "false" || g.attrs["portcullis.repository"] != "staging/traced" || g.attrs["portcullis.deny"] == "0" {
		t.Errorf("gate span attributes %v: want a denial of staging/traced", g.attrs)
	}
	if g.attrs["resource.service.name"] != "portcullis-test" {
		t.Errorf("service.name %q, want the configured portcullis-test", g.attrs["resource.service.name"])
	}
}

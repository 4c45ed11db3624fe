package gate_test

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/portcullis-dev/portcullis/policy/contract"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// TestEvaluateTraced checks the spans of a decision taken under a traced
// request: gate.Evaluate under the caller's span, verifier.Collect and
// policy.Eval under it, the verdict on the gate's span; and a decision
// without a span in its context records nothing.
func TestEvaluateTraced(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	signed := e.signed(t, e.release, vt.ProvenanceV1)
	unsigned := e.PushImage(t, "staging/other", "1")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	target := contract.Target{Registry: &contract.RegistryTarget{Namespace: "prod", Repository: "prod/app"}}

	for _, tt := range []struct {
		repo  string
		allow bool
	}{{"staging/app", true}, {"staging/other", false}} {
		d := signed
		if !tt.allow {
			d = unsigned
		}
		rec.Reset()
		ctx, root := tp.Tracer("test").Start(t.Context(), "request")
		dec := e.gate.Evaluate(ctx, contract.Request{Action: contract.ActionPromote, Repository: tt.repo, Digest: d, Target: target})
		root.End()
		if dec.Allow != tt.allow {
			t.Fatalf("%s: allow %v, want %v: %v", tt.repo, dec.Allow, tt.allow, dec.Reasons())
		}
		spans := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			spans[s.Name()] = s
			if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
				t.Errorf("%s: span %s is in another trace", tt.repo, s.Name())
			}
		}
		for name, parent := range map[string]string{"gate.Evaluate": "request", "verifier.Collect": "gate.Evaluate", "policy.Eval": "gate.Evaluate"} {
			s, ok := spans[name]
			if !ok {
				t.Errorf("%s: no %s span (got %d spans)", tt.repo, name, len(spans))
				continue
			}
			if p, ok := spans[parent]; !ok || s.Parent().SpanID() != p.SpanContext().SpanID() {
				t.Errorf("%s: %s is not a child of %s", tt.repo, name, parent)
			}
		}
		attrs := map[string]any{}
		if g, ok := spans["gate.Evaluate"]; ok {
			for _, a := range g.Attributes() {
				attrs[string(a.Key)] = a.Value.AsInterface()
			}
		}
		if attrs["portcullis.allow"] != tt.allow || attrs["portcullis.repository"] != tt.repo || attrs["portcullis.digest"] != d.String() {
			t.Errorf("%s: gate span attributes %v", tt.repo, attrs)
		}
		if deny, _ := attrs["portcullis.deny"].(int64); (deny == 0) != tt.allow {
			t.Errorf("%s: gate span says %d denials with allow %v", tt.repo, deny, tt.allow)
		}
	}

	rec.Reset()
	if dec := e.gate.Evaluate(t.Context(), contract.Request{Action: contract.ActionPromote, Repository: "staging/app", Digest: signed, Target: target}); !dec.Allow {
		t.Fatalf("untraced decision: %v", dec.Reasons())
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("a decision without a span in its context recorded %d spans", n)
	}
}

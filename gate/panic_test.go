package gate_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/verifier/source"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// panickyStore panics when the gate reads evidence, as a bug anywhere
// under a decision would.
type panickyStore struct{ gate.Store }

func (panickyStore) Source() source.Source { panic("the store exploded") }

// panickyRecorder panics while recording.
type panickyRecorder struct{ recorder }

func (r *panickyRecorder) Record(ctx context.Context, d *contract.Decision) error {
	_ = r.recorder.Record(ctx, d)
	panic("the audit log exploded")
}

// TestPanicIsRecordedDenial is I3 in the gate: a panic while deciding, in
// a check, in the gate itself or while recording, is a denial, recorded
// with a reason that says it was an internal error; the write is refused
// and nothing reaches prod.
func TestPanicIsRecordedDenial(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*gate.Config, *gate.Options)
		// rec is the recorder to read (default the env's).
		rec  func(o *gate.Options) *recorder
		want string
	}{
		{"the scanner panics", func(_ *gate.Config, o *gate.Options) {
			o.Scanner = scanFunc(func(context.Context, string, digest.Digest) (*scanner.Report, error) {
				var r *scanner.Report
				return nil, errors.New(r.Digest)
			})
		}, nil, "internal error in gate.Scan: panic: runtime error: invalid memory address"},
		{"the gate panics", func(_ *gate.Config, o *gate.Options) { o.Store = panickyStore{o.Store} }, nil,
			"internal error in gate.AuthorizeManifest: panic: the store exploded"},
		{"recording panics", func(_ *gate.Config, o *gate.Options) { o.Recorder = &panickyRecorder{} },
			func(o *gate.Options) *recorder { return &o.Recorder.(*panickyRecorder).recorder },
			"the decision could not be recorded: internal error in gate.Record: panic: the audit log exploded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, policyDir(t, requireRelease, nil), tt.mod)
			rec := e.rec
			if tt.rec != nil {
				rec = tt.rec(&e.opts)
			}
			d := e.signed(t, e.release, vt.ProvenanceV1)
			err := e.copyTo(t, d, "1.0")
			t.Logf("denied: %v", err)
			wantDenied(t, err, tt.want)
			if e.inProd(t, d) {
				t.Fatal("image in prod/app although deciding panicked")
			}
			dec := rec.last()
			if dec == nil || dec.Allow {
				t.Fatalf("recorded decision %+v, want a denial", dec)
			}
			ar := gate.AuditRecord(dec)
			if tt.name != "recording panics" && (ar.Verdict != audit.VerdictError || !strings.Contains(strings.Join(ar.Reasons, "; "), "internal error in")) {
				t.Fatalf("audit record %+v, want verdict %s with the internal error as its reason", ar, audit.VerdictError)
			}
		})
	}
}

// TestRecordFailure: a failure outside Evaluate (the webhook's own code)
// is recorded as a denial of the request, even an incomplete one.
func TestRecordFailure(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	d := e.gate.RecordFailure(t.Context(), contract.Request{Action: contract.ActionAdmit, Reference: "registry.example/app:1"}, errors.New("internal error in webhook: panic: x"))
	if d.Allow || e.rec.last() != d || !strings.Contains(strings.Join(d.Reasons(), "; "), "internal error in webhook") {
		t.Fatalf("decision %+v (recorded %+v)", d, e.rec.last())
	}
}

// TestRecordCachedEnforcement: an admission answered from the decision
// cache is recorded with the enforcement of the request it answers, not of
// the one that was decided (a namespace switched from warn to enforce, or
// back, in between).
func TestRecordCachedEnforcement(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	target := contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: "shop", Workload: contract.Workload{Kind: "Pod", Name: "a"}}}
	req := contract.Request{Action: contract.ActionAdmit, Repository: "staging/app", Digest: e.PushImage(t, "staging/app", "1"),
		Target: target, Enforcement: contract.EnforcementWarn}
	warned := e.gate.Evaluate(t.Context(), req)
	if rec := gate.AuditRecord(e.rec.last()); e.rec.last() != warned || rec.Enforcement != "warn" {
		t.Fatalf("decision in warn mode: record enforcement %q, want warn", rec.Enforcement)
	}
	enforced := req
	enforced.Enforcement = ""
	if rec := gate.AuditRecord(e.gate.RecordCached(t.Context(), enforced, warned)); !rec.Cached || rec.Enforcement != "" {
		t.Errorf("cached decision for an enforced request: cached %v, enforcement %q; want cached, none", rec.Cached, rec.Enforcement)
	}
	if rec := gate.AuditRecord(e.gate.RecordCached(t.Context(), req, e.rec.last())); !rec.Cached || rec.Enforcement != "warn" {
		t.Errorf("cached decision for a request in warn mode: cached %v, enforcement %q; want cached, warn", rec.Cached, rec.Enforcement)
	}
}

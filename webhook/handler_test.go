package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

var kinds = []struct {
	file, kind, specPath string
	images               int // distinct
}{
	{"pod.json", "Pod", "/spec", 4},
	{"replicationcontroller.json", "ReplicationController", "/spec/template/spec", 3},
	{"deployment.json", "Deployment", "/spec/template/spec", 3},
	{"replicaset.json", "ReplicaSet", "/spec/template/spec", 3},
	{"statefulset.json", "StatefulSet", "/spec/template/spec", 3},
	{"daemonset.json", "DaemonSet", "/spec/template/spec", 3},
	{"job.json", "Job", "/spec/template/spec", 3},
	{"cronjob.json", "CronJob", "/spec/jobTemplate/spec/template/spec", 3},
}

func TestValidateFixtures(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			d := newFakeDecider()
			h := newHandler(t, Config{}, d, &fakeResolver{})
			code, resp := post(t, h, "/validate", fixture(t, k.file))
			if code != http.StatusOK || resp.Allowed {
				t.Fatalf("got %d allowed=%v, want 200 denied", code, resp.Allowed)
			}
			msg := message(resp)
			if !strings.HasPrefix(msg, "403 portcullis denied "+k.kind+" shop/") ||
				!strings.Contains(msg, `image "`+unsigned+`" (container sidecar): no valid signature from the release key`) {
				t.Errorf("message = %q", msg)
			}
			if strings.Contains(msg, "prod/app") || strings.Contains(msg, "migrate") {
				t.Errorf("message names an allowed image: %q", msg)
			}
			if resp.UID == "" || resp.Patch != nil {
				t.Errorf("uid %q, patch %s", resp.UID, resp.Patch)
			}
			if got := d.calls.Load(); got != int64(k.images) {
				t.Errorf("Evaluate called %d times, want one per distinct image (%d)", got, k.images)
			}
			for _, r := range d.requests() {
				kt := r.Target.Kubernetes
				if r.Action != "admit" || kt == nil || kt.Namespace != "shop" || kt.Workload.Kind != k.kind || kt.Workload.Name == "" ||
					r.Actor.Identity.Name != "alice@example.com" || !slices.Contains(r.Actor.Identity.Groups, "devs") ||
					r.Actor.ServiceAccount != "shop/web" || r.Actor.PodLabels["app"] != "web" || r.Digest.Validate() != nil {
					t.Errorf("request %+v (target %+v)", r, kt)
				}
			}
		})
	}
}

// pointer reads a JSON pointer from a decoded document.
func pointer(t *testing.T, doc any, p string) any {
	t.Helper()
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		switch v := doc.(type) {
		case map[string]any:
			doc = v[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(v) {
				t.Fatalf("pointer %s: bad index %q", p, tok)
			}
			doc = v[i]
		default:
			t.Fatalf("pointer %s: %q into %T", p, tok, doc)
		}
	}
	return doc
}

func TestMutateFixtures(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			h := newHandler(t, Config{}, newFakeDecider(), &fakeResolver{})
			body := fixture(t, k.file)
			code, resp := post(t, h, "/mutate", body)
			if code != http.StatusOK || !resp.Allowed || resp.PatchType == nil || *resp.PatchType != "JSONPatch" {
				t.Fatalf("got %d %+v", code, resp)
			}
			var patch []patchOp
			if err := json.Unmarshal(resp.Patch, &patch); err != nil {
				t.Fatal(err)
			}
			var review map[string]any
			_ = json.Unmarshal(body, &review)
			obj := review["request"].(map[string]any)["object"]
			want := []string{k.specPath + "/containers/0/image", k.specPath + "/containers/1/image", k.specPath + "/containers/2/image", k.specPath + "/initContainers/0/image"}
			if k.kind == "Pod" {
				want = append(want, "/spec/ephemeralContainers/0/image")
			}
			var got []string
			for _, op := range patch {
				got = append(got, op.Path)
				old, _ := pointer(t, obj, op.Path).(string)
				if op.Op != "replace" || old == "" || op.Value != old+"@"+fakeDigest(old).String() {
					t.Errorf("op %+v replaces %q", op, old)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("paths %v, want %v", got, want)
			}
		})
	}
}

func TestMutateKeepsDigests(t *testing.T) {
	pinned := "registry.local/prod/app:1.0@" + fakeDigest("x").String()
	body := editFixture(t, "pod.json", func(req map[string]any) {
		spec := req["object"].(map[string]any)["spec"].(map[string]any)
		for _, list := range []string{"containers", "initContainers", "ephemeralContainers"} {
			for _, c := range spec[list].([]any) {
				c.(map[string]any)["image"] = pinned
			}
		}
	})
	r := &fakeResolver{}
	h := newHandler(t, Config{}, newFakeDecider(), r)
	code, resp := post(t, h, "/mutate", body)
	if code != 200 || !resp.Allowed || resp.Patch != nil || r.calls.Load() != 0 {
		t.Fatalf("got %d %+v, resolver calls %d", code, resp, r.calls.Load())
	}
}

func TestOtherKindsUntouched(t *testing.T) {
	d := newFakeDecider()
	h := newHandler(t, Config{}, d, &fakeResolver{})
	for _, path := range []string{"/validate", "/mutate"} {
		code, resp := post(t, h, path, fixture(t, "configmap.json"))
		if code != 200 || !resp.Allowed || resp.Patch != nil || len(resp.Warnings) != 0 || resp.UID != "c0nf1g" {
			t.Errorf("%s: %d %+v", path, code, resp)
		}
	}
	if d.calls.Load() != 0 {
		t.Errorf("Evaluate called for a ConfigMap")
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		setup   func(d *fakeDecider, r *fakeResolver)
		path    string
		allowed bool
		want    []string // in the message, or in the warnings when allowed
	}{
		{name: "registry unreachable", path: "/validate",
			setup: func(_ *fakeDecider, r *fakeResolver) {
				r.fail = map[string]error{"registry.local/prod/app:1.0": errUnreachable}
			},
			want: []string{`image "registry.local/prod/app:1.0" (containers app, proxy): could not resolve the image to a digest: ` + errUnreachable.Error()}},
		{name: "registry unreachable when pinning", path: "/mutate",
			setup: func(_ *fakeDecider, r *fakeResolver) {
				r.fail = map[string]error{"registry.local/prod/app:1.0": errUnreachable}
			},
			want: []string{"portcullis could not pin the images of Deployment shop/web", "connection refused"}},
		{name: "policy error", path: "/validate",
			setup: func(d *fakeDecider, _ *fakeResolver) { d.fail = map[string]bool{"registry.local/prod/migrate": true} },
			want:  []string{`image "registry.local/prod/migrate:1.2" (container migrate): policy evaluation failed: undefined function; policy revision sha256:111111111111`}},
		{name: "deadline", path: "/validate", cfg: Config{Timeout: 50 * time.Millisecond},
			setup: func(d *fakeDecider, _ *fakeResolver) { d.slow = map[string]bool{"registry.local/prod/app": true} },
			want:  []string{`image "registry.local/prod/app:1.0" (containers app, proxy): the check timed out after 50ms`, unsigned}},
		{name: "deadline resolving", path: "/mutate", cfg: Config{Timeout: 50 * time.Millisecond},
			setup: func(_ *fakeDecider, r *fakeResolver) { r.slow = map[string]bool{"registry.local/prod/app:1.0": true} },
			want:  []string{`image "registry.local/prod/app:1.0": resolving it to a digest timed out after 50ms`}},
		{name: "deadline fail open", path: "/validate", cfg: Config{Timeout: 50 * time.Millisecond, FailureMode: FailOpenUnsafe},
			setup: func(d *fakeDecider, _ *fakeResolver) {
				d.slow = map[string]bool{"registry.local/prod/app": true}
				d.deny = nil
			},
			allowed: true, want: []string{`image "registry.local/prod/app:1.0" was admitted unchecked: the check timed out after 50ms (failure mode allow-unsafe)`}},
		{name: "bad reference", path: "/validate",
			setup: func(d *fakeDecider, r *fakeResolver) { d.deny = nil },
			want:  []string{`image "registry.local/prod/app:1.0@sha256:nope" (containers app, proxy): image reference "registry.local/prod/app:1.0@sha256:nope": bad digest`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, r := newFakeDecider(), &fakeResolver{}
			tt.setup(d, r)
			h := newHandler(t, tt.cfg, d, r)
			body := fixture(t, "deployment.json")
			if tt.name == "bad reference" {
				body = []byte(strings.ReplaceAll(string(body), `"registry.local/prod/app:1.0"`, `"registry.local/prod/app:1.0@sha256:nope"`))
			}
			start := time.Now()
			code, resp := post(t, h, tt.path, body)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %s", el)
			}
			if code != 200 || resp.Allowed != tt.allowed {
				t.Fatalf("got %d allowed=%v %s", code, resp.Allowed, message(resp))
			}
			got := message(resp) + strings.Join(resp.Warnings, "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
		})
	}
}

func TestBadReviews(t *testing.T) {
	h := newHandler(t, Config{}, newFakeDecider(), &fakeResolver{})
	tests := []struct {
		name, body string
		code       int
		uid        string // when a review is answered
		want       string
	}{
		{"not json", `{"apiVersion":`, 400, "", "malformed admission review"},
		{"bad field with uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":"Pod"}}`, 400, "u1", "malformed admission review"},
		{"v1beta1", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u2"}}`, 400, "u2", `unsupported admission review "admission.k8s.io/v1beta1"`},
		{"wrong kind", `{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u3"}}`, 400, "u3", `kind "Pod"`},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400, "", "without a request"},
		{"no uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, 400, "", "without a uid"},
		{"bad object", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u4","operation":"CREATE","namespace":"shop","kind":{"kind":"Pod","version":"v1"},"object":{"spec":{"containers":"x"}}}}`, 200, "u4", "400 portcullis: decoding the Pod"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/validate", "/mutate"} {
			t.Run(tt.name+path, func(t *testing.T) {
				code, resp := post(t, h, path, []byte(tt.body))
				if code != tt.code {
					t.Errorf("status %d, want %d", code, tt.code)
				}
				if tt.uid == "" {
					if resp != nil {
						t.Errorf("a review was answered: %+v", resp)
					}
					return
				}
				if resp == nil || resp.Allowed || string(resp.UID) != tt.uid || !strings.Contains(message(resp), tt.want) {
					t.Errorf("response %+v: %s", resp, message(resp))
				}
			})
		}
	}
	t.Run("method", func(t *testing.T) {
		rec := httptestGet(h, "/validate")
		if rec != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d", rec)
		}
	})
}

func TestModes(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		ns      string
		allowed bool
		evals   int64
		warn    string
	}{
		{"enforce by default", Config{}, "shop", false, 3, ""},
		{"warn", Config{Namespaces: map[string]Mode{"shop": ModeWarn}}, "shop", true, 3,
			`portcullis (warn mode in namespace shop) would deny Deployment shop/web: image "` + unsigned + `" (container sidecar): no valid signature`},
		{"warn by default", Config{DefaultMode: ModeWarn}, "shop", true, 3, "would deny"},
		{"off", Config{Namespaces: map[string]Mode{"shop": ModeOff}}, "shop", true, 0, ""},
		{"kube-system exempt", Config{}, "kube-system", true, 0, ""},
		{"exempt list", Config{Exempt: []string{"shop"}}, "shop", true, 0, ""},
		{"empty exempt list", Config{Exempt: []string{}}, "kube-system", false, 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDecider()
			h := newHandler(t, tt.cfg, d, &fakeResolver{})
			body := editFixture(t, "deployment.json", func(req map[string]any) { req["namespace"] = tt.ns })
			_, resp := post(t, h, "/validate", body)
			if resp.Allowed != tt.allowed || d.calls.Load() != tt.evals {
				t.Fatalf("allowed=%v evals=%d: %s %v", resp.Allowed, d.calls.Load(), message(resp), resp.Warnings)
			}
			if tt.warn != "" && !slices.ContainsFunc(resp.Warnings, func(w string) bool { return strings.Contains(w, tt.warn) }) {
				t.Errorf("warnings %q lack %q", resp.Warnings, tt.warn)
			}
			_, mresp := post(t, h, "/mutate", body)
			if pinned := mresp.Patch != nil; pinned != (tt.evals > 0) {
				t.Errorf("mutate: patch %s", mresp.Patch)
			}
		})
	}
}

func TestPolicyWarnings(t *testing.T) {
	d := newFakeDecider()
	d.warn = map[string]bool{"registry.local/prod/app": true}
	d.deny = nil
	h := newHandler(t, Config{}, d, &fakeResolver{})
	_, resp := post(t, h, "/validate", fixture(t, "statefulset.json"))
	want := []string{`portcullis: image "registry.local/prod/app:1.0": the SBOM is older than 30 days`}
	if !resp.Allowed || !slices.Equal(resp.Warnings, want) {
		t.Errorf("allowed=%v warnings %q", resp.Allowed, resp.Warnings)
	}
}

func TestUpdateWithoutNewImages(t *testing.T) {
	d := newFakeDecider()
	h := newHandler(t, Config{}, d, &fakeResolver{})
	body := editFixture(t, "deployment.json", func(req map[string]any) {
		req["operation"] = "UPDATE"
		req["oldObject"] = req["object"]
	})
	_, resp := post(t, h, "/validate", body)
	if !resp.Allowed || d.calls.Load() != 0 {
		t.Errorf("scaling a deployment was checked again: %s", message(resp))
	}
	body = editFixture(t, "pod.json", func(req map[string]any) { req["operation"] = "DELETE" })
	if _, resp := post(t, h, "/validate", body); !resp.Allowed {
		t.Errorf("DELETE denied")
	}
}

func TestBreakGlass(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	until := clock.t.Add(time.Hour)
	tests := []struct {
		name       string
		windows    []BreakGlassWindow
		annotation string
		advance    time.Duration
		allowed    bool
		want       string
	}{
		{"enabled", []BreakGlassWindow{{"shop", until}}, "INC-42 checkout down", 0, true,
			`portcullis: BREAK GLASS by alice@example.com ("INC-42 checkout down", until 2026-11-23T13:00:00Z) admitted Deployment shop/web despite: image "` + unsigned + `": no valid signature`},
		{"other namespace", []BreakGlassWindow{{"payments", until}}, "INC-42", 0, false, "Break glass refused: break glass is not enabled in namespace shop"},
		{"disabled", nil, "INC-42", 0, false, "Break glass refused: break glass is not enabled in namespace shop"},
		{"expired", []BreakGlassWindow{{"shop", until}}, "INC-42", 2 * time.Hour, false, "Break glass refused: break glass in namespace shop expired at 2026-11-23T13:00:00Z"},
		{"no justification", []BreakGlassWindow{{"shop", until}}, " ", 0, false, "must give a justification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: clock.t.Add(tt.advance)}
			var got []BreakGlass
			cfg := Config{BreakGlass: tt.windows, Now: clk.Now, OnBreakGlass: func(_ context.Context, bg BreakGlass) error { got = append(got, bg); return nil }}
			h := newHandler(t, cfg, newFakeDecider(), &fakeResolver{})
			body := editFixture(t, "deployment.json", func(req map[string]any) {
				tmpl := req["object"].(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)
				tmpl["metadata"].(map[string]any)["annotations"] = map[string]any{BreakGlassAnnotation: tt.annotation}
			})
			_, resp := post(t, h, "/validate", body)
			text := message(resp) + strings.Join(resp.Warnings, "\n")
			if resp.Allowed != tt.allowed || !strings.Contains(text, tt.want) {
				t.Fatalf("allowed=%v:\n%s", resp.Allowed, text)
			}
			if tt.allowed {
				if len(got) != 1 || got[0].User != "alice@example.com" || got[0].Justification != tt.annotation ||
					len(got[0].Overridden) != 1 || got[0].Overridden[0].Image != unsigned || resp.AuditAnnotations["break-glass"] != tt.annotation {
					t.Errorf("recorded %+v, audit %v", got, resp.AuditAnnotations)
				}
			} else if len(got) != 0 {
				t.Errorf("refused break glass was recorded as used: %+v", got)
			}
		})
	}
}

func TestCache(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	d := newFakeDecider()
	h := newHandler(t, Config{Now: clock.Now}, d, &fakeResolver{})
	body := fixture(t, "deployment.json")
	admit := func() {
		t.Helper()
		if _, resp := post(t, h, "/validate", body); resp.Allowed {
			t.Fatal("allowed")
		}
	}
	admit()
	admit()
	if d.calls.Load() != 3 || h.CacheStats() != (CacheStats{Hits: 3, Misses: 3}) {
		t.Fatalf("calls %d, stats %+v", d.calls.Load(), h.CacheStats())
	}
	// Past the denial TTL (30s), within the allow TTL (5m): only the denial
	// is decided again.
	clock.Add(time.Minute)
	admit()
	if d.calls.Load() != 4 {
		t.Errorf("calls %d after the denial TTL", d.calls.Load())
	}
	// Another namespace is another target.
	admitNS := editFixture(t, "deployment.json", func(req map[string]any) { req["namespace"] = "other" })
	post(t, h, "/validate", admitNS)
	if d.calls.Load() != 7 {
		t.Errorf("calls %d for a new namespace", d.calls.Load())
	}
	// A fresh decision under a new revision drops the entries of the old.
	r := "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	d.rev.Store(&r)
	clock.Add(time.Minute) // the denial expires; its new decision reports revision 2
	admit()
	// The denial is decided again and reports revision 2; the allows were
	// looked up in parallel, before or after that.
	if c := d.calls.Load(); c < 8 || c > 10 {
		t.Errorf("calls %d after a revision change", c)
	}
	admit() // the allows decided under revision 1 are stale now, if not yet decided again
	if d.calls.Load() != 10 {
		t.Errorf("calls %d after a revision change, want the allows decided again", d.calls.Load())
	}
}

func TestCacheRevisionReporter(t *testing.T) {
	d := newFakeDecider()
	h := newHandler(t, Config{}, revisionDecider{d}, &fakeResolver{})
	body := fixture(t, "job.json")
	post(t, h, "/validate", body)
	r := "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	d.rev.Store(&r)
	post(t, h, "/validate", body)
	if d.calls.Load() != 6 {
		t.Errorf("calls %d: a revision change did not invalidate the cache", d.calls.Load())
	}
}

func TestErrorsNotCached(t *testing.T) {
	d := newFakeDecider()
	d.fail = map[string]bool{"registry.local/prod/app": true}
	h := newHandler(t, Config{}, d, &fakeResolver{})
	for range 3 {
		post(t, h, "/validate", fixture(t, "daemonset.json"))
	}
	if d.calls.Load() != 3+2 { // the failing image is decided every time
		t.Errorf("calls %d: an error decision was cached", d.calls.Load())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{FailureMode: "maybe"},
		{DefaultMode: "strict"},
		{Namespaces: map[string]Mode{"a": "x"}},
		{BreakGlass: []BreakGlassWindow{{Namespace: "a"}}},
		{Timeout: -time.Second},
	} {
		if _, err := New(cfg, newFakeDecider(), &fakeResolver{}); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestConcurrent(t *testing.T) {
	d := newFakeDecider()
	h := newHandler(t, Config{}, d, &fakeResolver{})
	var failed atomic.Bool
	done := make(chan struct{})
	for _, k := range kinds {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 20 {
				if _, resp := post(t, h, "/validate", fixture(t, k.file)); resp.Allowed {
					failed.Store(true)
				}
			}
		}()
	}
	for range kinds {
		<-done
	}
	if failed.Load() {
		t.Error("a denied workload was allowed")
	}
}

func TestBreakGlassDryRun(t *testing.T) {
	var calls int
	cfg := Config{BreakGlass: []BreakGlassWindow{{"shop", time.Now().Add(time.Hour)}},
		OnBreakGlass: func(context.Context, BreakGlass) error { calls++; return nil }}
	h := newHandler(t, cfg, newFakeDecider(), &fakeResolver{})
	body := editFixture(t, "pod.json", func(req map[string]any) {
		req["dryRun"] = true
		req["object"].(map[string]any)["metadata"].(map[string]any)["annotations"] = map[string]any{BreakGlassAnnotation: "INC-7"}
	})
	if _, resp := post(t, h, "/validate", body); !resp.Allowed || calls != 0 {
		t.Errorf("dry run: allowed=%v, hook called %d times", resp.Allowed, calls)
	}
}

// unrecordedDecider cannot write the record of an unchecked admission, as
// the gate answers when its decision log fails.
type unrecordedDecider struct{ *fakeDecider }

func (unrecordedDecider) RecordUnchecked(_ context.Context, req contract.Request, why string) *contract.Decision {
	return &contract.Decision{Request: req, Verdict: contract.Verdict{Warn: []contract.Message{{Msg: why}}, Error: "the decision could not be recorded: disk full"}}
}

// allow-unsafe admits a check that timed out, but only with its record: an
// unchecked admission that cannot be recorded is refused.
func TestFailOpenUnsafeNeedsTheRecord(t *testing.T) {
	t.Parallel()
	d := newFakeDecider()
	d.slow = map[string]bool{"registry.local/prod/app": true}
	d.deny = nil
	h := newHandler(t, Config{Timeout: 50 * time.Millisecond, FailureMode: FailOpenUnsafe}, unrecordedDecider{d}, &fakeResolver{})
	code, resp := post(t, h, "/validate", fixture(t, "deployment.json"))
	if code != 200 || resp.Allowed {
		t.Fatalf("got %d allowed=%v %s, want a denial", code, resp.Allowed, message(resp))
	}
	if got := message(resp); !strings.Contains(got, "could not be recorded") {
		t.Errorf("denial %q does not say the record failed", got)
	}
}

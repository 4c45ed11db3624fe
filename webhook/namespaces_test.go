package webhook

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

func TestNamespaceLabels(t *testing.T) {
	labels := map[string]map[string]string{
		"shop":    {"env": "prod"},
		"sandbox": {ModeLabel: "warn"},
		"lab":     {ModeLabel: "off"},
		"typo":    {ModeLabel: "of"},
		"pinned":  {ModeLabel: "off"}, // Namespaces wins
	}
	cfg := Config{
		Namespaces:       map[string]Mode{"pinned": ModeEnforce},
		ModeLabelRelaxes: true,
		NamespaceLabels: func(_ context.Context, ns string) (map[string]string, error) {
			if ns == "broken" {
				return nil, errUnreachable
			}
			return labels[ns], nil
		},
	}
	for _, tt := range []struct {
		ns      string
		allowed bool
		evals   int64
	}{{"shop", false, 3}, {"sandbox", true, 3}, {"lab", true, 0}, {"typo", false, 3}, {"pinned", false, 3}, {"broken", false, 0}} {
		t.Run(tt.ns, func(t *testing.T) {
			d := newFakeDecider()
			h := newHandler(t, cfg, d, &fakeResolver{})
			_, resp := post(t, h, "/validate", editFixture(t, "job.json", func(req map[string]any) { req["namespace"] = tt.ns }))
			if resp.Allowed != tt.allowed || d.calls.Load() != tt.evals {
				t.Fatalf("allowed=%v evals=%d: %s", resp.Allowed, d.calls.Load(), message(resp))
			}
			if tt.ns == "broken" && !strings.Contains(message(resp), "portcullis could not read the labels of namespace broken") {
				t.Fatalf("denial %q does not say the labels could not be read", message(resp))
			}
			for _, r := range d.requests() {
				if got := r.Target.Kubernetes.NamespaceLabels; !maps.Equal(got, labels[tt.ns]) {
					t.Errorf("namespace labels %v", got)
				}
			}
		})
	}
}

// TestModeLabelOnlyTightens: without ModeLabelRelaxes the mode label
// cannot make a namespace less strict than the default mode (whoever may
// label namespaces must not be able to switch enforcement off), but can
// make it stricter.
func TestModeLabelOnlyTightens(t *testing.T) {
	t.Parallel()
	labels := func(_ context.Context, ns string) (map[string]string, error) {
		return map[string]string{ModeLabel: ns}, nil // the namespace's name is its label
	}
	for _, tt := range []struct {
		def  Mode
		ns   string
		want Mode
	}{
		{ModeEnforce, "off", ModeEnforce}, {ModeEnforce, "warn", ModeEnforce}, {ModeEnforce, "enforce", ModeEnforce},
		{ModeWarn, "off", ModeWarn}, {ModeWarn, "enforce", ModeEnforce}, {ModeOff, "warn", ModeWarn}, {ModeOff, "enforce", ModeEnforce},
	} {
		c := Config{DefaultMode: tt.def, NamespaceLabels: labels}
		l, _ := labels(t.Context(), tt.ns)
		if got := c.mode(tt.ns, l); got != tt.want {
			t.Errorf("default %s, label %s: mode %s, want %s", tt.def, tt.ns, got, tt.want)
		}
		c.ModeLabelRelaxes = true
		if got := c.mode(tt.ns, l); got != Mode(tt.ns) {
			t.Errorf("default %s, label %s, modeLabelRelaxes: mode %s, want the label's", tt.def, tt.ns, got)
		}
	}
	// Through the handler: a namespace labelled off is still enforced.
	h := newHandler(t, Config{NamespaceLabels: labels}, newFakeDecider(), &fakeResolver{})
	if _, resp := post(t, h, "/validate", editFixture(t, "job.json", func(req map[string]any) { req["namespace"] = "off" })); resp.Allowed {
		t.Fatal("a namespace labelled off admitted an unsigned image under defaultMode enforce")
	}
}

// TestNamespaceLabelsFailClosed (I7): labels that cannot be read deny the
// review, on both paths, with a record; never "no labels". A namespace
// whose mode labels cannot change (exempt, or set in Namespaces to off)
// is not asked.
func TestNamespaceLabelsFailClosed(t *testing.T) {
	t.Parallel()
	var asked sync.Map
	cfg := Config{
		Namespaces: map[string]Mode{"quiet": ModeOff},
		NamespaceLabels: func(_ context.Context, ns string) (map[string]string, error) {
			asked.Store(ns, true)
			return nil, errUnreachable
		},
	}
	for _, path := range []string{"/validate", "/mutate"} {
		d := &panickyDecider{}
		h := newHandler(t, cfg, d, &fakeResolver{})
		_, resp := post(t, h, path, editFixture(t, "job.json", func(req map[string]any) { req["namespace"] = "shop" }))
		if resp.Allowed || !strings.Contains(message(resp), "could not read the labels of namespace shop") {
			t.Fatalf("%s: allowed=%v: %s", path, resp.Allowed, message(resp))
		}
		if rec := d.recorded(); len(rec) != 1 || !strings.Contains(rec[0].Error(), "labels of namespace shop") {
			t.Fatalf("%s: recorded %v, want the one failure", path, rec)
		}
	}
	for _, ns := range []string{"kube-system", "quiet"} {
		h := newHandler(t, cfg, &panickyDecider{}, &fakeResolver{})
		if _, resp := post(t, h, "/validate", editFixture(t, "job.json", func(req map[string]any) { req["namespace"] = ns })); !resp.Allowed {
			t.Fatalf("%s: %s", ns, message(resp))
		}
		if _, ok := asked.Load(ns); ok {
			t.Fatalf("the labels of %s were read though they cannot change its mode", ns)
		}
	}
}

// TestNamespacesBeforeSync: before its informer has synced, Namespaces
// gives an error for every namespace, never "no labels"; a sync that
// cannot happen times out with an error that says what to check.
func TestNamespacesBeforeSync(t *testing.T) {
	t.Parallel()
	n, err := NewNamespaces(&rest.Config{Host: "https://127.0.0.1:1", Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := n.Labels(t.Context(), "shop"); err == nil || !strings.Contains(err.Error(), "not synced") {
		t.Fatalf("labels %v, error %v: want the not-synced error", l, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n.Start(ctx)
	if err := n.WaitForSync(ctx, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not sync within 300ms") {
		t.Fatalf("WaitForSync against nothing: %v", err)
	}
}

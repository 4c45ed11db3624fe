package policy

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPolicySetRoutesTargets(t *testing.T) {
	dir := t.TempDir()
	for name, msg := range map[string]string{"prod": "prod policy", "k8s": "k8s policy", "default": "default policy"} {
		writeFiles(t, filepath.Join(dir, name), map[string]string{
			"p.rego": "package portcullis.policies.route\n\ndeny contains \"" + msg + "\" if true\n",
		})
	}
	cfg := Config{
		Default: SetConfig{Bundle: filepath.Join(dir, "default")},
		Sets: []SetConfig{
			{Name: "prod", Registry: &RegistryMatch{Prefixes: []string{"prod/"}}, Bundle: filepath.Join(dir, "prod")},
			{Name: "k8s", Kubernetes: &KubernetesMatch{Namespaces: []string{"payments"}, NamespaceSelector: &LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}, Bundle: filepath.Join(dir, "k8s")},
		},
	}
	s, err := NewSet(context.Background(), cfg, SetOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target contract.Target
		want   string
	}{
		{"registry prefix", contract.Target{Registry: &contract.RegistryTarget{Namespace: "prod", Repository: "prod/app"}}, "prod"},
		{"prefix is a path prefix", contract.Target{Registry: &contract.RegistryTarget{Namespace: "production", Repository: "production/app"}}, "default"},
		{"namespace by name", contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: "payments"}}, "k8s"},
		{"namespace by label", contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: "shop", NamespaceLabels: map[string]string{"env": "prod", "team": "x"}}}, "k8s"},
		{"namespace label mismatch", contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: "shop", NamespaceLabels: map[string]string{"env": "dev"}}}, "default"},
		{"no target", contract.Target{}, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput()
			in.Target = tt.target
			d, err := s.Eval(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if d.PolicySet != tt.want || len(d.Deny) != 1 || d.Deny[0].Msg != tt.want+" policy" {
				t.Errorf("set %q, deny %+v; want set %q", d.PolicySet, d.Deny, tt.want)
			}
		})
	}
}

func TestPolicyConfigValidate(t *testing.T) {
	bad := Config{Sets: []SetConfig{
		{Registry: &RegistryMatch{Prefixes: []string{"a"}}},
		{Name: "x", Registry: &RegistryMatch{Prefixes: []string{"/"}}},
		{Name: "x", Kubernetes: &KubernetesMatch{Namespaces: []string{"a"}}},
		{Name: "default", Kubernetes: &KubernetesMatch{Namespaces: []string{"a"}}},
		{Name: "nothing"},
	}}
	err := bad.Validate()
	for _, want := range []string{"sets[0]: name is required", "empty registry prefix", `"x" is used twice`, `"default" is used twice`, "needs registry or kubernetes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to say %q", err, want)
		}
	}
}

// TestPolicyHotReloadUnderLoad swaps bundles, good and broken, while
// evaluations run: every decision comes from a complete good bundle, a
// broken bundle is rejected with file:line and the previous one keeps
// serving. Run with -race.
func TestPolicyHotReloadUnderLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"p.rego": "package portcullis.policies.v\n\ndeny contains \"v1\" if true\n"})
	s, err := NewSet(ctx, Config{Default: SetConfig{Bundle: dir}}, SetOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Lookup(DefaultSetName)
	good := map[string]string{b.Engine().Revision(): "v1"}
	v2 := bundleOf(map[string]string{"p.rego": "package portcullis.policies.v\n\ndeny contains \"v2\" if true\n"})
	broken := bundleOf(map[string]string{"p.rego": "package portcullis.policies.v\n\ndeny contains \"v3\" if {\n\tundefined_var\n}\n"})

	var stop atomic.Bool
	var wg sync.WaitGroup
	var evals atomic.Int64
	errs := make(chan string, 16)
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				d, err := s.Eval(ctx, testInput())
				evals.Add(1)
				mu.Lock()
				want, ok := good[d.Revision]
				mu.Unlock()
				switch {
				case err != nil:
					errs <- "eval error: " + err.Error()
					return
				case !ok:
					errs <- "decision from an unknown revision " + d.Revision
					return
				case d.Allow || len(d.Deny) != 1 || d.Deny[0].Msg != want:
					errs <- "decision " + d.Deny[0].Msg + " from revision of " + want
					return
				}
			}
		})
	}
	for i := range 16 {
		// Reload from disk (v1), swap v2 in, try the broken one.
		if i%2 == 0 {
			if err := b.Reload(ctx); err != nil {
				t.Fatal(err)
			}
		} else {
			lib, _ := Library()
			m, _ := WithLibrary(lib, v2)
			r, _ := m.Revision()
			mu.Lock()
			good[r] = "v2"
			mu.Unlock()
			if err := b.Swap(ctx, v2); err != nil {
				t.Fatal(err)
			}
		}
		before := b.Engine()
		err := b.Swap(ctx, broken)
		if err == nil || !strings.Contains(err.Error(), "p.rego:4") {
			t.Fatalf("broken bundle: err %v, want a compile error at p.rego:4", err)
		}
		if b.Engine() != before {
			t.Fatal("a broken bundle replaced the serving engine")
		}
	}
	// A broken bundle on disk is rejected by Reload too.
	writeFiles(t, dir, map[string]string{"p.rego": string(broken.Modules[0].Raw)})
	if err := b.Reload(ctx); err == nil || !strings.Contains(err.Error(), "p.rego:4") {
		t.Errorf("Reload of a broken directory: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadAll(ctx); err == nil {
		t.Error("ReloadAll of a missing directory succeeded")
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if evals.Load() < 10 {
		t.Errorf("only %d evaluations ran during the reloads", evals.Load())
	}
	d, err := s.Eval(ctx, testInput())
	if err != nil || d.Allow {
		t.Errorf("after rejected reloads: %+v, %v", d, err)
	}
}

package webhook_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/verifier"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
	"github.com/portcullis-dev/portcullis/webhook"
)

// mapResolver resolves the references it was given.
type mapResolver map[string]struct {
	repo string
	d    digest.Digest
}

func (m mapResolver) Resolve(_ context.Context, image string) (webhook.Location, error) {
	r, ok := m[image]
	if !ok {
		return webhook.Location{}, fmt.Errorf("%s: manifest unknown", image)
	}
	return webhook.Location{Repository: r.repo, Digest: r.d}, nil
}

// TestRealGate admits a Deployment through a real gate over an in-process
// registry: the signed image passes, the unsigned one is denied with the
// built-in signature policy's message, and the second admission is
// answered from the cache.
func TestRealGate(t *testing.T) {
	reg, host := registrytest.New(t)
	vr := vt.Registry{Host: host}
	key := vt.NewKey(t)
	signed := vr.PushImage(t, "staging/app", "1")
	vr.PushKeyBundle(t, key, "staging/app", signed, vt.Statement(t, signed, vt.CosignSign, `{}`))
	unsigned := vr.PushImage(t, "staging/unsigned", "1")

	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "data.json"), []byte(`{"portcullis":{"config":{"signatures":{"authorities":["release"]}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := policy.NewSet(t.Context(), policy.Config{Sets: []policy.SetConfig{{Name: "shop",
		Kubernetes: &policy.KubernetesMatch{Namespaces: []string{"shop"}}, Bundle: bundle}}}, policy.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gate.New(gate.DefaultConfig(), gate.Options{Store: reg.Store(), Verifier: v, Policies: ps, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	res := mapResolver{
		"registry.local/prod/app:1.0":       {"staging/app", signed},
		"registry.local/prod/migrate:1.2":   {"staging/app", signed},
		"registry.local/staging/unsigned:1": {"staging/unsigned", unsigned},
	}
	h, err := webhook.New(webhook.Config{Authenticator: apiServerAuth{}, Logger: slog.New(slog.DiscardHandler)}, g, res)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "testdata", "admission", "deployment.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
		var rev admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &rev); err != nil || rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		t.Logf("admission %d took %s", i, time.Since(start))
		msg := rev.Response.Result.Message
		if rev.Response.Allowed || !strings.Contains(msg, `image "registry.local/staging/unsigned:1" (container sidecar): `) ||
			strings.Contains(msg, "prod/app") || !strings.Contains(msg, "policy revision sha256:") {
			t.Errorf("admission %d: %s", i, msg)
		}
	}
	// Three distinct references (two of them the same digest, looked up in
	// parallel): three misses, then three hits.
	if st := h.CacheStats(); st.Hits != 3 || st.Misses != 3 {
		t.Errorf("cache %+v, want the second admission from the cache", st)
	}
}

// apiServerAuth authenticates every request as the API server, for tests
// that call the handler directly.
type apiServerAuth struct{}

func (apiServerAuth) Authenticate(*http.Request) (webhook.Caller, error) {
	return webhook.Caller{Name: "test API server", Trusted: true}, nil
}

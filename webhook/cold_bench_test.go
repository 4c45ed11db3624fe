package webhook_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/verifier"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
	"github.com/portcullis-dev/portcullis/webhook"
)

// coldEnv is a registry holding 5 images, each signed and with a SLSA
// provenance attestation in staging/app, and promoted to prod/app (with
// the gate's verification summary).
type coldEnv struct {
	mapResolver
	opts gate.Options
	body []byte
}

func newColdEnv(b *testing.B) *coldEnv {
	st := registrytest.OnDiskStore(b)
	key := vt.NewKey(b)
	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{key.Public()}})
	if err != nil {
		b.Fatal(err)
	}
	bundle := b.TempDir()
	data := `{"portcullis":{"config":{"signatures":{"authorities":["release"]},"provenance":{"builders":["https://ci.example.com/builder"]}}}}`
	if err := os.WriteFile(filepath.Join(bundle, "data.json"), []byte(data), 0o644); err != nil {
		b.Fatal(err)
	}
	ps, err := policy.NewSet(b.Context(), policy.Config{Default: policy.SetConfig{Bundle: bundle},
		Sets: []policy.SetConfig{{Name: "prod", Registry: &policy.RegistryMatch{Prefixes: []string{"prod"}}, Bundle: bundle}}}, policy.SetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	e := &coldEnv{mapResolver: mapResolver{}, opts: gate.Options{Store: st, Verifier: v, Policies: ps,
		VSAKey: vt.NewKey(b), Logger: slog.New(slog.DiscardHandler)}}
	g, err := gate.New(gate.DefaultConfig(), e.opts)
	if err != nil {
		b.Fatal(err)
	}
	_, host := registrytest.Serve(b, st, registry.WithGate(g), registry.WithPromoted(g.Promoted))
	vr := vt.Registry{Host: host}
	var containers []map[string]string
	for i := range 5 {
		d := vr.PushImage(b, "staging/app", fmt.Sprint(i))
		vr.PushKeyBundle(b, key, "staging/app", d, vt.Statement(b, d, vt.CosignSign, `{}`))
		vr.PushKeyBundle(b, key, "staging/app", d, vt.Statement(b, d, vt.SLSAv1, vt.ProvenanceV1))
		src, _ := name.NewDigest(host + "/staging/app@" + d.String())
		img, err := remote.Image(src)
		if err != nil {
			b.Fatal(err)
		}
		dst, _ := name.NewTag(fmt.Sprintf("%s/prod/app:%d", host, i))
		if err := remote.Write(dst, img); err != nil {
			b.Fatalf("promote: %v", err)
		}
		ref := fmt.Sprintf("registry.local/app:%d", i)
		e.mapResolver[ref] = struct {
			repo string
			d    digest.Digest
		}{"staging/app", d}
		containers = append(containers, map[string]string{"name": fmt.Sprintf("c%d", i), "image": ref})
	}
	e.body, err = json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{"uid": "cold", "kind": map[string]any{"version": "v1", "kind": "Pod"}, "namespace": "shop",
			"operation": "CREATE", "userInfo": map[string]any{"username": "admin"},
			"object": map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web"},
				"spec": map[string]any{"containers": containers}}}})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// benchCold admits the 5-container pod over HTTPS, each time with a new
// gate and webhook (no evidence or decision cached), resolving the images
// to repo.
func benchCold(b *testing.B, repo string) {
	e := newColdEnv(b)
	for ref, r := range e.mapResolver {
		r.repo = repo
		e.mapResolver[ref] = r
	}
	var current atomic.Pointer[webhook.Handler]
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().ServeHTTP(w, r) }))
	b.Cleanup(srv.Close)
	client := srv.Client()
	fresh := func() {
		g, err := gate.New(gate.DefaultConfig(), e.opts)
		if err != nil {
			b.Fatal(err)
		}
		h, err := webhook.New(webhook.Config{Authenticator: apiServerAuth{}, CacheSize: -1, Logger: slog.New(slog.DiscardHandler)}, g, e.mapResolver)
		if err != nil {
			b.Fatal(err)
		}
		current.Store(h)
	}
	admit := func() time.Duration {
		start := time.Now()
		resp, err := client.Post(srv.URL+"/validate", "application/json", bytes.NewReader(e.body))
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"allowed":true`)) {
			b.Fatalf("%d %s", resp.StatusCode, out)
		}
		return time.Since(start)
	}
	fresh()
	admit() // a connection
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fresh()
		b.StartTimer()
		lat = append(lat, admit())
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkAdmitCold is the cold admission: full verification of 5 images
// (signature and provenance bundles, policy) from the local registry.
func BenchmarkAdmitCold(b *testing.B) { benchCold(b, "staging/app") }

// BenchmarkAdmitColdVSA is the cold admission of 5 promoted images on the
// fast path: one verification summary per image, nothing else read.
func BenchmarkAdmitColdVSA(b *testing.B) { benchCold(b, "prod/app") }

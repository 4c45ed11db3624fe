package gate_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/yamltypes"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/verifier"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// recorder keeps decisions; fail makes recording fail.
type recorder struct {
	mu   sync.Mutex
	all  []*contract.Decision
	fail error
}

func (r *recorder) Record(_ context.Context, d *contract.Decision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, d)
	return r.fail
}

func (r *recorder) last() *contract.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.all) == 0 {
		return nil
	}
	return r.all[len(r.all)-1]
}

// scanFunc is a Scanner made of a function.
type scanFunc func(ctx context.Context, repo string, d digest.Digest) (*scanner.Report, error)

func (f scanFunc) Report(ctx context.Context, repo string, d digest.Digest) (*scanner.Report, error) {
	return f(ctx, repo, d)
}

type env struct {
	reg  *registry.Registry
	host string
	vt.Registry
	gate    *gate.Gate
	cfg     gate.Config
	opts    gate.Options
	rec     *recorder
	release *ecdsa.PrivateKey
	vsaKey  *ecdsa.PrivateKey
}

// policyDir writes a bundle whose data configures the library.
func policyDir(t testing.TB, data string, modules map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for n, m := range modules {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const requireRelease = `{"portcullis":{"config":{"signatures":{"authorities":["release"]},
	"provenance":{"builders":["https://ci.example.com/builder"]}}}}`

func newEnv(t testing.TB, prodBundle string, mod func(*gate.Config, *gate.Options)) *env {
	t.Helper()
	newStore := registrytest.Store
	if _, ok := t.(*testing.B); ok {
		newStore = registrytest.OnDiskStore
	}
	st := newStore(t)
	e := &env{rec: &recorder{}, release: vt.NewKey(t), vsaKey: vt.NewKey(t)}
	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{e.release.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.NewSet(t.Context(), policy.Config{Sets: []policy.SetConfig{{Name: "prod",
		Registry: &policy.RegistryMatch{Prefixes: []string{"prod"}}, Bundle: prodBundle}}}, policy.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gate.DefaultConfig()
	o := gate.Options{Store: st, Verifier: v, Policies: ps, Recorder: e.rec, VSAKey: e.vsaKey}
	if mod != nil {
		mod(&cfg, &o)
	}
	e.cfg, e.opts = cfg, o
	if e.gate, err = gate.New(cfg, o); err != nil {
		t.Fatal(err)
	}
	e.reg, e.host = registrytest.Serve(t, st, registry.WithGate(e.gate), registry.WithPromoted(e.gate.Promoted))
	e.Registry = vt.Registry{Host: e.host}
	return e
}

// signed pushes an image to staging/app, signs it with key and attests
// the provenance, and returns its digest.
func (e *env) signed(t *testing.T, key *ecdsa.PrivateKey, provenance string) digest.Digest {
	t.Helper()
	d := e.PushImage(t, "staging/app", "1")
	e.PushKeyBundle(t, key, "staging/app", d, vt.Statement(t, d, vt.CosignSign, `{}`))
	if provenance != "" {
		e.PushKeyBundle(t, key, "staging/app", d, vt.Statement(t, d, vt.SLSAv1, provenance))
	}
	return d
}

// copyTo copies staging/app@d to prod/app:tag with go-containerregistry,
// as crane copy does (blob mounts, then the manifest PUT).
func (e *env) copyTo(t *testing.T, d digest.Digest, tag string) error {
	t.Helper()
	src, _ := name.NewDigest(e.host + "/staging/app@" + d.String())
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := name.NewTag(e.host + "/prod/app:" + tag)
	return remote.Write(dst, img)
}

func wantDenied(t *testing.T, err error, want string) {
	t.Helper()
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != 403 || len(te.Errors) == 0 || te.Errors[0].Code != "DENIED" {
		t.Fatalf("error %v, want 403 DENIED", err)
	}
	if !strings.Contains(te.Errors[0].Message, want) {
		t.Fatalf("message %q, want it to contain %q", te.Errors[0].Message, want)
	}
}

func (e *env) inProd(t *testing.T, d digest.Digest) bool {
	t.Helper()
	repos, err := e.reg.Store().ManifestRepositories(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		if r == "prod/app" {
			return true
		}
	}
	return false
}

func TestPromoteThroughManifestPut(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	ctx := t.Context()
	d := e.signed(t, e.release, vt.ProvenanceV1)
	if err := e.copyTo(t, d, "1.0"); err != nil {
		t.Fatalf("promotion of a signed image: %v", err)
	}
	dec := e.rec.last()
	if dec == nil || !dec.Allow || dec.Request.Action != contract.ActionPromote || dec.Request.Repository != "staging/app" {
		t.Fatalf("recorded decision %+v", dec)
	}
	// prod serves the image under its tag, with its evidence and a VSA
	// signed by the gate's key.
	got, err := e.reg.Store().Source().Resolve(ctx, "prod/app", "1.0")
	if err != nil || got != d {
		t.Fatalf("prod/app:1.0 = %s, %v", got, err)
	}
	vsaAuthority, _ := verifier.New(verifier.Authority{Name: "portcullis", Keys: []crypto.PublicKey{e.vsaKey.Public()}},
		verifier.Authority{Name: "release", Keys: []crypto.PublicKey{e.release.Public()}})
	ev, err := vsaAuthority.Collect(ctx, e.reg.Store().Source(), verifier.Subject{Repository: "prod/app", Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	var vsa *attest.VSA
	for _, a := range ev.Attestations {
		if v, ok := a.Predicate.(*attest.VSA); ok && a.Verified && a.Authorities[0] == "portcullis" {
			vsa = v
		}
	}
	if len(ev.VerifiedBy("release")) != 1 || vsa == nil || vsa.VerificationResult != attest.VSAPassed ||
		vsa.Policy.Digest == nil || !strings.HasSuffix(dec.Revision, vsa.Policy.Digest["sha256"]) {
		t.Fatalf("prod evidence: %d release signatures, VSA %+v (revision %s)", len(ev.VerifiedBy("release")), vsa, dec.Revision)
	}
	// Production tags are immutable.
	other := e.signed(t, e.release, vt.ProvenanceV1)
	err = e.copyTo(t, other, "1.0")
	wantDenied(t, err, "tag prod/app:1.0 is immutable")
	if e.inProd(t, other) {
		t.Fatal("the refused retag left its manifest in prod/app")
	}
}

func TestPromotionDenials(t *testing.T) {
	untrusted := vt.NewKey(t)
	evil := `{"buildDefinition":{"buildType":"x","externalParameters":{}},"runDetails":{"builder":{"id":"https://evil.example.com"}}}`
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, e *env) digest.Digest
		want  string
	}{
		{"unsigned", func(t *testing.T, e *env) digest.Digest { return e.PushImage(t, "staging/app", "1") },
			`has no signature verified by authority "release"`},
		{"signed by an untrusted key", func(t *testing.T, e *env) digest.Digest { return e.signed(t, untrusted, vt.ProvenanceV1) },
			`has no signature verified by authority "release"`},
		{"provenance from an untrusted builder", func(t *testing.T, e *env) digest.Digest { return e.signed(t, e.release, evil) },
			"https://evil.example.com"},
		{"attestation tampered with after signing", func(t *testing.T, e *env) digest.Digest {
			d := e.PushImage(t, "staging/app", "1")
			e.PushKeyBundle(t, e.release, "staging/app", d, vt.Statement(t, d, vt.CosignSign, `{}`))
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			sig := vt.SignDSSE(t, e.release, vt.PayloadTypeInToto, st)
			st = []byte(strings.Replace(string(st), "ci.example.com", "evil.example.com", 1))
			e.PushBundle(t, "staging/app", d, vt.SLSAv1, vt.Bundle(t, vt.KeyMaterial(t, e.release), vt.PayloadTypeInToto, st, sig))
			return d
		}, "provenance"},
		{"never pushed to staging", func(t *testing.T, e *env) digest.Digest { return e.PushImage(t, "dev/app", "1") },
			"was never pushed to a namespace that may be promoted to prod"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, policyDir(t, requireRelease, nil), nil)
			d := tt.setup(t, e)
			var err error
			if tt.name == "never pushed to staging" {
				// From dev/app, which may not be promoted to prod: its
				// blobs are known to the registry, so the manifest PUT is
				// what is refused.
				src, _ := name.NewDigest(e.host + "/dev/app@" + d.String())
				img, _ := remote.Image(src)
				dst, _ := name.NewTag(e.host + "/prod/app:1.0")
				err = remote.Write(dst, img)
			} else {
				err = e.copyTo(t, d, "1.0")
			}
			t.Logf("denied: %v", err)
			wantDenied(t, err, tt.want)
			if e.inProd(t, d) {
				t.Fatal("a denied image is in prod/app")
			}
			if dec := e.rec.last(); dec == nil || dec.Allow {
				t.Fatalf("recorded decision %+v, want a denial", dec)
			}
		})
	}
}

func TestProtectedWrites(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	// A layer the registry has never seen is linked for evidence only:
	// not readable, and no image may use it (TestEvidenceAfterPromotion).
	layer, err := random.Layer(1024, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := name.NewRepository(e.host + "/prod/app")
	if err := remote.WriteLayer(prod, layer); err != nil {
		t.Fatalf("an evidence-sized blob into prod/app: %v", err)
	}
	ld, _ := layer.Digest()
	if status, _ := e.do(t, http.MethodGet, "/v2/prod/app/blobs/"+ld.String(), "", nil); status != http.StatusNotFound {
		t.Fatalf("a blob uploaded into prod/app without a manifest is served: %d", status)
	}
	// Once promoted, nothing in prod can be deleted (a deleted tag could
	// be pushed again with other content).
	d := e.signed(t, e.release, vt.ProvenanceV1)
	if err := e.copyTo(t, d, "1.0"); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(e.host + "/prod/app:1.0")
	wantDenied(t, remote.Delete(tag), "immutable")
	byDigest, _ := name.NewDigest(e.host + "/prod/app@" + d.String())
	wantDenied(t, remote.Delete(byDigest), "immutable")
	// Staging is not protected.
	st, _ := name.NewTag(e.host + "/staging/app:1")
	if err := remote.Delete(st); err != nil {
		t.Fatalf("delete in staging: %v", err)
	}
}

// newRecorder serves one POST with body through h.
func newRecorder(h http.Handler, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, registry.PromotionsPath, strings.NewReader(body)))
	return rec
}

func TestFailClosed(t *testing.T) {
	loop := map[string]string{"boom.rego": `package portcullis.policies.boom
deny contains "x" if { 1 / 0 == 1 }
deny contains msg if { msg := sprintf("%d", [count(input.evidence.signatures.byAuthority) / 0]) }`}
	for _, tt := range []struct {
		name   string
		bundle func(t *testing.T) string
		mod    func(*gate.Config, *gate.Options)
		want   string
	}{
		{"scanner fails", func(t *testing.T) string { return policyDir(t, requireRelease, nil) },
			func(_ *gate.Config, o *gate.Options) {
				o.Scanner = scanFunc(func(context.Context, string, digest.Digest) (*scanner.Report, error) {
					return nil, errors.New("vulnerability database missing")
				})
			}, "could not check scan"},
		{"evidence collection times out", func(t *testing.T) string { return policyDir(t, requireRelease, nil) },
			func(c *gate.Config, o *gate.Options) {
				c.EvidenceTimeout = yamltypes.Duration(time.Nanosecond)
			}, "could not check evidence"},
		{"recording fails", func(t *testing.T) string { return policyDir(t, requireRelease, nil) },
			func(_ *gate.Config, o *gate.Options) { o.Recorder = &recorder{fail: errors.New("disk full")} },
			"could not be recorded"},
		{"policy errors", func(t *testing.T) string { return policyDir(t, requireRelease, loop) }, nil, "divide by zero"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.bundle(t), tt.mod)
			d := e.signed(t, e.release, vt.ProvenanceV1)
			err := e.copyTo(t, d, "1.0")
			t.Logf("denied: %v", err)
			wantDenied(t, err, tt.want)
			if e.inProd(t, d) {
				t.Fatal("image in prod/app although the gate could not decide")
			}
		})
	}
}

func TestConcurrentPromotionsOneTag(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	var ds []digest.Digest
	for range 4 {
		ds = append(ds, e.signed(t, e.release, vt.ProvenanceV1))
	}
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { errs[i] = e.copyTo(t, d, "1.0") })
	}
	wg.Wait()
	winners := 0
	for i, err := range errs {
		if err == nil {
			winners++
			continue
		}
		wantDenied(t, err, "immutable")
		if e.inProd(t, ds[i]) {
			t.Errorf("losing promotion %d left its image in prod/app", i)
		}
	}
	if winners != 1 {
		t.Fatalf("%d promotions won, want exactly 1: %v", winners, errs)
	}
}

func TestPromotionsAPI(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	d := e.signed(t, e.release, vt.ProvenanceV1)
	h := e.reg.PromotionsHandler()
	for _, tt := range []struct {
		body   string
		status int
		check  func(r registry.PromotionResponse) bool
	}{
		{`{"source":"staging/app:1","target":"prod/app:2.0"}`, 200, func(r registry.PromotionResponse) bool {
			return r.Allowed && r.Digest == d && r.Linked >= 2 && r.Revision != ""
		}},
		{`{"source":"staging/app@` + d.String() + `","target":"prod/app:2.0"}`, 200, func(r registry.PromotionResponse) bool { return r.Allowed }},
		{`{"source":"staging/app:1","target":"prod/other:1"}`, 200, func(r registry.PromotionResponse) bool { return r.Allowed }},
		{`{"source":"dev/app:1","target":"prod/app:3"}`, 404, nil},
		{`{"source":"staging/app:1","target":"staging/copy:1"}`, 403, func(r registry.PromotionResponse) bool {
			return !r.Allowed && strings.Contains(r.Reasons[0], "not a protected namespace")
		}},
		{`{"source":"staging/app:1"}`, 400, nil},
		{`{"source":"staging/app:1","target":"prod/app:2.0","extra":1}`, 400, nil},
	} {
		rec := newRecorder(h, tt.body)
		if rec.Code != tt.status {
			t.Fatalf("%s: status %d, want %d: %s", tt.body, rec.Code, tt.status, rec.Body)
		}
		if tt.check != nil {
			var r registry.PromotionResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || !tt.check(r) {
				t.Fatalf("%s: response %s", tt.body, rec.Body)
			}
		}
	}
	// The server-side promotion links the image and its evidence.
	ev, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{e.release.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ev.Collect(t.Context(), e.reg.Store().Source(), verifier.Subject{Repository: "prod/other", Digest: d})
	if err != nil || len(got.VerifiedBy("release")) != 1 || len(got.Attestations) < 1 {
		t.Fatalf("prod/other evidence: %+v, %v", got, err)
	}
}

package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

const (
	unsigned = "registry.local/staging/unsigned:1"
	revision = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

// fakeDigest is the digest a fake registry gives a tag.
func fakeDigest(name string) digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, func() []byte { s := sha256.Sum256([]byte(name)); return s[:] }())
}

// fakeResolver resolves every tag to fakeDigest(reference); references in
// fail give err, those in slow block until the context ends.
type fakeResolver struct {
	fail  map[string]error
	slow  map[string]bool
	calls atomic.Int64
}

func (r *fakeResolver) Resolve(ctx context.Context, image string) (Location, error) {
	r.calls.Add(1)
	ref, err := parseReference(image)
	if err != nil {
		return Location{}, err
	}
	if err := r.fail[image]; err != nil {
		return Location{}, err
	}
	if r.slow[image] {
		<-ctx.Done()
		return Location{}, ctx.Err()
	}
	if ref.Digest != "" {
		return Location{Repository: ref.Name, Digest: ref.Digest}, nil
	}
	return Location{Repository: ref.Name, Digest: fakeDigest(image)}, nil
}

// fakeDecider denies the repositories in deny, fails those in fail, is
// slow on those in slow, and warns about those in warn.
type fakeDecider struct {
	deny, fail, slow, warn map[string]bool
	rev                    atomic.Pointer[string]
	calls                  atomic.Int64
	mu                     sync.Mutex
	reqs                   []contract.Request
}

func newFakeDecider() *fakeDecider {
	d := &fakeDecider{deny: map[string]bool{"registry.local/staging/unsigned": true}}
	r := revision
	d.rev.Store(&r)
	return d
}

func (f *fakeDecider) Evaluate(ctx context.Context, req contract.Request) *contract.Decision {
	f.calls.Add(1)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	d := &contract.Decision{Request: req}
	d.Revision = *f.rev.Load()
	switch {
	case f.slow[req.Repository]:
		<-ctx.Done()
		d.Error = "evidence: " + ctx.Err().Error()
	case f.fail[req.Repository]:
		d.Error = "policy evaluation failed: undefined function"
	case f.deny[req.Repository]:
		d.Deny = []contract.Message{{Msg: "no valid signature from the release key"}}
	default:
		d.Allow = true
	}
	if f.warn[req.Repository] {
		d.Warn = []contract.Message{{Msg: "the SBOM is older than 30 days"}}
	}
	return d
}

func (f *fakeDecider) requests() []contract.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]contract.Request(nil), f.reqs...)
}

// revisionDecider is a fakeDecider that reports its revision.
type revisionDecider struct{ *fakeDecider }

func (r revisionDecider) RevisionFor(contract.Target) string { return *r.rev.Load() }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var errUnreachable = errors.New(`Get "https://registry.local/v2/": dial tcp 10.0.0.7:443: connect: connection refused`)

func newHandler(t testing.TB, cfg Config, d Decider, r Resolver) *Handler {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Authenticator == nil {
		cfg.Authenticator = apiServer{}
	}
	h, err := New(cfg, d, r)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "admission", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editFixture decodes a fixture, lets edit change it, and encodes it again.
func editFixture(t testing.TB, name string, edit func(req map[string]any)) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(fixture(t, name), &v); err != nil {
		t.Fatal(err)
	}
	edit(v["request"].(map[string]any))
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body to path and decodes the AdmissionReview answered, if any.
func post(t testing.TB, h http.Handler, path string, body []byte) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Type") != "application/json" {
		return rec.Code, nil
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &rev); err != nil {
		t.Fatalf("%s: response is not JSON: %v\n%s", path, err, rec.Body)
	}
	if rev.APIVersion != "admission.k8s.io/v1" || rev.Kind != "AdmissionReview" || rev.Response == nil {
		t.Fatalf("%s: bad response review: %s", path, rec.Body)
	}
	return rec.Code, rev.Response
}

func message(r *admissionv1.AdmissionResponse) string {
	if r.Result == nil {
		return ""
	}
	return fmt.Sprintf("%d %s", r.Result.Code, r.Result.Message)
}

// apiServer authenticates every request as the API server: for tests that
// call the handler directly.
type apiServer struct{}

func (apiServer) Authenticate(*http.Request) (Caller, error) {
	return Caller{Name: "test API server", Trusted: true}, nil
}

package registry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
)

// panickyGate protects prod/ and panics whenever it is asked to decide.
type panickyGate struct{}

func (panickyGate) Protected(repo string) bool                { return strings.HasPrefix(repo, "prod/") }
func (panickyGate) MutableTags(string) bool                   { return false }
func (panickyGate) Refused(context.Context, contract.Refusal) {}
func (panickyGate) AuthorizeManifest(context.Context, contract.ManifestWrite) (*contract.Plan, error) {
	panic("the gate exploded")
}
func (panickyGate) AuthorizePromotion(context.Context, string, digest.Digest, string, string, contract.Actor) (*contract.Plan, error) {
	var p *contract.Plan
	return p, p.Decision.Request.Digest.Validate() // nil dereference
}

// TestHandlerPanicIs500 is I3 at the HTTP layer: a panic in a handler (here
// the gate's, which *gate.Gate turns into a recorded denial itself) is a
// 500 with the OCI error JSON, nothing is written, and the registry keeps
// serving.
func TestHandlerPanicIs500(t *testing.T) {
	reg, host := registrytest.Serve(t, registrytest.Store(t), registry.WithGate(panickyGate{}))
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	staging, _ := name.NewTag(host + "/staging/app:1")
	if err := remote.Write(staging, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()

	put := httptest.NewRequest(http.MethodPut, "/v2/prod/app/manifests/1", strings.NewReader(string(raw)))
	put.Header.Set("Content-Type", string(mt))
	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, put)
	wantOCIError(t, "manifest PUT", rec, http.StatusInternalServerError, "UNKNOWN")

	body := `{"source":"staging/app@` + d.String() + `","target":"prod/app:1"}`
	rec = httptest.NewRecorder()
	reg.PromotionsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, registry.PromotionsPath, strings.NewReader(body)))
	wantOCIError(t, "promotion", rec, http.StatusInternalServerError, "UNKNOWN")

	rec = httptest.NewRecorder()
	reg.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/prod/app/manifests/1", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("prod/app:1 after the panics: HTTP %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	reg.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/staging/app/manifests/1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("the registry stopped serving: HTTP %d", rec.Code)
	}
}

func wantOCIError(t *testing.T, what string, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if rec.Code != status || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Errors) != 1 || body.Errors[0].Code != code {
		t.Fatalf("%s: HTTP %d %s, want %d with OCI error %s", what, rec.Code, rec.Body, status, code)
	}
}

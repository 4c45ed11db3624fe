package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/store"
)

const mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

// apiHarness is a registry on SQLite and in-memory blob storage behind a
// real HTTP server.
type apiHarness struct {
	srv   *httptest.Server
	blobs *blobstore.Store
}

func newAPIHarness(t *testing.T) *apiHarness {
	t.Helper()
	meta, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { meta.Close() })
	blobs := blobstore.New(inmemory.New())
	srv := httptest.NewServer(registry.New(store.New(meta, blobs, nil), registry.WithLogger(slog.New(slog.DiscardHandler))))
	t.Cleanup(srv.Close)
	return &apiHarness{srv: srv, blobs: blobs}
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to path (relative to the server, query included);
// header is a list of name, value pairs.
func (h *apiHarness) do(t *testing.T, method, path string, body []byte, header ...string) apiResponse {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, h.srv.URL+path, r)
	if err != nil {
		t.Fatalf("NewRequest(%s %s): %v", method, path, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return h.send(t, req)
}

func (h *apiHarness) send(t *testing.T, req *http.Request) apiResponse {
	t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.Path, err)
	}
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

func wantStatus(t *testing.T, r apiResponse, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
}

// wantError checks the status and the OCI error code, and returns the message.
func wantError(t *testing.T, r apiResponse, status int, code string) string {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("error body %s is not an OCI error (%v)", r.body, err)
	}
	if body.Errors[0].Code != code {
		t.Fatalf("error code %s, want %s (message %q)", body.Errors[0].Code, code, body.Errors[0].Message)
	}
	return body.Errors[0].Message
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

// pushBlob uploads content in one POST.
func (h *apiHarness) pushBlob(t *testing.T, repo string, content []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(content)
	r := h.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content)
	wantStatus(t, r, http.StatusCreated)
	if loc := r.header.Get("Location"); loc != "/v2/"+repo+"/blobs/"+d.String() {
		t.Fatalf("blob Location %q, want /v2/%s/blobs/%s", loc, repo, d)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(content))}
}

// startUpload opens an upload session and returns its location.
func (h *apiHarness) startUpload(t *testing.T, repo string) string {
	t.Helper()
	r := h.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	wantStatus(t, r, http.StatusAccepted)
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") || r.header.Get("Range") != "0-0" {
		t.Fatalf("upload started at %q with Range %q", loc, r.header.Get("Range"))
	}
	return loc
}

// image pushes a config and a layer into repo and returns a manifest of them.
func (h *apiHarness) image(t *testing.T, repo, seed string) ocispec.Manifest {
	t.Helper()
	cfg := h.pushBlob(t, repo, []byte(`{"seed":"`+seed+`"}`))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	layer := h.pushBlob(t, repo, []byte("layer "+seed))
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	return ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    []ocispec.Descriptor{layer},
	}
}

func (h *apiHarness) putManifest(t *testing.T, repo, ref, mediaType string, body []byte) apiResponse {
	t.Helper()
	return h.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, body, "Content-Type", mediaType)
}

// pushManifest PUTs v (an ocispec.Manifest or ocispec.Index) under ref
// (a tag, or "" for its digest) and returns its descriptor and body.
func (h *apiHarness) pushManifest(t *testing.T, repo, ref string, v any) (ocispec.Descriptor, []byte) {
	t.Helper()
	body := mustJSON(t, v)
	var doc struct {
		MediaType    string `json:"mediaType"`
		ArtifactType string `json:"artifactType"`
	}
	_ = json.Unmarshal(body, &doc)
	d := digest.FromBytes(body)
	if ref == "" {
		ref = d.String()
	}
	r := h.putManifest(t, repo, ref, doc.MediaType, body)
	wantStatus(t, r, http.StatusCreated)
	if got := r.header.Get("Docker-Content-Digest"); got != d.String() {
		t.Fatalf("Docker-Content-Digest %q, want %s", got, d)
	}
	return ocispec.Descriptor{MediaType: doc.MediaType, Digest: d, Size: int64(len(body)), ArtifactType: doc.ArtifactType}, body
}

func (h *apiHarness) tags(t *testing.T, repo string) []string {
	t.Helper()
	r := h.do(t, http.MethodGet, "/v2/"+repo+"/tags/list", nil)
	wantStatus(t, r, http.StatusOK)
	var body struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("tags list %s: %v", r.body, err)
	}
	if body.Name != repo {
		t.Fatalf("tags list names %q, want %q", body.Name, repo)
	}
	return body.Tags
}

// wantNoManifest checks that neither ref nor d resolves in repo.
func (h *apiHarness) wantNoManifest(t *testing.T, repo, ref string, d digest.Digest) {
	t.Helper()
	for _, ref := range []string{ref, d.String()} {
		wantError(t, h.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	}
}

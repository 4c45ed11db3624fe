package registry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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

func TestAPIBlobUploadDigestMismatch(t *testing.T) {
	h := newAPIHarness(t)
	tests := []struct {
		name       string
		monolithic bool
		chunks     [][]byte // PATCHed before the closing PUT
		last       []byte   // the body of the POST or the closing PUT
	}{
		{name: "monolithic", monolithic: true, last: []byte("monolithic content")},
		{name: "chunked", chunks: [][]byte{[]byte("first "), []byte("second")}},
		{name: "chunked, last chunk in the PUT", chunks: [][]byte{[]byte("first ")}, last: []byte("last")},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := fmt.Sprintf("mismatch/%d", i)
			claimed := digest.FromString("not the content")
			actual := digest.FromBytes(append(bytes.Join(tt.chunks, nil), tt.last...))
			var r apiResponse
			loc := ""
			if tt.monolithic {
				r = h.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+claimed.String(), tt.last)
			} else {
				loc = h.startUpload(t, repo)
				for _, c := range tt.chunks {
					wantStatus(t, h.do(t, http.MethodPatch, loc, c), http.StatusAccepted)
				}
				r = h.do(t, http.MethodPut, loc+"?digest="+claimed.String(), tt.last)
			}
			wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
			for _, d := range []digest.Digest{claimed, actual} {
				wantError(t, h.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil), http.StatusNotFound, "BLOB_UNKNOWN")
				if _, err := h.blobs.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
					t.Errorf("blob store Stat(%s): error %v, want ErrNotFound", d, err)
				}
			}
			if loc != "" {
				// The bytes are gone, so is the session.
				wantError(t, h.do(t, http.MethodGet, loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			}
		})
	}
}

func TestAPIManifestBlobUnknown(t *testing.T) {
	h := newAPIHarness(t)
	const repo = "app"
	img := h.image(t, repo, "base")
	child, _ := h.pushManifest(t, repo, "", img)
	foreign := h.pushBlob(t, "other", []byte("foreign layer"))
	foreign.MediaType = ocispec.MediaTypeImageLayerGzip
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("missing"), Size: 7}

	withLayers := func(layers ...ocispec.Descriptor) ocispec.Manifest {
		m := img
		m.Layers = layers
		return m
	}
	withConfig := img
	withConfig.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: missing.Digest, Size: missing.Size}
	missingChild := missing
	missingChild.MediaType = ocispec.MediaTypeImageManifest
	index := func(children ...ocispec.Descriptor) ocispec.Index {
		return ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	}

	tests := []struct {
		name      string
		mediaType string
		manifest  any
		missing   digest.Digest
	}{
		{"unknown layer", ocispec.MediaTypeImageManifest, withLayers(img.Layers[0], missing), missing.Digest},
		{"unknown config", ocispec.MediaTypeImageManifest, withConfig, missing.Digest},
		{"layer of another repository", ocispec.MediaTypeImageManifest, withLayers(foreign), foreign.Digest},
		{"unknown index child", ocispec.MediaTypeImageIndex, index(child, missingChild), missing.Digest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := mustJSON(t, tt.manifest)
			msg := wantError(t, h.putManifest(t, repo, "v1", tt.mediaType, body), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
			if !strings.Contains(msg, tt.missing.String()) {
				t.Errorf("error message %q does not name %s", msg, tt.missing)
			}
			h.wantNoManifest(t, repo, "v1", digest.FromBytes(body))
			if tags := h.tags(t, repo); len(tags) != 0 {
				t.Errorf("tags = %q after a rejected manifest, want none", tags)
			}
		})
	}
}

func TestAPIManifestInvalid(t *testing.T) {
	h := newAPIHarness(t)
	const repo = "app"
	img := h.image(t, repo, "base")
	valid := mustJSON(t, img)
	// edit returns the valid manifest with one change made by f.
	edit := func(f func(m *ocispec.Manifest)) []byte {
		m := img
		m.Layers = slices.Clone(img.Layers)
		f(&m)
		return mustJSON(t, m)
	}
	tests := []struct {
		name        string
		ref         string
		contentType string
		body        []byte
	}{
		{"invalid JSON", "v1", ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,`)},
		{"JSON array", "v1", ocispec.MediaTypeImageManifest, []byte(`[1,2]`)},
		{"unsupported Content-Type", "v1", "application/vnd.docker.distribution.manifest.v1+prettyjws", valid},
		{"unsupported mediaType without Content-Type", "v1", "", edit(func(m *ocispec.Manifest) { m.MediaType = "application/vnd.example+json" })},
		{"mediaType does not match Content-Type", "v1", mediaTypeDockerManifest, valid},
		{"index Content-Type for an image manifest", "v1", ocispec.MediaTypeImageIndex, edit(func(m *ocispec.Manifest) { m.MediaType = "" })},
		{"schemaVersion 1", "v1", ocispec.MediaTypeImageManifest, edit(func(m *ocispec.Manifest) { m.SchemaVersion = 1 })},
		{"no config", "v1", ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","layers":[]}`)},
		{"invalid config digest", "v1", ocispec.MediaTypeImageManifest, edit(func(m *ocispec.Manifest) { m.Config.Digest = "sha256:1234" })},
		{"negative layer size", "v1", ocispec.MediaTypeImageManifest, edit(func(m *ocispec.Manifest) { m.Layers[0].Size = -1 })},
		{"layer without mediaType", "v1", ocispec.MediaTypeImageManifest, edit(func(m *ocispec.Manifest) { m.Layers[0].MediaType = "" })},
		{"embedded data not matching its digest", "v1", ocispec.MediaTypeImageManifest, edit(func(m *ocispec.Manifest) { m.Config.Data = []byte("other") })},
		{"invalid tag", "-v1", ocispec.MediaTypeImageManifest, valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, h.putManifest(t, repo, tt.ref, tt.contentType, tt.body), http.StatusBadRequest, "MANIFEST_INVALID")
			wantError(t, h.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+digest.FromBytes(tt.body).String(), nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
			if tags := h.tags(t, repo); len(tags) != 0 {
				t.Errorf("tags = %q after a rejected manifest, want none", tags)
			}
		})
	}
	t.Run("digest reference not matching the content", func(t *testing.T) {
		wrong := digest.FromString("other")
		wantError(t, h.putManifest(t, repo, wrong.String(), ocispec.MediaTypeImageManifest, valid), http.StatusBadRequest, "DIGEST_INVALID")
		h.wantNoManifest(t, repo, wrong.String(), digest.FromBytes(valid))
	})
}

func TestAPINameInvalid(t *testing.T) {
	h := newAPIHarness(t)
	names := []struct {
		name string
		repo string
	}{
		{"uppercase", "Library/app"},
		{"dot-dot component", "library/../app"},
		{"256 characters", strings.Repeat("a", 256)},
		{"empty component", "library//app"},
		{"trailing separator", "library/app/"},
		{"leading separator", "-app"},
		{"double dot separator", "app..x"},
	}
	blob := digest.FromString("blob").String()
	endpoints := []struct {
		name   string
		method string
		path   string // %s is the repository
	}{
		{"get manifest", http.MethodGet, "/v2/%s/manifests/latest"},
		{"put manifest", http.MethodPut, "/v2/%s/manifests/latest"},
		{"tags", http.MethodGet, "/v2/%s/tags/list"},
		{"get blob", http.MethodGet, "/v2/%s/blobs/" + blob},
		{"start upload", http.MethodPost, "/v2/%s/blobs/uploads/"},
		{"monolithic upload", http.MethodPost, "/v2/%s/blobs/uploads/?digest=" + blob},
		{"referrers", http.MethodGet, "/v2/%s/referrers/" + blob},
	}
	for _, n := range names {
		for _, e := range endpoints {
			t.Run(n.name+"/"+e.name, func(t *testing.T) {
				r := h.do(t, e.method, fmt.Sprintf(e.path, n.repo), []byte("blob"), "Content-Type", ocispec.MediaTypeImageManifest)
				wantError(t, r, http.StatusBadRequest, "NAME_INVALID")
			})
		}
	}
	t.Run("nothing was created", func(t *testing.T) {
		r := h.do(t, http.MethodGet, "/v2/_catalog", nil)
		wantStatus(t, r, http.StatusOK)
		if !bytes.Equal(r.body, []byte(`{"repositories":[]}`)) {
			t.Fatalf("catalog %s, want it empty", r.body)
		}
	})
	t.Run("255 characters is valid", func(t *testing.T) {
		repo := strings.Repeat("a", 255)
		wantError(t, h.do(t, http.MethodGet, "/v2/"+repo+"/tags/list", nil), http.StatusNotFound, "NAME_UNKNOWN")
		h.pushBlob(t, repo, []byte("blob"))
	})
}

// padded returns m, marshalled to exactly size bytes with a padding annotation.
func padded(t *testing.T, m ocispec.Manifest, size int) []byte {
	t.Helper()
	m.Annotations = map[string]string{"pad": ""}
	base := len(mustJSON(t, m))
	m.Annotations["pad"] = strings.Repeat("x", size-base)
	b := mustJSON(t, m)
	if len(b) != size {
		t.Fatalf("padded manifest is %d bytes, want %d", len(b), size)
	}
	return b
}

func TestAPIManifestTooLarge(t *testing.T) {
	h := newAPIHarness(t)
	const repo = "app"
	img := h.image(t, repo, "big")
	tests := []struct {
		name    string
		size    int
		chunked bool // no Content-Length: the server finds out while reading
		status  int
	}{
		{"one byte over, with Content-Length", store.MaxManifestSize + 1, false, http.StatusRequestEntityTooLarge},
		{"one byte over, chunked", store.MaxManifestSize + 1, true, http.StatusRequestEntityTooLarge},
		{"far over, chunked", 3 * store.MaxManifestSize, true, http.StatusRequestEntityTooLarge},
		{"exactly the limit", store.MaxManifestSize, false, http.StatusCreated},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := fmt.Sprintf("t%d", i)
			body := padded(t, img, tt.size)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, h.srv.URL+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
			if err != nil {
				t.Fatalf("NewRequest: %v", err)
			}
			req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
			if tt.chunked {
				req.Body = io.NopCloser(bytes.NewReader(body))
				req.ContentLength = -1
			}
			r := h.send(t, req)
			if tt.status == http.StatusCreated {
				wantStatus(t, r, http.StatusCreated)
				got := h.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+tag, nil)
				wantStatus(t, got, http.StatusOK)
				if !bytes.Equal(got.body, body) {
					t.Fatalf("stored manifest differs from the one pushed")
				}
				return
			}
			wantError(t, r, tt.status, "SIZE_INVALID")
			h.wantNoManifest(t, repo, tag, digest.FromBytes(body))
		})
	}
}

func TestAPIChunkOutOfOrder(t *testing.T) {
	h := newAPIHarness(t)
	first, second := []byte("01234"), []byte("56789")
	tests := []struct {
		name         string
		contentRange string
		wantRange    string // the Range header of the 416, if it reports progress
	}{
		{"gap", "10-14", "0-4"},
		{"overlap", "2-6", "0-4"},
		{"restart at zero", "0-4", "0-4"},
		{"malformed", "five-nine", ""},
		{"range longer than the body", "5-20", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := fmt.Sprintf("chunks/%d", i)
			loc := h.startUpload(t, repo)
			r := h.do(t, http.MethodPatch, loc, first, "Content-Range", "0-4")
			wantStatus(t, r, http.StatusAccepted)
			if got := r.header.Get("Range"); got != "0-4" {
				t.Fatalf("Range after the first chunk %q, want 0-4", got)
			}

			r = h.do(t, http.MethodPatch, loc, second, "Content-Range", tt.contentRange)
			wantError(t, r, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
			if tt.wantRange != "" && r.header.Get("Range") != tt.wantRange {
				t.Errorf("416 Range header %q, want %q", r.header.Get("Range"), tt.wantRange)
			}

			// The upload is intact and continues at the right offset.
			r = h.do(t, http.MethodGet, loc, nil)
			wantStatus(t, r, http.StatusNoContent)
			if got := r.header.Get("Range"); got != "0-4" {
				t.Fatalf("upload status Range %q after the rejected chunk, want 0-4", got)
			}
			r = h.do(t, http.MethodPatch, loc, second, "Content-Range", "5-9")
			wantStatus(t, r, http.StatusAccepted)
			if got := r.header.Get("Range"); got != "0-9" {
				t.Fatalf("Range after the second chunk %q, want 0-9", got)
			}
			d := digest.FromBytes(append(slices.Clone(first), second...))
			wantStatus(t, h.do(t, http.MethodPut, loc+"?digest="+d.String(), nil), http.StatusCreated)
			got := h.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil)
			wantStatus(t, got, http.StatusOK)
			if string(got.body) != "0123456789" {
				t.Fatalf("blob %q, want 0123456789", got.body)
			}
		})
	}
}

func TestAPIUploadUnknown(t *testing.T) {
	h := newAPIHarness(t)
	const unknown = "/v2/app/blobs/uploads/7d8f3c2a-0000-4000-8000-000000000000"
	d := digest.FromString("x").String()
	tests := []struct {
		name   string
		method string
		path   string
	}{
		{"status", http.MethodGet, unknown},
		{"chunk", http.MethodPatch, unknown},
		{"close", http.MethodPut, unknown + "?digest=" + d},
		{"cancel", http.MethodDelete, unknown},
		{"not a uuid", http.MethodPatch, "/v2/app/blobs/uploads/..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, h.do(t, tt.method, tt.path, []byte("x")), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		})
	}
}

func TestAPIUploadOtherRepository(t *testing.T) {
	h := newAPIHarness(t)
	loc := h.startUpload(t, "a")
	stolen := strings.Replace(loc, "/v2/a/", "/v2/b/", 1)
	content := []byte("content")
	d := digest.FromBytes(content)
	tests := []struct {
		name   string
		method string
		path   string
	}{
		{"status", http.MethodGet, stolen},
		{"chunk", http.MethodPatch, stolen},
		{"close", http.MethodPut, stolen + "?digest=" + d.String()},
		{"cancel", http.MethodDelete, stolen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, h.do(t, tt.method, tt.path, content), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		})
	}
	t.Run("the upload is untouched", func(t *testing.T) {
		r := h.do(t, http.MethodGet, loc, nil)
		wantStatus(t, r, http.StatusNoContent)
		if got := r.header.Get("Range"); got != "0-0" {
			t.Fatalf("Range %q, want 0-0: another repository's requests wrote to the upload", got)
		}
		wantStatus(t, h.do(t, http.MethodPatch, loc, content), http.StatusAccepted)
		wantStatus(t, h.do(t, http.MethodPut, loc+"?digest="+d.String(), nil), http.StatusCreated)
		wantStatus(t, h.do(t, http.MethodGet, "/v2/a/blobs/"+d.String(), nil), http.StatusOK)
		wantError(t, h.do(t, http.MethodGet, "/v2/b/blobs/"+d.String(), nil), http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

func TestAPIBlobRange(t *testing.T) {
	h := newAPIHarness(t)
	content := make([]byte, 100)
	for i := range content {
		content[i] = byte('a' + i%26)
	}
	path := "/v2/app/blobs/" + h.pushBlob(t, "app", content).Digest.String()
	tests := []struct {
		name         string
		method       string
		rangeHeader  string
		status       int
		contentRange string
		want         []byte
	}{
		{"no Range", http.MethodGet, "", http.StatusOK, "", content},
		{"first bytes", http.MethodGet, "bytes=0-9", http.StatusPartialContent, "bytes 0-9/100", content[:10]},
		{"middle", http.MethodGet, "bytes=40-49", http.StatusPartialContent, "bytes 40-49/100", content[40:50]},
		{"open end", http.MethodGet, "bytes=90-", http.StatusPartialContent, "bytes 90-99/100", content[90:]},
		{"suffix", http.MethodGet, "bytes=-5", http.StatusPartialContent, "bytes 95-99/100", content[95:]},
		{"suffix longer than the blob", http.MethodGet, "bytes=-500", http.StatusPartialContent, "bytes 0-99/100", content},
		{"end past the blob", http.MethodGet, "bytes=95-200", http.StatusPartialContent, "bytes 95-99/100", content[95:]},
		{"last byte", http.MethodGet, "bytes=99-99", http.StatusPartialContent, "bytes 99-99/100", content[99:]},
		{"HEAD", http.MethodHead, "bytes=0-9", http.StatusPartialContent, "bytes 0-9/100", nil},
		{"start at the size", http.MethodGet, "bytes=100-", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"start past the size", http.MethodGet, "bytes=1000-1001", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"end before start", http.MethodGet, "bytes=50-0", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"empty suffix", http.MethodGet, "bytes=-0", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"several ranges are ignored", http.MethodGet, "bytes=0-1,5-6", http.StatusOK, "", content},
		{"other units are ignored", http.MethodGet, "items=0-1", http.StatusOK, "", content},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header []string
			if tt.rangeHeader != "" {
				header = []string{"Range", tt.rangeHeader}
			}
			r := h.do(t, tt.method, path, nil, header...)
			wantStatus(t, r, tt.status)
			if got := r.header.Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tt.contentRange)
			}
			if tt.status == http.StatusRequestedRangeNotSatisfiable {
				return
			}
			if tt.method == http.MethodHead {
				if len(r.body) != 0 || r.header.Get("Content-Length") != "10" {
					t.Errorf("HEAD: body of %d bytes, Content-Length %q; want none and 10", len(r.body), r.header.Get("Content-Length"))
				}
				return
			}
			if !bytes.Equal(r.body, tt.want) {
				t.Errorf("body %q, want %q", r.body, tt.want)
			}
			if got, want := r.header.Get("Content-Length"), fmt.Sprint(len(tt.want)); got != want {
				t.Errorf("Content-Length %s, want %s", got, want)
			}
		})
	}
}

func TestAPIManifestAccept(t *testing.T) {
	h := newAPIHarness(t)
	oci, ociBody := h.pushManifest(t, "app", "oci", h.image(t, "app", "oci"))
	dockerImg := h.image(t, "app", "docker")
	dockerImg.MediaType = mediaTypeDockerManifest
	docker, dockerBody := h.pushManifest(t, "app", "docker", dockerImg)

	tests := []struct {
		name   string
		method string
		ref    string
		accept []string
		want   *ocispec.Descriptor // nil: 404
		body   []byte
	}{
		{"no Accept", http.MethodGet, "oci", nil, &oci, ociBody},
		{"exact", http.MethodGet, "oci", []string{ocispec.MediaTypeImageManifest}, &oci, ociBody},
		{"list in one header", http.MethodGet, "oci", []string{mediaTypeDockerManifest + ", " + ocispec.MediaTypeImageManifest}, &oci, ociBody},
		{"several headers", http.MethodGet, "oci", []string{mediaTypeDockerManifest, ocispec.MediaTypeImageManifest}, &oci, ociBody},
		{"with q parameter", http.MethodGet, "oci", []string{ocispec.MediaTypeImageManifest + ";q=0.5"}, &oci, ociBody},
		{"wildcard", http.MethodGet, "oci", []string{"*/*"}, &oci, ociBody},
		{"by digest", http.MethodGet, oci.Digest.String(), []string{ocispec.MediaTypeImageManifest}, &oci, ociBody},
		{"HEAD", http.MethodHead, "oci", []string{ocispec.MediaTypeImageManifest}, &oci, nil},
		{"only docker accepted", http.MethodGet, "oci", []string{mediaTypeDockerManifest}, nil, nil},
		{"only index accepted", http.MethodGet, "oci", []string{ocispec.MediaTypeImageIndex}, nil, nil},
		{"docker manifest, docker accepted", http.MethodGet, "docker", []string{mediaTypeDockerManifest}, &docker, dockerBody},
		{"docker manifest, only OCI accepted", http.MethodGet, "docker", []string{ocispec.MediaTypeImageManifest}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header []string
			for _, a := range tt.accept {
				header = append(header, "Accept", a)
			}
			r := h.do(t, tt.method, "/v2/app/manifests/"+tt.ref, nil, header...)
			if tt.want == nil {
				wantError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
				return
			}
			wantStatus(t, r, http.StatusOK)
			if got := r.header.Get("Content-Type"); got != tt.want.MediaType {
				t.Errorf("Content-Type %q, want %q", got, tt.want.MediaType)
			}
			if got := r.header.Get("Docker-Content-Digest"); got != tt.want.Digest.String() {
				t.Errorf("Docker-Content-Digest %q, want %s", got, tt.want.Digest)
			}
			if got := r.header.Get("Content-Length"); got != fmt.Sprint(tt.want.Size) {
				t.Errorf("Content-Length %q, want %d", got, tt.want.Size)
			}
			if !bytes.Equal(r.body, tt.body) {
				t.Errorf("body %s, want %s", r.body, tt.body)
			}
		})
	}
}

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// pages follows Link headers from path and returns each page's items
// (field is "tags" or "repositories").
func (h *apiHarness) pages(t *testing.T, path, field string) [][]string {
	t.Helper()
	var out [][]string
	for path != "" {
		if len(out) > 100 {
			t.Fatalf("more than 100 pages")
		}
		r := h.do(t, http.MethodGet, path, nil)
		wantStatus(t, r, http.StatusOK)
		var body map[string]json.RawMessage
		var items []string
		if err := json.Unmarshal(r.body, &body); err != nil || json.Unmarshal(body[field], &items) != nil || items == nil {
			t.Fatalf("GET %s: body %s has no %s list", path, r.body, field)
		}
		out = append(out, items)
		path = ""
		if link := r.header.Get("Link"); link != "" {
			m := nextLink.FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("Link header %q is not <url>; rel=\"next\"", link)
			}
			path = m[1]
		}
	}
	return out
}

func TestAPITagsPagination(t *testing.T) {
	h := newAPIHarness(t)
	img := h.image(t, "app", "tags")
	for _, tag := range []string{"v2", "a", "v10", "b", "c"} {
		h.pushManifest(t, "app", tag, img)
	}
	all := []string{"a", "b", "c", "v10", "v2"}
	tests := []struct {
		name  string
		query string
		want  [][]string
	}{
		{"all", "", [][]string{all}},
		{"pages of two", "?n=2", [][]string{{"a", "b"}, {"c", "v10"}, {"v2"}}},
		{"pages of five end with an empty page", "?n=5", [][]string{all, {}}},
		{"after last", "?last=b", [][]string{{"c", "v10", "v2"}}},
		{"after last, pages of two", "?n=2&last=b", [][]string{{"c", "v10"}, {"v2"}}},
		{"n above the count", "?n=10", [][]string{all}},
		{"n zero", "?n=0", [][]string{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.pages(t, "/v2/app/tags/list"+tt.query, "tags")
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("pages %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("Link header", func(t *testing.T) {
		r := h.do(t, http.MethodGet, "/v2/app/tags/list?n=2", nil)
		if got, want := r.header.Get("Link"), `</v2/app/tags/list?last=b&n=2>; rel="next"`; got != want {
			t.Fatalf("Link %q, want %q", got, want)
		}
	})
	t.Run("invalid n", func(t *testing.T) {
		for _, n := range []string{"x", "-1", "1.5"} {
			r := h.do(t, http.MethodGet, "/v2/app/tags/list?n="+n, nil)
			wantStatus(t, r, http.StatusBadRequest)
		}
	})
	t.Run("unknown repository", func(t *testing.T) {
		wantError(t, h.do(t, http.MethodGet, "/v2/unknown/tags/list", nil), http.StatusNotFound, "NAME_UNKNOWN")
	})
}

func TestAPICatalogPagination(t *testing.T) {
	h := newAPIHarness(t)
	all := []string{"alpha", "alpha/one", "beta", "gamma/x/y"}
	for _, repo := range []string{"beta", "gamma/x/y", "alpha", "alpha/one"} {
		h.pushManifest(t, repo, "1", h.image(t, repo, repo))
	}
	// Blobs alone (a push refused before its manifest) list nothing.
	h.pushBlob(t, "alpha/blobs-only", []byte("a refused push"))
	tests := []struct {
		name  string
		query string
		want  [][]string
	}{
		{"all", "", [][]string{all}},
		{"pages of three", "?n=3", [][]string{all[:3], all[3:]}},
		{"pages of two", "?n=2", [][]string{all[:2], all[2:], {}}},
		{"after last", "?last=alpha/one", [][]string{all[2:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.pages(t, "/v2/_catalog"+tt.query, "repositories")
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("pages %q, want %q", got, tt.want)
			}
		})
	}
}

// referrers GETs the referrers of subject and returns the index and the
// OCI-Filters-Applied header.
func (h *apiHarness) referrers(t *testing.T, repo string, subject digest.Digest, query string) ([]ocispec.Descriptor, string) {
	t.Helper()
	r := h.do(t, http.MethodGet, "/v2/"+repo+"/referrers/"+subject.String()+query, nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != ocispec.MediaTypeImageIndex {
		t.Fatalf("referrers Content-Type %q, want %s", ct, ocispec.MediaTypeImageIndex)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(r.body, &idx); err != nil {
		t.Fatalf("referrers body %s: %v", r.body, err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex || idx.Manifests == nil {
		t.Fatalf("referrers body %s is not an image index with a manifests list", r.body)
	}
	return idx.Manifests, r.header.Get("OCI-Filters-Applied")
}

func wantDescriptors(t *testing.T, got, want []ocispec.Descriptor) {
	t.Helper()
	same := func(a, b ocispec.Descriptor) bool {
		return a.MediaType == b.MediaType && a.Digest == b.Digest && a.Size == b.Size && a.ArtifactType == b.ArtifactType
	}
	if !slices.EqualFunc(got, want, same) {
		t.Fatalf("descriptors\n%+v\nwant\n%+v", got, want)
	}
}

// artifact returns an artifact manifest of repo with the empty config.
func (h *apiHarness) artifact(t *testing.T, repo, artifactType, seed string, subject *ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	empty := h.pushBlob(t, repo, []byte("{}"))
	empty.MediaType = ocispec.MediaTypeEmptyJSON
	layer := h.pushBlob(t, repo, []byte(seed))
	return ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       empty,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      subject,
		Annotations:  map[string]string{"seed": seed},
	}
}

func TestAPIReferrers(t *testing.T) {
	h := newAPIHarness(t)
	const repo = "app"
	subject, _ := h.pushManifest(t, repo, "v1", h.image(t, repo, "subject"))

	// A signature whose artifact type is its config media type.
	sig := h.image(t, repo, "signature")
	sig.Config.MediaType = "application/vnd.example.signature"
	sig.Subject = &subject
	var pushed []ocispec.Descriptor
	for _, m := range []ocispec.Manifest{
		sig,
		h.artifact(t, repo, "application/spdx+json", "sbom 1", &subject),
		h.artifact(t, repo, "application/spdx+json", "sbom 2", &subject),
	} {
		body := mustJSON(t, m)
		d := digest.FromBytes(body)
		r := h.putManifest(t, repo, d.String(), m.MediaType, body)
		wantStatus(t, r, http.StatusCreated)
		if got := r.header.Get("OCI-Subject"); got != subject.Digest.String() {
			t.Fatalf("OCI-Subject %q, want %s", got, subject.Digest)
		}
		at := m.ArtifactType
		if at == "" {
			at = m.Config.MediaType
		}
		pushed = append(pushed, ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(body)), ArtifactType: at})
	}
	// Not a referrer of subject.
	h.pushManifest(t, repo, "", h.artifact(t, repo, "application/spdx+json", "unrelated", &pushed[0]))

	tests := []struct {
		name        string
		repo        string
		query       string
		want        []ocispec.Descriptor
		wantFilters string
	}{
		{"all, oldest first", repo, "", pushed, ""},
		{"artifactType filter", repo, "?artifactType=application/spdx%2Bjson", pushed[1:], "artifactType"},
		{"artifactType of the config", repo, "?artifactType=application/vnd.example.signature", pushed[:1], "artifactType"},
		{"artifactType nothing has", repo, "?artifactType=application/none", nil, "artifactType"},
		{"other repository", "other", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, filters := h.referrers(t, tt.repo, subject.Digest, tt.query)
			wantDescriptors(t, got, tt.want)
			if filters != tt.wantFilters {
				t.Errorf("OCI-Filters-Applied %q, want %q", filters, tt.wantFilters)
			}
		})
	}
	t.Run("annotations", func(t *testing.T) {
		got, _ := h.referrers(t, repo, subject.Digest, "")
		if got[1].Annotations["seed"] != "sbom 1" {
			t.Fatalf("referrer annotations %v, want seed=sbom 1", got[1].Annotations)
		}
	})
	t.Run("invalid digest", func(t *testing.T) {
		wantError(t, h.do(t, http.MethodGet, "/v2/app/referrers/sha256:123", nil), http.StatusBadRequest, "DIGEST_INVALID")
	})
}

func TestAPIReferrersFallbackTag(t *testing.T) {
	h := newAPIHarness(t)
	const repo = "app"
	subject, _ := h.pushManifest(t, repo, "v1", h.image(t, repo, "subject"))
	// A client without the referrers API pushes its artifact without a
	// subject and lists it in the index tagged sha256-<hex>.
	old, _ := h.pushManifest(t, repo, "", h.artifact(t, repo, "application/vnd.example.old", "old", nil))
	modern, _ := h.pushManifest(t, repo, "", h.artifact(t, repo, "application/spdx+json", "new", &subject))
	fallback := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{modern, old}, // modern twice: from the API and here
	}
	tag := store.FallbackTag(subject.Digest)
	if tag != "sha256-"+subject.Digest.Encoded() {
		t.Fatalf("FallbackTag = %q, want sha256-<hex>", tag)
	}
	h.pushManifest(t, repo, tag, fallback)

	got, _ := h.referrers(t, repo, subject.Digest, "")
	wantDescriptors(t, got, []ocispec.Descriptor{modern, old})

	got, filters := h.referrers(t, repo, subject.Digest, "?artifactType=application/vnd.example.old")
	wantDescriptors(t, got, []ocispec.Descriptor{old})
	if filters != "artifactType" {
		t.Errorf("OCI-Filters-Applied %q, want artifactType", filters)
	}
}

func TestAPIDeleteByTag(t *testing.T) {
	h := newAPIHarness(t)
	const repo = "app"
	img := h.image(t, repo, "delete")
	desc, _ := h.pushManifest(t, repo, "v1", img)
	h.pushManifest(t, repo, "v2", img)

	wantStatus(t, h.do(t, http.MethodDelete, "/v2/app/manifests/v1", nil), http.StatusAccepted)
	wantError(t, h.do(t, http.MethodGet, "/v2/app/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	wantStatus(t, h.do(t, http.MethodGet, "/v2/app/manifests/v2", nil), http.StatusOK)
	wantStatus(t, h.do(t, http.MethodGet, "/v2/app/manifests/"+desc.Digest.String(), nil), http.StatusOK)
	wantStatus(t, h.do(t, http.MethodGet, "/v2/app/blobs/"+img.Config.Digest.String(), nil), http.StatusOK)
	if tags := h.tags(t, repo); !slices.Equal(tags, []string{"v2"}) {
		t.Fatalf("tags %q, want [v2]", tags)
	}
	wantError(t, h.do(t, http.MethodDelete, "/v2/app/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")

	// Deleting by digest takes the remaining tags with it.
	wantStatus(t, h.do(t, http.MethodDelete, "/v2/app/manifests/"+desc.Digest.String(), nil), http.StatusAccepted)
	h.wantNoManifest(t, repo, "v2", desc.Digest)
	if tags := h.tags(t, repo); len(tags) != 0 {
		t.Fatalf("tags %q after deleting the manifest, want none", tags)
	}
}

func TestAPIRouteNames(t *testing.T) {
	h := newAPIHarness(t)
	// Repository names that contain the path markers the router looks for.
	repos := []string{"blobs", "manifests", "uploads", "referrers", "a/blobs", "a/blobs/uploads", "a/manifests/b", "tags/list", "x/tags"}
	for _, repo := range repos {
		t.Run(repo, func(t *testing.T) {
			img := h.image(t, repo, repo) // monolithic blob uploads, Location checked
			loc := h.startUpload(t, repo)
			chunk := []byte("chunked " + repo)
			wantStatus(t, h.do(t, http.MethodPatch, loc, chunk), http.StatusAccepted)
			d := digest.FromBytes(chunk)
			r := h.do(t, http.MethodPut, loc+"?digest="+d.String(), nil)
			wantStatus(t, r, http.StatusCreated)
			if got := r.header.Get("Location"); got != "/v2/"+repo+"/blobs/"+d.String() {
				t.Fatalf("Location %q", got)
			}
			for _, blob := range []digest.Digest{d, img.Config.Digest, img.Layers[0].Digest} {
				wantStatus(t, h.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+blob.String(), nil), http.StatusOK)
			}
			desc, body := h.pushManifest(t, repo, "v1", img)
			for _, ref := range []string{"v1", desc.Digest.String()} {
				r := h.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil)
				wantStatus(t, r, http.StatusOK)
				if !bytes.Equal(r.body, body) {
					t.Fatalf("manifest %s differs from the one pushed", ref)
				}
			}
			if tags := h.tags(t, repo); !slices.Equal(tags, []string{"v1"}) {
				t.Fatalf("tags %q, want [v1]", tags)
			}
			got, _ := h.referrers(t, repo, desc.Digest, "")
			wantDescriptors(t, got, nil)
		})
	}
	t.Run("catalog", func(t *testing.T) {
		got := h.pages(t, "/v2/_catalog", "repositories")
		if want := slices.Sorted(slices.Values(repos)); len(got) != 1 || !slices.Equal(got[0], want) {
			t.Fatalf("catalog %q, want %q", got, want)
		}
	})
}

func TestAPIGoContainerRegistry(t *testing.T) {
	h := newAPIHarness(t)
	host := strings.TrimPrefix(h.srv.URL, "http://")
	opts := func(t *testing.T) []remote.Option { return []remote.Option{remote.WithContext(t.Context())} }

	t.Run("image", func(t *testing.T) {
		img, err := random.Image(1024, 3)
		if err != nil {
			t.Fatalf("random.Image: %v", err)
		}
		ref, err := name.ParseReference(host + "/ggcr/image:v1")
		if err != nil {
			t.Fatalf("ParseReference: %v", err)
		}
		if err := remote.Write(ref, img, opts(t)...); err != nil {
			t.Fatalf("remote.Write: %v", err)
		}
		pulled, err := remote.Image(ref, opts(t)...)
		if err != nil {
			t.Fatalf("remote.Image: %v", err)
		}
		wantSameImage(t, pulled, img)
	})

	t.Run("index", func(t *testing.T) {
		idx, err := random.Index(512, 2, 3)
		if err != nil {
			t.Fatalf("random.Index: %v", err)
		}
		ref, err := name.ParseReference(host + "/ggcr/index:v1")
		if err != nil {
			t.Fatalf("ParseReference: %v", err)
		}
		if err := remote.WriteIndex(ref, idx, opts(t)...); err != nil {
			t.Fatalf("remote.WriteIndex: %v", err)
		}
		pulled, err := remote.Index(ref, opts(t)...)
		if err != nil {
			t.Fatalf("remote.Index: %v", err)
		}
		want, _ := idx.Digest()
		if got, err := pulled.Digest(); err != nil || got != want {
			t.Fatalf("pulled index digest %s (%v), want %s", got, err, want)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatalf("IndexManifest: %v", err)
		}
		for _, child := range im.Manifests {
			pulledChild, err := remote.Image(ref.Context().Digest(child.Digest.String()), opts(t)...)
			if err != nil {
				t.Fatalf("remote.Image(%s): %v", child.Digest, err)
			}
			wantChild, err := idx.Image(child.Digest)
			if err != nil {
				t.Fatalf("idx.Image(%s): %v", child.Digest, err)
			}
			wantSameImage(t, pulledChild, wantChild)
		}
	})

	t.Run("referrers", func(t *testing.T) {
		repo, err := name.NewRepository(host + "/ggcr/referrers")
		if err != nil {
			t.Fatalf("NewRepository: %v", err)
		}
		subject, err := random.Image(256, 1)
		if err != nil {
			t.Fatalf("random.Image: %v", err)
		}
		if err := remote.Write(repo.Tag("subject"), subject, opts(t)...); err != nil {
			t.Fatalf("remote.Write(subject): %v", err)
		}
		sd, _ := subject.Digest()
		smt, _ := subject.MediaType()
		ssize, _ := subject.Size()
		art, err := random.Image(64, 1)
		if err != nil {
			t.Fatalf("random.Image: %v", err)
		}
		art = mutate.ConfigMediaType(art, "application/vnd.example.sig")
		art = mutate.Subject(art, v1.Descriptor{MediaType: smt, Digest: sd, Size: ssize}).(v1.Image)
		ad, _ := art.Digest()
		if err := remote.Write(repo.Digest(ad.String()), art, opts(t)...); err != nil {
			t.Fatalf("remote.Write(artifact): %v", err)
		}
		idx, err := remote.Referrers(repo.Digest(sd.String()), opts(t)...)
		if err != nil {
			t.Fatalf("remote.Referrers: %v", err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatalf("IndexManifest: %v", err)
		}
		if len(im.Manifests) != 1 || im.Manifests[0].Digest != ad || im.Manifests[0].ArtifactType != "application/vnd.example.sig" {
			t.Fatalf("referrers %+v, want just %s with artifactType application/vnd.example.sig", im.Manifests, ad)
		}
		// The registry answered the referrers API, so no fallback tag was written.
		if _, err := remote.Head(repo.Tag(strings.Replace(sd.String(), ":", "-", 1)), opts(t)...); err == nil {
			t.Errorf("the client wrote the referrers fallback tag although the registry has the API")
		}
	})
}

// wantSameImage compares digests of the manifest, config and layers, and
// the bytes of each layer.
func wantSameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	gd, err := got.Digest()
	wd, _ := want.Digest()
	if err != nil || gd != wd {
		t.Fatalf("image digest %s (%v), want %s", gd, err, wd)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatalf("Layers: %v", err)
	}
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range gl {
		wantLayer, _ := wl[i].Digest()
		rc, err := gl[i].Compressed()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		gotLayer, err := digest.FromReader(rc)
		rc.Close()
		if err != nil || gotLayer.String() != wantLayer.String() {
			t.Fatalf("layer %d content hashes to %s (%v), want %s", i, gotLayer, err, wantLayer)
		}
	}
}

package registry_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/registry/store"
)

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

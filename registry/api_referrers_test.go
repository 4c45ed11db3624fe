package registry_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/registry/store"
)

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

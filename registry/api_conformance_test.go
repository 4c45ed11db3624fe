package registry_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

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

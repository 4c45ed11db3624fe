// Package sourcetest is the conformance suite every source.Source passes.
package sourcetest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Setup returns the Source under test and the host[:port] of a registry
// serving the same content, which the suite writes to over HTTP.
type Setup func(t *testing.T) (src source.Source, host string)

// Run runs the suite.
func Run(t *testing.T, setup Setup) {
	ctx := context.Background()
	src, host := setup(t)
	repo := "suite/app"
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push image: %v", err)
	}
	imgDigest, _ := img.Digest()
	want := digest.Digest(imgDigest.String())

	// A referrer: an artifact manifest whose subject is the image.
	layer := static.NewLayer([]byte(`{"hello":"referrer"}`), "application/vnd.example.payload+json")
	art := mutate.MediaType(mutate.ConfigMediaType(empty.Image, "application/vnd.example.sig"), types.OCIManifestSchema1)
	art, err = mutate.AppendLayers(art, layer)
	if err != nil {
		t.Fatal(err)
	}
	imgDesc, err := remote.Head(tag)
	if err != nil {
		t.Fatal(err)
	}
	art = mutate.Subject(art, *imgDesc).(v1.Image)
	artDigest, _ := art.Digest()
	if err := remote.Write(tag.Context().Digest(artDigest.String()), art); err != nil {
		t.Fatalf("push referrer: %v", err)
	}

	t.Run("resolve", func(t *testing.T) {
		got, err := src.Resolve(ctx, repo, "v1")
		if err != nil || got != want {
			t.Fatalf("Resolve = %s, %v; want %s", got, err, want)
		}
		if _, err := src.Resolve(ctx, repo, "nope"); !errors.Is(err, source.ErrNotFound) {
			t.Fatalf("Resolve(missing tag) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("manifest", func(t *testing.T) {
		m, err := src.Manifest(ctx, repo, want)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := img.RawManifest()
		if string(m.Content) != string(raw) || m.Digest != want {
			t.Fatalf("Manifest content or digest differ")
		}
		mt, _ := img.MediaType()
		if m.MediaType != string(mt) {
			t.Fatalf("MediaType = %q, want %q", m.MediaType, mt)
		}
		missing := digest.FromString("missing")
		if _, err := src.Manifest(ctx, repo, missing); !errors.Is(err, source.ErrNotFound) {
			t.Fatalf("Manifest(missing) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("referrers", func(t *testing.T) {
		refs, err := src.Referrers(ctx, repo, want)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 1 || refs[0].Digest.String() != artDigest.String() || refs[0].ArtifactType != "application/vnd.example.sig" {
			t.Fatalf("Referrers = %+v, want the one artifact %s", refs, artDigest)
		}
		none, err := src.Referrers(ctx, repo, digest.FromString("nothing refers to me"))
		if err != nil || len(none) != 0 {
			t.Fatalf("Referrers(unreferenced) = %v, %v; want empty", none, err)
		}
	})
	t.Run("blob", func(t *testing.T) {
		ld, _ := layer.Digest()
		b, err := src.Blob(ctx, repo, digest.Digest(ld.String()))
		if err != nil || string(b) != `{"hello":"referrer"}` {
			t.Fatalf("Blob = %q, %v", b, err)
		}
		if _, err := src.Blob(ctx, repo, digest.FromString("missing")); !errors.Is(err, source.ErrNotFound) {
			t.Fatalf("Blob(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := src.Blob(ctx, "suite/other", digest.Digest(ld.String())); !errors.Is(err, source.ErrNotFound) {
			t.Fatalf("Blob(other repository) error = %v, want ErrNotFound", err)
		}
	})
}

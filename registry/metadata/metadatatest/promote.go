package metadatatest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// stagedIndex puts, in "staging/app", an index of two images (each with a
// config and a layer), a referrer of the index, and tags the index "1".
func stagedIndex(t *testing.T, s metadata.Store) (idx, ref *metadata.Manifest, imgs []*metadata.Manifest) {
	t.Helper()
	for i := range 2 {
		cfg := linkBlob(t, s, "staging/app", fmt.Sprint("config", i))
		layer := linkBlob(t, s, "staging/app", fmt.Sprint("layer", i))
		m := image("staging/app", fmt.Sprint(i), cfg, layer)
		put(t, s, m, "")
		imgs = append(imgs, m)
	}
	idx = index("staging/app", "idx", imgs[0].Digest, imgs[1].Digest)
	put(t, s, idx, "1")
	sig := linkBlob(t, s, "staging/app", "signature")
	ref = image("staging/app", "sig", sig)
	ref.Subject = idx.Digest
	put(t, s, ref, "")
	return idx, ref, imgs
}

func testPromote(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	idx, ref, imgs := stagedIndex(t, s)
	p := metadata.Promotion{From: "staging/app", To: "prod/app",
		Manifests: []digest.Digest{imgs[0].Digest, imgs[1].Digest, idx.Digest, ref.Digest},
		Tags:      []metadata.TagUpdate{{Name: "1.0", Digest: idx.Digest, Immutable: true}}}
	if err := s.Promote(ctx, p); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	wantResolve(t, s, "prod/app", "1.0", idx.Digest)
	for _, m := range append(imgs, idx, ref) {
		got, err := s.GetManifest(ctx, "prod/app", m.Digest)
		if err != nil || string(got.Content) != string(m.Content) {
			t.Fatalf("GetManifest(prod/app, %s) = %v, %v", m.Digest, got, err)
		}
		for _, b := range m.Blobs {
			if _, err := s.StatBlob(ctx, "prod/app", b); err != nil {
				t.Errorf("blob %s of %s not linked into prod/app: %v", b, m.Digest, err)
			}
		}
	}
	refs, err := s.Referrers(ctx, "prod/app", idx.Digest)
	if err != nil || len(refs) != 1 || refs[0].Digest != ref.Digest {
		t.Fatalf("Referrers in prod/app = %v, %v", refs, err)
	}
	parents, err := s.ManifestParents(ctx, "staging/app", imgs[1].Digest)
	if err != nil || !slices.Equal(parents, []digest.Digest{idx.Digest}) {
		t.Fatalf("ManifestParents = %v, %v", parents, err)
	}
	if parents, err := s.ManifestParents(ctx, "staging/app", idx.Digest); err != nil || len(parents) != 0 {
		t.Fatalf("ManifestParents(index) = %v, %v", parents, err)
	}
	repos, err := s.ManifestRepositories(ctx, idx.Digest)
	if err != nil || !slices.Equal(repos, []string{"prod/app", "staging/app"}) {
		t.Fatalf("ManifestRepositories = %q, %v", repos, err)
	}
	// Idempotent.
	if err := s.Promote(ctx, p); err != nil {
		t.Fatalf("Promote again: %v", err)
	}
	// An immutable tag does not move, and nothing of the refused promotion
	// is written.
	other := image("staging/app", "other", imgs[0].Blobs...)
	put(t, s, other, "")
	err = s.Promote(ctx, metadata.Promotion{From: "staging/app", To: "prod/app", Manifests: []digest.Digest{other.Digest},
		Tags: []metadata.TagUpdate{{Name: "1.0", Digest: other.Digest, Immutable: true}}})
	if !errors.Is(err, metadata.ErrTagImmutable) {
		t.Fatalf("retag of an immutable tag: %v, want ErrTagImmutable", err)
	}
	wantResolve(t, s, "prod/app", "1.0", idx.Digest)
	_, err = s.GetManifest(ctx, "prod/app", other.Digest)
	wantNotFound(t, "manifest of a refused promotion", err)
	// Known blobs.
	if ok, err := s.BlobKnown(ctx, imgs[0].Blobs[0]); err != nil || !ok {
		t.Errorf("BlobKnown(linked blob) = %v, %v", ok, err)
	}
	if ok, err := s.BlobKnown(ctx, digest.FromString("never linked")); err != nil || ok {
		t.Errorf("BlobKnown(unknown blob) = %v, %v", ok, err)
	}
}

func testPromoteMissing(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	idx, _, imgs := stagedIndex(t, s)
	// The index before its children: refused, nothing written.
	err := s.Promote(ctx, metadata.Promotion{From: "staging/app", To: "prod/app", Manifests: []digest.Digest{imgs[0].Digest, idx.Digest}})
	var bu *metadata.BlobUnknownError
	if !errors.As(err, &bu) || bu.Digest != imgs[1].Digest {
		t.Fatalf("index before its children: %v, want BlobUnknownError for %s", err, imgs[1].Digest)
	}
	_, err = s.GetManifest(ctx, "prod/app", imgs[0].Digest)
	wantNotFound(t, "manifest of a refused promotion", err)
	missing := digest.FromString("not in staging")
	err = s.Promote(ctx, metadata.Promotion{From: "staging/app", To: "prod/app", Manifests: []digest.Digest{missing}})
	if !errors.As(err, &bu) || bu.Digest != missing {
		t.Fatalf("manifest missing from the source: %v", err)
	}
}

// testConcurrentPromoteOneTag: promotions of different digests to one
// immutable tag race; exactly one wins.
func testConcurrentPromoteOneTag(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "staging/app", "config")
	ms := make([]*metadata.Manifest, 16)
	for i := range ms {
		ms[i] = image("staging/app", fmt.Sprint(i), cfg)
		put(t, s, ms[i], "")
	}
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			errs[i] = s.Promote(ctx, metadata.Promotion{From: "staging/app", To: "prod/app", Manifests: []digest.Digest{m.Digest},
				Tags: []metadata.TagUpdate{{Name: "1.0", Digest: m.Digest, Immutable: true}}})
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("promotions %d and %d both won", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, metadata.ErrTagImmutable):
			t.Fatalf("promotion %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no promotion won")
	}
	wantResolve(t, s, "prod/app", "1.0", ms[won].Digest)
	repos, _ := s.ManifestRepositories(ctx, ms[(won+1)%len(ms)].Digest)
	if !slices.Equal(repos, []string{"staging/app"}) {
		t.Fatalf("a losing promotion left its manifest in %q", repos)
	}
}

package metadatatest

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// testEvidenceBlobs: a blob linked for evidence only serves an evidence
// manifest and nothing else. Linking it again the ordinary way does not
// make it ordinary, it does not count as known (nor in BlobRepositories),
// and a promotion of a manifest naming it links it for good.
func testEvidenceBlobs(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	eb, ok := s.(metadata.EvidenceBlobs)
	if !ok {
		t.Skip("the store has no evidence-only links")
	}
	ctx := t.Context()
	d := linkBlobWith(t, eb.LinkEvidenceBlob, "prod/app", "evidence bytes")
	if only, err := eb.EvidenceOnly(ctx, "prod/app", d); err != nil || !only {
		t.Fatalf("EvidenceOnly after LinkEvidenceBlob = %v, %v", only, err)
	}
	if size, err := s.StatBlob(ctx, "prod/app", d); err != nil || size != int64(len("evidence bytes")) {
		t.Fatalf("StatBlob of an evidence link = %d, %v", size, err)
	}
	// The ordinary way to link the same bytes again changes nothing.
	linkBlob(t, s, "prod/app", "evidence bytes")
	if only, err := eb.EvidenceOnly(ctx, "prod/app", d); err != nil || !only {
		t.Fatalf("EvidenceOnly after LinkBlob of the same blob = %v, %v; want still evidence only", only, err)
	}
	if known, err := s.BlobKnown(ctx, d); err != nil || known {
		t.Errorf("BlobKnown of a blob linked for evidence only = %v, %v; want false", known, err)
	}
	img := image("prod/app", "uses evidence as a layer", d)
	err := s.PutManifest(ctx, img, metadata.PutManifestOptions{Tag: "evil"})
	if !errors.Is(err, metadata.ErrEvidenceOnly) {
		t.Fatalf("PutManifest of a non-evidence manifest naming an evidence-only blob = %v, want ErrEvidenceOnly", err)
	}
	if _, err := s.ResolveTag(ctx, "prod/app", "evil"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("the refused manifest's tag exists: %v", err)
	}
	sig := image("prod/app", "a signature", d)
	if err := s.PutManifest(ctx, sig, metadata.PutManifestOptions{Evidence: true}); err != nil {
		t.Fatalf("PutManifest of evidence naming an evidence-only blob: %v", err)
	}
	if only, err := eb.EvidenceOnly(ctx, "prod/other", d); err != nil || only {
		t.Errorf("EvidenceOnly of a blob not linked = %v, %v", only, err)
	}
	// A promotion of an image naming the blob (from a repository where it
	// is an ordinary link) links it for good.
	staged := image("staging/app", "staged", linkBlob(t, s, "staging/app", "evidence bytes"))
	put(t, s, staged, "1")
	if err := s.Promote(ctx, metadata.Promotion{From: "staging/app", To: "prod/app", Manifests: []digest.Digest{staged.Digest}}); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if only, err := eb.EvidenceOnly(ctx, "prod/app", d); err != nil || only {
		t.Errorf("EvidenceOnly after a promotion naming the blob = %v, %v; want false", only, err)
	}
}

// linkBlobWith links content into repo with link and returns its digest.
func linkBlobWith(t *testing.T, link func(ctx context.Context, repo string, d digest.Digest, size int64) error, repo, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	if err := link(t.Context(), repo, d, int64(len(content))); err != nil {
		t.Fatalf("link %s into %s: %v", d, repo, err)
	}
	return d
}

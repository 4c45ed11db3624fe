package metadatatest

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

func testBlobLinkStatUnlink(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	d := digest.FromString("layer")

	_, err := s.StatBlob(ctx, "repo", d)
	wantNotFound(t, "StatBlob before LinkBlob", err)

	for range 2 { // linking twice is not an error
		if err := s.LinkBlob(ctx, "repo", d, 5); err != nil {
			t.Fatalf("LinkBlob: %v", err)
		}
	}
	size, err := s.StatBlob(ctx, "repo", d)
	if err != nil || size != 5 {
		t.Fatalf("StatBlob = %d, %v; want 5, nil", size, err)
	}

	// Links are per repository.
	_, err = s.StatBlob(ctx, "other", d)
	wantNotFound(t, "StatBlob in a repository the blob is not linked into", err)
	wantNotFound(t, "UnlinkBlob in a repository the blob is not linked into", s.UnlinkBlob(ctx, "other", d))
	if _, err := s.StatBlob(ctx, "repo", d); err != nil {
		t.Fatalf("StatBlob after unlinking from another repository: %v", err)
	}

	if err := s.UnlinkBlob(ctx, "repo", d); err != nil {
		t.Fatalf("UnlinkBlob: %v", err)
	}
	_, err = s.StatBlob(ctx, "repo", d)
	wantNotFound(t, "StatBlob after UnlinkBlob", err)
	wantNotFound(t, "second UnlinkBlob", s.UnlinkBlob(ctx, "repo", d))

	// Relinking restores the link.
	if err := s.LinkBlob(ctx, "repo", d, 5); err != nil {
		t.Fatalf("LinkBlob after UnlinkBlob: %v", err)
	}
	if size, err := s.StatBlob(ctx, "repo", d); err != nil || size != 5 {
		t.Fatalf("StatBlob after relink = %d, %v; want 5, nil", size, err)
	}
}

func testBlobLinkCreatesRepository(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	_, err := s.ListTags(ctx, "a/b", "", -1)
	wantNotFound(t, "ListTags before anything is in the repository", err)
	linkBlob(t, s, "a/b", "config")
	repos, err := s.ListRepositories(ctx, "", -1)
	if err != nil {
		t.Fatalf("ListRepositories: %v", err)
	}
	if !slices.Equal(repos, []string{"a/b"}) {
		t.Fatalf("ListRepositories = %q, want [a/b]", repos)
	}
	// The repository exists, so it has an empty tag list, not ErrNotFound.
	wantTags(t, s, "a/b")
}

func testPutManifestIdempotent(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "repo", "config")
	m := image("repo", "one", cfg)
	m.Subject = digest.FromString("subject")
	put(t, s, m, "v1")
	put(t, s, m, "v1")
	put(t, s, m, "")

	got, err := s.GetManifest(ctx, "repo", m.Digest)
	if err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	if !bytes.Equal(got.Content, m.Content) {
		t.Fatalf("GetManifest content = %s, want %s", got.Content, m.Content)
	}
	wantTags(t, s, "repo", "v1")
	refs, err := s.Referrers(ctx, "repo", m.Subject)
	if err != nil {
		t.Fatalf("Referrers: %v", err)
	}
	if len(refs) != 1 || refs[0].Digest != m.Digest {
		t.Fatalf("Referrers after three puts of one manifest = %v, want just %s", refs, m.Digest)
	}
}

func testPutManifestReferencesMustExist(t *testing.T, open func(t *testing.T) metadata.Store) {
	missing := digest.FromString("never linked")
	tests := []struct {
		name string
		// setup stores what the manifest may reference and returns the
		// manifest and the digest the error must name.
		setup func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest)
	}{
		{"missing config", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			layer := linkBlob(t, s, "repo", "layer")
			return image("repo", "m", missing, layer), missing
		}},
		{"missing layer", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			cfg := linkBlob(t, s, "repo", "config")
			return image("repo", "m", cfg, missing), missing
		}},
		{"blob linked only into another repository", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			cfg := linkBlob(t, s, "repo", "config")
			other := linkBlob(t, s, "other", "layer")
			return image("repo", "m", cfg, other), other
		}},
		{"blob unlinked", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			cfg := linkBlob(t, s, "repo", "config")
			if err := s.UnlinkBlob(t.Context(), "repo", cfg); err != nil {
				t.Fatalf("UnlinkBlob: %v", err)
			}
			return image("repo", "m", cfg), cfg
		}},
		{"missing index child", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			child := image("repo", "child", linkBlob(t, s, "repo", "config"))
			put(t, s, child, "")
			return index("repo", "i", child.Digest, missing), missing
		}},
		{"index child only in another repository", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			linkBlob(t, s, "repo", "config")
			child := image("other", "child", linkBlob(t, s, "other", "config"))
			put(t, s, child, "")
			return index("repo", "i", child.Digest), child.Digest
		}},
		{"index child is a blob, not a manifest", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			cfg := linkBlob(t, s, "repo", "config")
			return index("repo", "i", cfg), cfg
		}},
		{"deleted index child", func(t *testing.T, s metadata.Store) (*metadata.Manifest, digest.Digest) {
			child := image("repo", "child", linkBlob(t, s, "repo", "config"))
			put(t, s, child, "")
			if err := s.DeleteManifest(t.Context(), "repo", child.Digest); err != nil {
				t.Fatalf("DeleteManifest: %v", err)
			}
			return index("repo", "i", child.Digest), child.Digest
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			m, wantMissing := tt.setup(t, s)
			m.Subject = digest.FromString("subject")
			err := s.PutManifest(ctx, m, metadata.PutManifestOptions{Tag: "v1"})
			if !errors.Is(err, metadata.ErrBlobUnknown) {
				t.Fatalf("PutManifest: error %v, want ErrBlobUnknown", err)
			}
			var bu *metadata.BlobUnknownError
			if !errors.As(err, &bu) {
				t.Fatalf("PutManifest: error %v is not a *BlobUnknownError", err)
			}
			if bu.Digest != wantMissing {
				t.Errorf("BlobUnknownError names %s, want %s", bu.Digest, wantMissing)
			}
			// Nothing of the rejected manifest was written.
			_, err = s.GetManifest(ctx, "repo", m.Digest)
			wantNotFound(t, "GetManifest of a rejected manifest", err)
			_, err = s.ResolveTag(ctx, "repo", "v1")
			wantNotFound(t, "ResolveTag of a rejected manifest's tag", err)
			refs, err := s.Referrers(ctx, "repo", m.Subject)
			if err != nil || len(refs) != 0 {
				t.Fatalf("Referrers of a rejected manifest's subject = %v, %v; want none", refs, err)
			}
		})
	}
}

func testPutManifestRejectedKeepsTag(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	cfg := linkBlob(t, s, "repo", "config")
	good := image("repo", "good", cfg)
	put(t, s, good, "latest")
	bad := image("repo", "bad", cfg, digest.FromString("missing"))
	err := s.PutManifest(t.Context(), bad, metadata.PutManifestOptions{Tag: "latest"})
	if !errors.Is(err, metadata.ErrBlobUnknown) {
		t.Fatalf("PutManifest: error %v, want ErrBlobUnknown", err)
	}
	wantResolve(t, s, "repo", "latest", good.Digest)
}

func testPutManifestImmutableTags(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "repo", "config")
	a, b := image("repo", "a", cfg), image("repo", "b", cfg)
	put(t, s, a, "v1")

	err := s.PutManifest(ctx, b, metadata.PutManifestOptions{Tag: "v1", ImmutableTags: true})
	if !errors.Is(err, metadata.ErrTagImmutable) {
		t.Fatalf("moving an immutable tag: error %v, want ErrTagImmutable", err)
	}
	wantResolve(t, s, "repo", "v1", a.Digest)
	_, err = s.GetManifest(ctx, "repo", b.Digest)
	wantNotFound(t, "GetManifest of the manifest whose tag was refused (one transaction)", err)

	// Pushing the manifest the tag already names is not a move.
	if err := s.PutManifest(ctx, a, metadata.PutManifestOptions{Tag: "v1", ImmutableTags: true}); err != nil {
		t.Fatalf("re-pushing the tagged manifest with ImmutableTags: %v", err)
	}
	// A new tag is not a move either.
	if err := s.PutManifest(ctx, b, metadata.PutManifestOptions{Tag: "v2", ImmutableTags: true}); err != nil {
		t.Fatalf("new tag with ImmutableTags: %v", err)
	}
	wantResolve(t, s, "repo", "v2", b.Digest)
	wantResolve(t, s, "repo", "v1", a.Digest)
}

// testImmutableTagStays: a tag set immutable once is immutable on every
// path, whatever later callers ask: PutManifest and Promote without the
// flag, DeleteTag, DeleteManifest of its manifest, and the collector.
func testImmutableTagStays(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "prod/app", "config")
	a, b := image("prod/app", "a", cfg), image("prod/app", "b", cfg)
	if err := s.PutManifest(ctx, a, metadata.PutManifestOptions{Tag: "v1", ImmutableTags: true}); err != nil {
		t.Fatal(err)
	}
	put(t, s, b, "")
	if err := s.PutManifest(ctx, b, metadata.PutManifestOptions{Tag: "v1"}); !errors.Is(err, metadata.ErrTagImmutable) {
		t.Errorf("PutManifest without ImmutableTags moved an immutable tag: error %v", err)
	}
	// A promotion that does not ask for immutability either.
	scfg := linkBlob(t, s, "staging/app", "config")
	c := image("staging/app", "c", scfg)
	put(t, s, c, "")
	err := s.Promote(ctx, metadata.Promotion{From: "staging/app", To: "prod/app", Manifests: []digest.Digest{c.Digest},
		Tags: []metadata.TagUpdate{{Name: "v1", Digest: c.Digest}}})
	if !errors.Is(err, metadata.ErrTagImmutable) {
		t.Errorf("Promote without Immutable moved an immutable tag: error %v", err)
	}
	if _, err := s.GetManifest(ctx, "prod/app", c.Digest); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("the refused promotion left its manifest: %v", err)
	}
	if err := s.DeleteTag(ctx, "prod/app", "v1"); !errors.Is(err, metadata.ErrTagImmutable) {
		t.Errorf("DeleteTag of an immutable tag: error %v", err)
	}
	if err := s.DeleteManifest(ctx, "prod/app", a.Digest); !errors.Is(err, metadata.ErrTagImmutable) {
		t.Errorf("DeleteManifest under an immutable tag: error %v", err)
	}
	if col, ok := s.(metadata.Collector); ok {
		if done, err := col.DeleteTagIfAt(ctx, "prod/app", "v1", a.Digest); done || err != nil {
			t.Errorf("the collector deleted an immutable tag: %v, %v", done, err)
		}
	}
	wantResolve(t, s, "prod/app", "v1", a.Digest)

	// Re-tagging in place is no move, and makes a mutable tag immutable.
	put(t, s, b, "v2")
	if err := s.PutManifest(ctx, b, metadata.PutManifestOptions{Tag: "v2", ImmutableTags: true}); err != nil {
		t.Fatalf("re-pushing the tagged manifest with ImmutableTags: %v", err)
	}
	if err := s.PutManifest(ctx, a, metadata.PutManifestOptions{Tag: "v2"}); !errors.Is(err, metadata.ErrTagImmutable) {
		t.Errorf("a tag made immutable in place moved: error %v", err)
	}
	// Mutable tags still move and go.
	put(t, s, a, "latest")
	put(t, s, b, "latest")
	if err := s.DeleteTag(ctx, "prod/app", "latest"); err != nil {
		t.Errorf("DeleteTag of a mutable tag: %v", err)
	}
}

func testPutManifestRetag(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "repo", "config")
	a, b := image("repo", "a", cfg), image("repo", "b", cfg)
	put(t, s, a, "latest")
	put(t, s, b, "latest")
	wantResolve(t, s, "repo", "latest", b.Digest)
	put(t, s, a, "latest")
	wantResolve(t, s, "repo", "latest", a.Digest)
	wantTags(t, s, "repo", "latest")
	// Moving a tag leaves the manifest it pointed at.
	if _, err := s.GetManifest(ctx, "repo", b.Digest); err != nil {
		t.Fatalf("GetManifest of the untagged manifest: %v", err)
	}
}

func testGetManifestRoundTrip(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "repo", "config")
	layer := linkBlob(t, s, "repo", "layer")

	full := image("repo", "full", cfg, layer)
	full.ArtifactType = "application/vnd.example.sbom+json"
	full.Annotations = map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "unicode": "ü → ✓"}
	full.Subject = digest.FromString("subject")

	bare := image("repo", "bare", cfg)
	bare.MediaType = mediaTypeDocker

	sha512 := image("repo", "sha512", cfg)
	sha512.Digest = digest.SHA512.FromBytes(sha512.Content)

	idx := index("repo", "index", full.Digest, bare.Digest)
	idx.ArtifactType = "application/vnd.example.bundle"

	for _, m := range []*metadata.Manifest{full, bare, sha512, idx} {
		put(t, s, m, "")
	}
	tests := []struct {
		name string
		want *metadata.Manifest
	}{
		{"annotations, subject and artifact type", full},
		{"docker media type, nothing optional", bare},
		{"sha512 digest", sha512},
		{"index", idx},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.GetManifest(ctx, "repo", tt.want.Digest)
			if err != nil {
				t.Fatalf("GetManifest: %v", err)
			}
			if got.Repository != "repo" || got.Digest != tt.want.Digest {
				t.Errorf("GetManifest names %s@%s, want repo@%s", got.Repository, got.Digest, tt.want.Digest)
			}
			if got.MediaType != tt.want.MediaType {
				t.Errorf("MediaType = %q, want %q", got.MediaType, tt.want.MediaType)
			}
			if !bytes.Equal(got.Content, tt.want.Content) {
				t.Errorf("Content = %s, want %s", got.Content, tt.want.Content)
			}
			if got.ArtifactType != tt.want.ArtifactType {
				t.Errorf("ArtifactType = %q, want %q", got.ArtifactType, tt.want.ArtifactType)
			}
			if !maps.Equal(got.Annotations, tt.want.Annotations) {
				t.Errorf("Annotations = %v, want %v", got.Annotations, tt.want.Annotations)
			}
			if got.Subject != tt.want.Subject {
				t.Errorf("Subject = %q, want %q", got.Subject, tt.want.Subject)
			}
			if got.CreatedAt.IsZero() {
				t.Errorf("CreatedAt is zero")
			}
		})
	}
}

func testGetManifestNotFound(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	m := image("repo", "m", linkBlob(t, s, "repo", "config"))
	put(t, s, m, "")
	tests := []struct {
		name   string
		repo   string
		digest digest.Digest
	}{
		{"unknown digest", "repo", digest.FromString("unknown")},
		{"manifest of another repository", "other", m.Digest},
		{"same digest, other algorithm", "repo", digest.SHA512.FromBytes(m.Content)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.GetManifest(t.Context(), tt.repo, tt.digest)
			wantNotFound(t, "GetManifest", err)
		})
	}
}

func testDeleteManifest(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "repo", "config")
	a, b := image("repo", "a", cfg), image("repo", "b", cfg)
	a.Subject = digest.FromString("subject")
	put(t, s, a, "a1")
	put(t, s, a, "a2")
	put(t, s, b, "b")

	wantNotFound(t, "DeleteManifest in another repository", s.DeleteManifest(ctx, "other", a.Digest))
	wantNotFound(t, "DeleteManifest of an unknown digest", s.DeleteManifest(ctx, "repo", digest.FromString("unknown")))

	if err := s.DeleteManifest(ctx, "repo", a.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	_, err := s.GetManifest(ctx, "repo", a.Digest)
	wantNotFound(t, "GetManifest after DeleteManifest", err)
	for _, tag := range []string{"a1", "a2"} {
		_, err := s.ResolveTag(ctx, "repo", tag)
		wantNotFound(t, "ResolveTag of a deleted manifest's tag "+tag, err)
	}
	wantResolve(t, s, "repo", "b", b.Digest)
	wantTags(t, s, "repo", "b")
	refs, err := s.Referrers(ctx, "repo", a.Subject)
	if err != nil || len(refs) != 0 {
		t.Fatalf("Referrers after deleting the referrer = %v, %v; want none", refs, err)
	}
	wantNotFound(t, "second DeleteManifest", s.DeleteManifest(ctx, "repo", a.Digest))

	// The manifest can be pushed again.
	put(t, s, a, "a1")
	wantResolve(t, s, "repo", "a1", a.Digest)
}

// testBlobReferenced: a blob counts as referenced in a repository only
// while a manifest stored there names it; a link alone does not count,
// nor does a manifest in another repository.
func testBlobReferenced(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	named := linkBlob(t, s, "prod/app", "named")
	linked := linkBlob(t, s, "prod/app", "linked only")
	linkBlob(t, s, "staging/app", "linked only")
	put(t, s, image("staging/app", "other repo", linkBlob(t, s, "staging/app", "linked only")), "")
	m := image("prod/app", "a", named)
	put(t, s, m, "")
	for _, c := range []struct {
		repo string
		d    digest.Digest
		want bool
	}{{"prod/app", named, true}, {"prod/app", linked, false}, {"staging/app", named, false}, {"staging/app", linked, true}} {
		if got, err := s.BlobReferenced(ctx, c.repo, c.d); err != nil || got != c.want {
			t.Errorf("BlobReferenced(%s, %s) = %v, %v; want %v", c.repo, c.d, got, err, c.want)
		}
	}
	if err := s.DeleteManifest(ctx, "prod/app", m.Digest); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BlobReferenced(ctx, "prod/app", named); err != nil || got {
		t.Errorf("BlobReferenced after its manifest was deleted = %v, %v; want false", got, err)
	}
}

// Package metadatatest is the conformance suite every metadata.Store
// implementation runs from its own tests, in the manner of
// testing/slogtest: the implementation supplies a constructor, the suite
// asserts the contract documented in package metadata.
package metadatatest

import (
	"bytes"
	"context"
	_ "crypto/sha256" // digest.SHA256 must be available
	_ "crypto/sha512" // digest.SHA512 must be available
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// Media types the suite stores. The store does not interpret them.
const (
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeDocker   = "application/vnd.docker.distribution.manifest.v2+json"
)

// Run runs the suite. open is called once per subtest and must return a
// new, empty store; it arranges for the store to be closed (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) metadata.Store)
	}{
		{"BlobLinkStatUnlink", testBlobLinkStatUnlink},
		{"BlobLinkCreatesRepository", testBlobLinkCreatesRepository},
		{"PutManifestIdempotent", testPutManifestIdempotent},
		{"PutManifestReferencesMustExist", testPutManifestReferencesMustExist},
		{"PutManifestRejectedKeepsTag", testPutManifestRejectedKeepsTag},
		{"PutManifestImmutableTags", testPutManifestImmutableTags},
		{"PutManifestRetag", testPutManifestRetag},
		{"GetManifestRoundTrip", testGetManifestRoundTrip},
		{"GetManifestNotFound", testGetManifestNotFound},
		{"DeleteManifest", testDeleteManifest},
		{"Tags", testTags},
		{"ListTags", testListTags},
		{"ListTagsNotFound", testListTagsNotFound},
		{"ListRepositories", testListRepositories},
		{"Referrers", testReferrers},
		{"Uploads", testUploads},
		{"ConcurrentPutOneTag", testConcurrentPutOneTag},
		{"ConcurrentPutSameManifest", testConcurrentPutSameManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

// linkBlob links a blob with the given content into repo.
func linkBlob(t *testing.T, s metadata.Store, repo, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	if err := s.LinkBlob(t.Context(), repo, d, int64(len(content))); err != nil {
		t.Fatalf("LinkBlob(%s, %s): %v", repo, d, err)
	}
	return d
}

// image returns an image manifest of repo referencing blobs; seed makes
// its content (and so its digest) unique.
func image(repo, seed string, blobs ...digest.Digest) *metadata.Manifest {
	content, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaTypeManifest, "seed": seed, "blobs": blobs})
	return &metadata.Manifest{
		Repository: repo,
		Digest:     digest.FromBytes(content),
		MediaType:  mediaTypeManifest,
		Content:    content,
		Blobs:      blobs,
	}
}

// index returns an image index of repo referencing children.
func index(repo, seed string, children ...digest.Digest) *metadata.Manifest {
	content, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaTypeIndex, "seed": seed, "manifests": children})
	return &metadata.Manifest{
		Repository: repo,
		Digest:     digest.FromBytes(content),
		MediaType:  mediaTypeIndex,
		Content:    content,
		Manifests:  children,
	}
}

func put(t *testing.T, s metadata.Store, m *metadata.Manifest, tag string) {
	t.Helper()
	if err := s.PutManifest(t.Context(), m, metadata.PutManifestOptions{Tag: tag}); err != nil {
		t.Fatalf("PutManifest(%s@%s, tag %q): %v", m.Repository, m.Digest, tag, err)
	}
}

func wantResolve(t *testing.T, s metadata.Store, repo, tag string, want digest.Digest) {
	t.Helper()
	got, err := s.ResolveTag(t.Context(), repo, tag)
	if err != nil {
		t.Fatalf("ResolveTag(%s, %s): %v", repo, tag, err)
	}
	if got != want {
		t.Fatalf("ResolveTag(%s, %s) = %s, want %s", repo, tag, got, want)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("%s: error %v, want ErrNotFound", what, err)
	}
}

func wantTags(t *testing.T, s metadata.Store, repo string, want ...string) {
	t.Helper()
	got, err := s.ListTags(t.Context(), repo, "", -1)
	if err != nil {
		t.Fatalf("ListTags(%s): %v", repo, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListTags(%s) = %q, want %q", repo, got, want)
	}
}

func sameDescriptor(a, b metadata.Descriptor) bool {
	return a.MediaType == b.MediaType && a.Digest == b.Digest && a.Size == b.Size &&
		a.ArtifactType == b.ArtifactType && maps.Equal(a.Annotations, b.Annotations)
}

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

func testTags(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	m := image("repo", "m", linkBlob(t, s, "repo", "config"))
	put(t, s, m, "v1")
	put(t, s, m, "v2")

	_, err := s.ResolveTag(ctx, "repo", "v3")
	wantNotFound(t, "ResolveTag of an unknown tag", err)
	_, err = s.ResolveTag(ctx, "other", "v1")
	wantNotFound(t, "ResolveTag in another repository", err)
	wantNotFound(t, "DeleteTag in another repository", s.DeleteTag(ctx, "other", "v1"))

	if err := s.DeleteTag(ctx, "repo", "v1"); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	_, err = s.ResolveTag(ctx, "repo", "v1")
	wantNotFound(t, "ResolveTag after DeleteTag", err)
	wantNotFound(t, "second DeleteTag", s.DeleteTag(ctx, "repo", "v1"))
	wantResolve(t, s, "repo", "v2", m.Digest)
	// Deleting a tag keeps the manifest.
	if _, err := s.GetManifest(ctx, "repo", m.Digest); err != nil {
		t.Fatalf("GetManifest after DeleteTag: %v", err)
	}
}

func testListTags(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	m := image("repo", "m", linkBlob(t, s, "repo", "config"))
	for _, tag := range []string{"v2", "a", "v10", "b"} {
		put(t, s, m, tag)
	}
	other := image("other", "m", linkBlob(t, s, "other", "config"))
	put(t, s, other, "aa") // sorts between the tags of repo

	tests := []struct {
		name string
		last string
		n    int
		want []string
	}{
		{"all", "", -1, []string{"a", "b", "v10", "v2"}},
		{"first page", "", 2, []string{"a", "b"}},
		{"second page", "b", 2, []string{"v10", "v2"}},
		{"past the end", "v2", 2, nil},
		{"last is not a tag", "c", -1, []string{"v10", "v2"}},
		{"n above the count", "", 10, []string{"a", "b", "v10", "v2"}},
		{"n zero", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListTags(t.Context(), "repo", tt.last, tt.n)
			if err != nil {
				t.Fatalf("ListTags: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ListTags(last=%q, n=%d) = %q, want %q", tt.last, tt.n, got, tt.want)
			}
		})
	}
}

func testListTagsNotFound(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	put(t, s, image("repo", "m", linkBlob(t, s, "repo", "config")), "v1")
	for _, repo := range []string{"unknown", "rep", "repo/sub"} {
		_, err := s.ListTags(t.Context(), repo, "", -1)
		wantNotFound(t, "ListTags("+repo+")", err)
	}
}

func testListRepositories(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	linkBlob(t, s, "beta", "config")
	put(t, s, image("alpha/one", "m", linkBlob(t, s, "alpha/one", "config")), "v1")
	linkBlob(t, s, "alpha", "config")
	linkBlob(t, s, "gamma/x/y", "config")

	tests := []struct {
		name string
		last string
		n    int
		want []string
	}{
		{"all", "", -1, []string{"alpha", "alpha/one", "beta", "gamma/x/y"}},
		{"first page", "", 2, []string{"alpha", "alpha/one"}},
		{"second page", "alpha/one", 2, []string{"beta", "gamma/x/y"}},
		{"past the end", "gamma/x/y", 2, nil},
		{"last is not a repository", "b", -1, []string{"beta", "gamma/x/y"}},
		{"n zero", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListRepositories(t.Context(), tt.last, tt.n)
			if err != nil {
				t.Fatalf("ListRepositories: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ListRepositories(last=%q, n=%d) = %q, want %q", tt.last, tt.n, got, tt.want)
			}
		})
	}
}

// descendingReferrers returns n referrers of subject in repo whose digests
// sort in descending order, so that a store ordering by digest rather than
// by age fails.
func descendingReferrers(repo string, subject digest.Digest, n int) []*metadata.Manifest {
	var out []*metadata.Manifest
	for i := 0; len(out) < n; i++ {
		m := image(repo, fmt.Sprintf("referrer-%d", i))
		if len(out) > 0 && m.Digest >= out[len(out)-1].Digest {
			continue
		}
		m.Subject = subject
		m.ArtifactType = fmt.Sprintf("application/vnd.example.%d", len(out))
		m.Annotations = map[string]string{"n": fmt.Sprint(len(out))}
		out = append(out, m)
	}
	return out
}

func testReferrers(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	// The subject need not exist (OCI 1.1 allows pushing referrers first).
	subject := digest.FromString("subject")
	refs := descendingReferrers("repo", subject, 3)
	for _, m := range refs {
		put(t, s, m, "")
		// Separate the creation times even on stores with coarse clocks.
		time.Sleep(2 * time.Millisecond)
	}
	elsewhere := image("other", "elsewhere")
	elsewhere.Subject = subject
	put(t, s, elsewhere, "")
	unrelated := image("repo", "unrelated")
	unrelated.Subject = digest.FromString("another subject")
	put(t, s, unrelated, "")
	put(t, s, image("repo", "no subject"), "")
	// Re-pushing the oldest referrer does not make it newer.
	put(t, s, refs[0], "")

	check := func(t *testing.T, repo string, want ...*metadata.Manifest) {
		t.Helper()
		got, err := s.Referrers(ctx, repo, subject)
		if err != nil {
			t.Fatalf("Referrers(%s): %v", repo, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Referrers(%s) = %v, want %d descriptors", repo, got, len(want))
		}
		for i, m := range want {
			if !sameDescriptor(got[i], m.Descriptor()) {
				t.Errorf("Referrers(%s)[%d] = %+v, want %+v", repo, i, got[i], m.Descriptor())
			}
		}
	}
	t.Run("oldest first", func(t *testing.T) { check(t, "repo", refs...) })
	t.Run("per repository", func(t *testing.T) { check(t, "other", elsewhere) })
	t.Run("no referrers", func(t *testing.T) {
		got, err := s.Referrers(ctx, "repo", digest.FromString("nothing refers to this"))
		if err != nil || len(got) != 0 {
			t.Fatalf("Referrers = %v, %v; want none, nil", got, err)
		}
	})
	t.Run("deleted referrer", func(t *testing.T) {
		if err := s.DeleteManifest(ctx, "repo", refs[1].Digest); err != nil {
			t.Fatalf("DeleteManifest: %v", err)
		}
		check(t, "repo", refs[0], refs[2])
	})
}

func testUploads(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	a := metadata.Upload{ID: "8b1a9953-c461-4a1c-9f5e-3e3b8c8e0001", Repository: "a/b", StartedAt: time.Unix(1700000000, 123000000)}
	b := metadata.Upload{ID: "8b1a9953-c461-4a1c-9f5e-3e3b8c8e0002", Repository: "c", StartedAt: time.Unix(1700000001, 0)}

	_, err := s.GetUpload(ctx, a.ID)
	wantNotFound(t, "GetUpload before CreateUpload", err)
	for _, u := range []metadata.Upload{a, b} {
		if err := s.CreateUpload(ctx, u); err != nil {
			t.Fatalf("CreateUpload(%s): %v", u.ID, err)
		}
	}
	for _, u := range []metadata.Upload{a, b} {
		got, err := s.GetUpload(ctx, u.ID)
		if err != nil {
			t.Fatalf("GetUpload(%s): %v", u.ID, err)
		}
		if got.ID != u.ID || got.Repository != u.Repository || !got.StartedAt.Equal(u.StartedAt) {
			t.Errorf("GetUpload(%s) = %+v, want %+v", u.ID, got, u)
		}
	}
	if err := s.DeleteUpload(ctx, a.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	_, err = s.GetUpload(ctx, a.ID)
	wantNotFound(t, "GetUpload after DeleteUpload", err)
	wantNotFound(t, "second DeleteUpload", s.DeleteUpload(ctx, a.ID))
	if _, err := s.GetUpload(ctx, b.ID); err != nil {
		t.Fatalf("GetUpload of the other upload after DeleteUpload: %v", err)
	}
}

// putAll runs PutManifest for every manifest at once and returns the errors.
func putAll(ctx context.Context, s metadata.Store, ms []*metadata.Manifest, tag string) []error {
	errs := make([]error, len(ms))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			<-start
			errs[i] = s.PutManifest(ctx, m, metadata.PutManifestOptions{Tag: tag})
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentPutOneTag(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "repo", "config")
	ms := make([]*metadata.Manifest, 32)
	for i := range ms {
		ms[i] = image("repo", fmt.Sprint(i), cfg)
	}
	for i, err := range putAll(ctx, s, ms, "latest") {
		if err != nil {
			t.Errorf("PutManifest #%d: %v", i, err)
		}
	}
	got, err := s.ResolveTag(ctx, "repo", "latest")
	if err != nil {
		t.Fatalf("ResolveTag: %v", err)
	}
	if !slices.ContainsFunc(ms, func(m *metadata.Manifest) bool { return m.Digest == got }) {
		t.Fatalf("latest points at %s, none of the pushed manifests", got)
	}
	for _, m := range ms {
		if _, err := s.GetManifest(ctx, "repo", m.Digest); err != nil {
			t.Errorf("GetManifest(%s): %v", m.Digest, err)
		}
	}
	wantTags(t, s, "repo", "latest")
}

func testConcurrentPutSameManifest(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	m := image("repo", "m", linkBlob(t, s, "repo", "config"))
	m.Subject = digest.FromString("subject")
	ms := make([]*metadata.Manifest, 16)
	for i := range ms {
		c := *m
		ms[i] = &c
	}
	for i, err := range putAll(ctx, s, ms, "v1") {
		if err != nil {
			t.Errorf("PutManifest #%d: %v", i, err)
		}
	}
	wantResolve(t, s, "repo", "v1", m.Digest)
	refs, err := s.Referrers(ctx, "repo", m.Subject)
	if err != nil || len(refs) != 1 {
		t.Fatalf("Referrers = %v, %v; want one descriptor", refs, err)
	}
}

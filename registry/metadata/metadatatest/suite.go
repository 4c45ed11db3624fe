// Package metadatatest is the conformance suite every metadata.Store
// implementation runs from its own tests, in the manner of
// testing/slogtest: the implementation supplies a constructor, the suite
// asserts the contract documented in package metadata.
package metadatatest

import (
	_ "crypto/sha256" // digest.SHA256 must be available
	_ "crypto/sha512" // digest.SHA512 must be available
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"

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
		{"ImmutableTagStays", testImmutableTagStays},
		{"BlobReferenced", testBlobReferenced},
		{"EvidenceBlobs", testEvidenceBlobs},
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
		{"Promote", testPromote},
		{"PromoteMissing", testPromoteMissing},
		{"ConcurrentPromoteOneTag", testConcurrentPromoteOneTag},
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

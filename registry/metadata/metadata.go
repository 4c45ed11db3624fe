// Package metadata defines the registry's metadata store: repositories,
// blob links, manifests, tags, referrers and upload sessions.
//
// Blob bytes live in a blobstore; everything else lives here, in a
// strongly consistent SQL database. Every write that must be atomic
// (a manifest and its tag, a tag deletion) is one method call, which
// implementations run as one transaction.
package metadata

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"
)

// Sentinel errors. Implementations wrap them; callers test with errors.Is.
var (
	// ErrNotFound: the repository, blob link, manifest, tag or upload does not exist.
	ErrNotFound = errors.New("not found")
	// ErrBlobUnknown: a manifest references a blob or manifest that is not in the repository.
	ErrBlobUnknown = errors.New("referenced content unknown")
	// ErrTagImmutable: the tag exists and is immutable (it was set
	// immutable once), or points elsewhere and the caller asked not to
	// move it; or a delete would remove an immutable tag.
	ErrTagImmutable = errors.New("tag is immutable")
	// ErrEvidenceOnly: a manifest that is not evidence references a blob
	// linked into the repository for evidence only (EvidenceBlobs).
	ErrEvidenceOnly = errors.New("blob linked for evidence only")
)

// BlobUnknownError names the content a manifest references but the
// repository lacks. It matches ErrBlobUnknown with errors.Is.
type BlobUnknownError struct{ Digest digest.Digest }

func (e *BlobUnknownError) Error() string { return e.Digest.String() + ": " + ErrBlobUnknown.Error() }

// Is makes errors.Is(err, ErrBlobUnknown) true.
func (e *BlobUnknownError) Is(target error) bool { return target == ErrBlobUnknown }

// Descriptor is the subset of an OCI descriptor the store keeps.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Manifest is a stored manifest and what the registry derived from it.
type Manifest struct {
	Repository string
	Digest     digest.Digest
	MediaType  string
	Content    []byte
	// ArtifactType is the manifest's artifactType, or for image manifests
	// without one, the config media type (as the referrers API requires).
	ArtifactType string
	Annotations  map[string]string
	// Subject is the digest this manifest refers to (OCI 1.1), if any.
	Subject digest.Digest
	// Blobs are the blobs the manifest references (config and layers).
	Blobs []digest.Digest
	// Manifests are the manifests an index or list references.
	Manifests []digest.Digest
	CreatedAt time.Time
}

// Descriptor returns the descriptor a referrers index lists for m.
func (m *Manifest) Descriptor() Descriptor {
	return Descriptor{
		MediaType:    m.MediaType,
		Digest:       m.Digest,
		Size:         int64(len(m.Content)),
		ArtifactType: m.ArtifactType,
		Annotations:  m.Annotations,
	}
}

// Upload is an upload session.
type Upload struct {
	ID         string
	Repository string
	StartedAt  time.Time
}

// PutManifestOptions tune PutManifest.
type PutManifestOptions struct {
	// Tag, if set, is pointed at the manifest in the same transaction.
	Tag string
	// ImmutableTags refuses to move an existing tag to another digest and
	// makes the tag immutable: from then on no write moves it and no
	// delete removes it, whatever the caller asks.
	ImmutableTags bool
	// Evidence: the manifest is evidence the gate let in, so it may use
	// blobs linked for evidence only (EvidenceBlobs). Without it such a
	// blob is ErrEvidenceOnly.
	Evidence bool
}

// Promotion links manifests, the blobs they reference, and tags from one
// repository into another, in one transaction: no blob bytes move.
type Promotion struct {
	From, To string
	// Manifests are linked in order: a manifest's children (an index's
	// manifests) must come before it, or already be in To.
	Manifests []digest.Digest
	// Tags are pointed in To after the manifests are linked.
	Tags []TagUpdate
}

// TagUpdate points a tag at a digest.
type TagUpdate struct {
	Name   string
	Digest digest.Digest
	// Immutable refuses to move the tag if it points elsewhere, and makes
	// it immutable for good (see PutManifestOptions.ImmutableTags).
	Immutable bool
}

// Blobs links blobs into repositories. A link says "this repository
// may serve this blob"; the bytes are in the blob store.
type Blobs interface {
	// LinkBlob records the blob (digest, size) and links it into repo,
	// creating the repository if needed.
	LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error
	// StatBlob returns the size of a blob linked into repo, or ErrNotFound.
	StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	// UnlinkBlob removes the link; the bytes stay until garbage collection.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// BlobKnown reports whether any repository links the blob (links for
	// evidence only do not count: EvidenceBlobs).
	BlobKnown(ctx context.Context, d digest.Digest) (bool, error)
	// BlobReferenced reports whether a manifest stored in repo names the
	// blob as its config or one of its layers. A protected repository
	// serves only such blobs: a link alone (a mount, an upload of known
	// bytes) is not something the gate decided.
	BlobReferenced(ctx context.Context, repo string, d digest.Digest) (bool, error)
}

// Manifests stores manifests, tags and the referrers graph.
type Manifests interface {
	// PutManifest stores m (idempotently) and, if opts.Tag is set, tags it,
	// in one transaction. Every blob and child manifest m references must
	// already be in m.Repository, else the error wraps ErrBlobUnknown.
	PutManifest(ctx context.Context, m *Manifest, opts PutManifestOptions) error
	// GetManifest returns a manifest by digest, or ErrNotFound.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (*Manifest, error)
	// DeleteManifest deletes a manifest and every tag pointing at it; an
	// immutable tag pointing at it is ErrTagImmutable and nothing is
	// deleted.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	// Referrers lists the manifests in repo whose subject is d, oldest first.
	Referrers(ctx context.Context, repo string, d digest.Digest) ([]Descriptor, error)
	// ManifestParents lists the indexes in repo that reference manifest d.
	ManifestParents(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error)
	// ManifestRepositories lists the repositories holding manifest d, in
	// lexical order.
	ManifestRepositories(ctx context.Context, d digest.Digest) ([]string, error)
	// Promote carries out p in one transaction. A manifest missing from
	// p.From, or a child missing from p.To, is ErrBlobUnknown (with the
	// digest); an immutable tag pointing elsewhere is ErrTagImmutable.
	// Nothing is written then.
	Promote(ctx context.Context, p Promotion) error
}

// Tags names manifests.
type Tags interface {
	// ResolveTag returns the digest a tag points at, or ErrNotFound.
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	// ListTags lists tags in lexical order after last, at most n (n < 0: all).
	// A repository that does not exist is ErrNotFound.
	ListTags(ctx context.Context, repo, last string, n int) ([]string, error)
	// DeleteTag removes a tag, or returns ErrNotFound; an immutable tag is
	// ErrTagImmutable.
	DeleteTag(ctx context.Context, repo, tag string) error
}

// Repositories lists repositories.
type Repositories interface {
	// ListRepositories lists repositories in lexical order after last, at most n (n < 0: all).
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
}

// EvidenceBlobs is an optional capability of a Store (found by type
// assertion): blob links that only evidence may use. A protected
// repository takes new blob content only this way (a signature or an
// attestation pushed after promotion): such a link serves an evidence
// manifest (PutManifestOptions.Evidence) and nothing else; BlobKnown and
// BlobRepositories do not count it, so it never makes the content "known"
// to another repository.
type EvidenceBlobs interface {
	// LinkEvidenceBlob is LinkBlob for evidence only. An existing link
	// stays as it is (an ordinary link is not demoted).
	LinkEvidenceBlob(ctx context.Context, repo string, d digest.Digest, size int64) error
	// EvidenceOnly reports whether blob d is linked into repo for evidence
	// only (false when it is not linked at all).
	EvidenceOnly(ctx context.Context, repo string, d digest.Digest) (bool, error)
}

// ManifestRepositories is an optional capability of a Store (found by
// type assertion): the repositories holding at least one manifest, which
// are the ones the catalog shows. A repository whose pushes were all
// refused (by a quota or the gate) before their manifest holds only blobs,
// and is not listed.
type ManifestRepositories interface {
	// ListManifestRepositories lists, like ListRepositories, the
	// repositories holding a manifest.
	ListManifestRepositories(ctx context.Context, last string, n int) ([]string, error)
}

// Uploads tracks upload sessions; their bytes are in the blob store.
type Uploads interface {
	CreateUpload(ctx context.Context, u Upload) error
	// GetUpload returns the session, or ErrNotFound.
	GetUpload(ctx context.Context, id string) (Upload, error)
	// DeleteUpload removes the session, or returns ErrNotFound.
	DeleteUpload(ctx context.Context, id string) error
}

// Store is everything the registry keeps besides blob bytes.
type Store interface {
	Blobs
	Manifests
	Tags
	Repositories
	Uploads
	Close() error
}

// UsageCounter is an optional capability of a Store (found by type
// assertion): storage used per namespace, for quotas.
type UsageCounter interface {
	// NamespaceUsage returns the bytes of the distinct blobs linked into
	// repository prefix or any repository below it (prefix/...), plus the
	// bytes of their manifests.
	NamespaceUsage(ctx context.Context, prefix string) (int64, error)
	// NamespaceHasBlob reports whether blob d is linked into prefix or a
	// repository below it.
	NamespaceHasBlob(ctx context.Context, prefix string, d digest.Digest) (bool, error)
}

// Collector is an optional capability of a Store (found by type
// assertion): what online garbage collection reads and deletes. Every
// delete re-checks, in its own transaction, that the thing is still
// unreferenced, so that a push racing the collector wins.
type Collector interface {
	// GCSnapshot reads, in one consistent snapshot, what the collector
	// marks from.
	GCSnapshot(ctx context.Context) (*GCSnapshot, error)
	// DeleteManifestIfUnreferenced deletes manifest d of repo if it is
	// older than before, untagged, no manifest of repo lists it as a child,
	// and its subject (if any) is not in repo. It reports whether it did.
	DeleteManifestIfUnreferenced(ctx context.Context, repo string, d digest.Digest, before time.Time) (bool, error)
	// UnlinkBlobIfUnreferenced removes blob d's link from repo if the link
	// is older than before and no manifest of repo references d.
	UnlinkBlobIfUnreferenced(ctx context.Context, repo string, d digest.Digest, before time.Time) (bool, error)
	// DeleteBlobIfUnlinked forgets blob d if it was recorded before before
	// and no repository links it, and calls deleteBytes before committing:
	// a concurrent LinkBlob of d waits until the bytes are gone (and then
	// records d anew, which the registry catches by checking the bytes
	// after linking). It reports whether it did.
	DeleteBlobIfUnlinked(ctx context.Context, d digest.Digest, before time.Time, deleteBytes func(context.Context) error) (bool, error)
	// DeleteTagIfAt deletes tag of repo if it still points at d.
	DeleteTagIfAt(ctx context.Context, repo, tag string, d digest.Digest) (bool, error)
	// DeleteUploadIfBefore removes an upload session started before before.
	DeleteUploadIfBefore(ctx context.Context, id string, before time.Time) (bool, error)
}

// GCSnapshot is everything the collector marks from.
type GCSnapshot struct {
	Manifests []GCManifest
	// Refs are the manifest -> blob (Kind 0) and index -> child (Kind 1)
	// references.
	Refs  []GCRef
	Tags  []GCTag
	Links []GCLink
	Blobs []GCBlob
	// Uploads are the open upload sessions.
	Uploads []Upload
}

// GCManifest is a manifest as the collector sees it.
type GCManifest struct {
	Repository string
	Digest     digest.Digest
	Subject    digest.Digest
	Size       int64
	CreatedAt  time.Time
}

// GCRef is a reference from a manifest of Repository.
type GCRef struct {
	Repository string
	Manifest   digest.Digest
	Ref        digest.Digest
	Kind       int // 0 blob, 1 manifest
}

// GCTag is a tag.
type GCTag struct {
	Repository, Name string
	Digest           digest.Digest
	UpdatedAt        time.Time
}

// GCLink is a blob linked into a repository.
type GCLink struct {
	Repository string
	Digest     digest.Digest
	CreatedAt  time.Time
}

// GCBlob is a recorded blob.
type GCBlob struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// Package source reads what verification needs from a registry: a
// manifest, the manifests that refer to it, and small blobs. The registry
// serves it in-process; Remote reads any registry over HTTP.
//
// It is kept apart from package verifier so the registry can implement
// Source without linking the signature libraries.
package source

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotFound means the repository, tag, manifest or blob does not exist.
// It is a fact about the registry, not a failure to ask it.
var ErrNotFound = errors.New("not found")

// ErrInvalid means content was read but cannot be used: a blob over
// MaxBlobSize, or bytes that do not hash to their digest. Like ErrNotFound
// it is a fact about what is stored, not a failure to ask.
var ErrInvalid = errors.New("invalid content")

// MaxBlobSize bounds what Blob reads into memory: signature payloads,
// attestation envelopes and SBOMs, never image layers.
const MaxBlobSize = 64 << 20

// Manifest is a manifest's bytes and media type.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Content   []byte
}

// Source reads manifests, referrers and small blobs of one registry.
// Implementations return errors wrapping ErrNotFound for missing content
// and anything else for failures to check (I/O, timeouts, auth).
type Source interface {
	// Resolve returns the digest a tag points at.
	Resolve(ctx context.Context, repo, tag string) (digest.Digest, error)
	// Manifest returns a manifest by digest.
	Manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error)
	// Referrers lists the manifests whose subject is d (OCI 1.1 referrers,
	// including those kept under the fallback tag schema).
	Referrers(ctx context.Context, repo string, d digest.Digest) ([]ocispec.Descriptor, error)
	// Blob reads a blob of at most MaxBlobSize bytes, verified against d.
	Blob(ctx context.Context, repo string, d digest.Digest) ([]byte, error)
}

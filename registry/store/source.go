package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Source returns the stored content as a verification source, read
// in-process from its stores: no HTTP round trip.
func (s *Store) Source() source.Source { return localSource{s} }

type localSource struct{ s *Store }

// sourceErr maps store errors to the source contract.
func sourceErr(err error, what string) error {
	if errors.Is(err, metadata.ErrNotFound) || errors.Is(err, blobstore.ErrNotFound) {
		return fmt.Errorf("%s: %w", what, source.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (l localSource) Resolve(ctx context.Context, repo, tag string) (digest.Digest, error) {
	d, err := l.s.meta.ResolveTag(ctx, repo, tag)
	if err != nil {
		return "", sourceErr(err, "resolve "+repo+":"+tag)
	}
	return d, nil
}

func (l localSource) Manifest(ctx context.Context, repo string, d digest.Digest) (source.Manifest, error) {
	m, err := l.s.meta.GetManifest(ctx, repo, d)
	if err != nil {
		return source.Manifest{}, sourceErr(err, "manifest "+repo+"@"+d.String())
	}
	return source.Manifest{Digest: d, MediaType: m.MediaType, Content: m.Content}, nil
}

func (l localSource) Referrers(ctx context.Context, repo string, d digest.Digest) ([]ocispec.Descriptor, error) {
	descs, err := l.s.Referrers(ctx, repo, d)
	if err != nil {
		return nil, sourceErr(err, "referrers of "+repo+"@"+d.String())
	}
	out := make([]ocispec.Descriptor, 0, len(descs))
	for _, desc := range descs {
		out = append(out, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, ArtifactType: desc.ArtifactType, Annotations: desc.Annotations})
	}
	return out, nil
}

func (l localSource) Blob(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	what := "blob " + repo + "@" + d.String()
	size, err := l.s.meta.StatBlob(ctx, repo, d)
	if err != nil {
		return nil, sourceErr(err, what)
	}
	if size > source.MaxBlobSize {
		return nil, fmt.Errorf("%s is %d bytes, over %d: %w", what, size, source.MaxBlobSize, source.ErrInvalid)
	}
	rc, err := l.s.blobs.Open(ctx, d, 0)
	if err != nil {
		return nil, sourceErr(err, what)
	}
	defer rc.Close()
	return source.ReadVerified(rc, d)
}

// OpenBlob opens a blob linked into repo for streaming, whatever its size
// (image layers): the caller verifies the bytes against d. Missing content
// wraps source.ErrNotFound.
func (s *Store) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, error) {
	what := "blob " + repo + "@" + d.String()
	if _, err := s.meta.StatBlob(ctx, repo, d); err != nil {
		return nil, sourceErr(err, what)
	}
	rc, err := s.blobs.Open(ctx, d, 0)
	if err != nil {
		return nil, sourceErr(err, what)
	}
	return rc, nil
}

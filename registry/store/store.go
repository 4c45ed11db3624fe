// Package store is the registry's storage core: metadata (repositories,
// manifests, tags, referrers, uploads) and content-addressed blobs, and
// what is written or read in-process on top of them: the verification
// source the gate and the scanner read, blob links, the gate's own
// artifacts. The HTTP API (package registry) and the gate are both built
// on a Store; neither calls back into the other through it.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// Store is a metadata store and a blob store used together. It is safe
// for concurrent use.
type Store struct {
	meta  metadata.Store
	blobs *blobstore.Store
	log   *slog.Logger
}

// New returns the store over meta and blobs; log may be nil
// (slog.Default()).
func New(meta metadata.Store, blobs *blobstore.Store, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{meta: meta, blobs: blobs, log: log}
}

// Metadata is the metadata store.
func (s *Store) Metadata() metadata.Store { return s.meta }

// Blobs is the blob store.
func (s *Store) Blobs() *blobstore.Store { return s.blobs }

// ManifestRepositories lists the repositories holding manifest d.
func (s *Store) ManifestRepositories(ctx context.Context, d digest.Digest) ([]string, error) {
	return s.meta.ManifestRepositories(ctx, d)
}

// ManifestParents lists the indexes in repo that reference d.
func (s *Store) ManifestParents(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error) {
	return s.meta.ManifestParents(ctx, repo, d)
}

// LinkBlob links stored blob d into repo (for evidence manifests only
// when evidenceOnly: metadata.EvidenceBlobs), then checks that its bytes
// are still there: garbage collection may have deleted a blob nobody
// linked just as an upload stored it again (metadata.Collector). Then the
// link is undone and the caller fails; nothing is acknowledged without
// bytes.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64, evidenceOnly bool) error {
	linkFn := s.meta.LinkBlob
	if evidenceOnly {
		eb, ok := s.meta.(metadata.EvidenceBlobs)
		if !ok {
			return errors.New("the metadata store cannot link blobs for evidence only")
		}
		linkFn = eb.LinkEvidenceBlob
	}
	if err := linkFn(ctx, repo, d, size); err != nil {
		return err
	}
	if _, err := s.blobs.Stat(ctx, d); err != nil {
		uerr := s.meta.UnlinkBlob(ctx, repo, d)
		return errors.Join(fmt.Errorf("blob %s was collected while it was stored again, upload it again: %w", d, err), uerr)
	}
	return nil
}

// PutArtifact stores blobs and then a manifest into repo, in-process (the
// gate writes its verification summaries with it). It returns the
// manifest digest.
func (s *Store) PutArtifact(ctx context.Context, repo, mediaType string, manifest []byte, blobs ...[]byte) (digest.Digest, error) {
	for _, b := range blobs {
		d := digest.FromBytes(b)
		id := uuid.NewString()
		size, err := s.blobs.Commit(ctx, id, d, 0, int64(len(b)), bytes.NewReader(b))
		if err != nil {
			_ = s.blobs.Cancel(ctx, id)
			return "", fmt.Errorf("put artifact blob %s into %s: %w", d, repo, err)
		}
		if err := s.LinkBlob(ctx, repo, d, size, false); err != nil {
			return "", err
		}
	}
	m, err := ParseManifest(mediaType, manifest)
	if err != nil {
		return "", fmt.Errorf("put artifact into %s: %w", repo, err)
	}
	m.Repository, m.Digest = repo, digest.FromBytes(manifest)
	if err := s.meta.PutManifest(ctx, m, metadata.PutManifestOptions{}); err != nil {
		return "", err
	}
	return m.Digest, nil
}

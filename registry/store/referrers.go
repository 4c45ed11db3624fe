package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// FallbackTag is the tag under which clients without the referrers API
// keep an index of a digest's referrers (sha256:abc -> sha256-abc).
func FallbackTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

// Referrers lists the referrers of d in repo: those pushed with a
// subject, then those listed in the index older clients keep under the
// referrers tag schema.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest) ([]metadata.Descriptor, error) {
	descs, err := s.meta.Referrers(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	fallback, err := s.fallbackReferrers(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	return mergeDescriptors(descs, fallback), nil
}

func (s *Store) fallbackReferrers(ctx context.Context, repo string, d digest.Digest) ([]metadata.Descriptor, error) {
	td, err := s.meta.ResolveTag(ctx, repo, FallbackTag(d))
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := s.meta.GetManifest(ctx, repo, td)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !IsIndex(m.MediaType) {
		return nil, nil
	}
	var idx struct {
		Manifests []metadata.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(m.Content, &idx); err != nil {
		s.log.WarnContext(ctx, "unreadable referrers fallback index", "repository", repo, "tag", FallbackTag(d), "error", err)
		return nil, nil
	}
	return idx.Manifests, nil
}

// mergeDescriptors appends the descriptors of b not already in a.
func mergeDescriptors(a, b []metadata.Descriptor) []metadata.Descriptor {
	if len(b) == 0 {
		return a
	}
	seen := make(map[digest.Digest]bool, len(a))
	for _, d := range a {
		seen[d.Digest] = true
	}
	for _, d := range b {
		if !seen[d.Digest] && d.Digest.Validate() == nil {
			seen[d.Digest] = true
			a = append(a, d)
		}
	}
	return a
}

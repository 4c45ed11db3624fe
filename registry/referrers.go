package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// referrersIndex is the image index the referrers API answers with.
type referrersIndex struct {
	SchemaVersion int                   `json:"schemaVersion"`
	MediaType     string                `json:"mediaType"`
	Manifests     []metadata.Descriptor `json:"manifests"`
}

// FallbackTag is the tag under which clients without the referrers API
// keep an index of a digest's referrers (sha256:abc -> sha256-abc).
func FallbackTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, rt route) *regError {
	d, err := ParseDigest(rt.arg)
	if err != nil {
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	}
	descs, err := r.allReferrers(req.Context(), rt.name, d)
	if err != nil {
		return internalError(err)
	}
	if at := req.URL.Query().Get("artifactType"); at != "" {
		kept := descs[:0]
		for _, desc := range descs {
			if desc.ArtifactType == at {
				kept = append(kept, desc)
			}
		}
		descs = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if descs == nil {
		descs = []metadata.Descriptor{}
	}
	b, err := json.Marshal(referrersIndex{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: descs})
	if err != nil {
		return internalError(err)
	}
	w.Header().Set("Content-Type", MediaTypeOCIIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// allReferrers lists the referrers of d in repo: those pushed with a
// subject, then those listed in the index older clients keep under the
// referrers tag schema.
func (r *Registry) allReferrers(ctx context.Context, repo string, d digest.Digest) ([]metadata.Descriptor, error) {
	descs, err := r.meta.Referrers(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	fallback, err := r.fallbackReferrers(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	return mergeDescriptors(descs, fallback), nil
}

func (r *Registry) fallbackReferrers(ctx context.Context, repo string, d digest.Digest) ([]metadata.Descriptor, error) {
	td, err := r.meta.ResolveTag(ctx, repo, FallbackTag(d))
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := r.meta.GetManifest(ctx, repo, td)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !isIndex(m.MediaType) {
		return nil, nil
	}
	var idx struct {
		Manifests []metadata.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(m.Content, &idx); err != nil {
		r.log.WarnContext(ctx, "unreadable referrers fallback index", "repository", repo, "tag", FallbackTag(d), "error", err)
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

package registry

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/registry/store"
)

// referrersIndex is the image index the referrers API answers with.
type referrersIndex struct {
	SchemaVersion int                   `json:"schemaVersion"`
	MediaType     string                `json:"mediaType"`
	Manifests     []metadata.Descriptor `json:"manifests"`
}

func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, rt route) *regError {
	d, err := ParseDigest(rt.arg)
	if err != nil {
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	}
	descs, err := r.store.Referrers(req.Context(), rt.name, d)
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
	b, err := json.Marshal(referrersIndex{SchemaVersion: 2, MediaType: store.MediaTypeOCIIndex, Manifests: descs})
	if err != nil {
		return internalError(err)
	}
	w.Header().Set("Content-Type", store.MediaTypeOCIIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

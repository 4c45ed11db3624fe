package store

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// Manifest media types the registry stores.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// MaxManifestSize is the largest manifest accepted (the spec's 4 MiB).
const MaxManifestSize = 4 << 20

// ociDescriptor is a descriptor as manifests carry it.
type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
}

// manifestDoc holds the fields of every manifest kind the registry reads.
type manifestDoc struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *ociDescriptor    `json:"config"`
	Layers        []ociDescriptor   `json:"layers"`
	Manifests     []ociDescriptor   `json:"manifests"`
	Subject       *ociDescriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// IsIndex reports whether mediaType is an image index (OCI or Docker).
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerList
}

// ParseManifest validates a manifest body sent with the given Content-Type
// and returns what the store keeps of it (Repository and Digest unset).
func ParseManifest(contentType string, body []byte) (*metadata.Manifest, error) {
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	mediaType := contentType
	if mediaType == "" {
		mediaType = doc.MediaType
	}
	if mediaType == "" {
		// OCI manifests may omit mediaType; tell them apart by shape.
		if doc.Manifests != nil {
			mediaType = MediaTypeOCIIndex
		} else {
			mediaType = MediaTypeOCIManifest
		}
	}
	switch mediaType {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
	default:
		return nil, fmt.Errorf("unsupported manifest media type %q", mediaType)
	}
	if doc.MediaType != "" && doc.MediaType != mediaType {
		return nil, fmt.Errorf("manifest mediaType %q does not match Content-Type %q", doc.MediaType, mediaType)
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest schemaVersion must be 2")
	}
	m := &metadata.Manifest{MediaType: mediaType, Content: body, Annotations: doc.Annotations, ArtifactType: doc.ArtifactType}
	if IsIndex(mediaType) {
		if doc.Config != nil || doc.Layers != nil {
			return nil, fmt.Errorf("an index has no config or layers")
		}
		for i, d := range doc.Manifests {
			if err := validDescriptor(d); err != nil {
				return nil, fmt.Errorf("manifests[%d]: %w", i, err)
			}
			m.Manifests = append(m.Manifests, d.Digest)
		}
	} else {
		if doc.Config == nil {
			return nil, fmt.Errorf("an image manifest needs a config descriptor")
		}
		if doc.Manifests != nil {
			return nil, fmt.Errorf("an image manifest has no manifests list")
		}
		if err := validDescriptor(*doc.Config); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		m.Blobs = append(m.Blobs, doc.Config.Digest)
		for i, l := range doc.Layers {
			if err := validDescriptor(l); err != nil {
				return nil, fmt.Errorf("layers[%d]: %w", i, err)
			}
			if len(l.URLs) > 0 {
				continue // foreign layer: its bytes live elsewhere
			}
			m.Blobs = append(m.Blobs, l.Digest)
		}
		if m.ArtifactType == "" {
			m.ArtifactType = doc.Config.MediaType
		}
	}
	if doc.Subject != nil {
		if err := validDescriptor(*doc.Subject); err != nil {
			return nil, fmt.Errorf("subject: %w", err)
		}
		m.Subject = doc.Subject.Digest
	}
	return m, nil
}

func validDescriptor(d ociDescriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("size %d is negative", d.Size)
	}
	if d.MediaType == "" {
		return fmt.Errorf("descriptor %s has no mediaType", d.Digest)
	}
	if d.Data != nil && (int64(len(d.Data)) != d.Size || d.Digest.Algorithm().FromBytes(d.Data) != d.Digest) {
		return fmt.Errorf("descriptor %s: embedded data does not match its digest and size", d.Digest)
	}
	return nil
}

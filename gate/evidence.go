package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Media types the filter knows.
const (
	mediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	mediaTypeCosignSig     = "application/vnd.dev.cosign.artifact.sig.v1+json"
	mediaTypeDSSE          = "application/vnd.dsse.envelope.v1+json"
	mediaTypeBundlePrefix  = "application/vnd.dev.sigstore.bundle"
	mediaTypeDockerConfig  = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerV2      = "application/vnd.docker.distribution.manifest.v2+json"
)

// sbomMediaTypes are the SBOM layer (and artifact) types accepted; the
// text ones are checked to be text.
var sbomMediaTypes = map[string]bool{
	"application/spdx+json":          true,
	"text/spdx+json":                 true,
	"text/spdx":                      true,
	"text/spdx+xml":                  true,
	"application/vnd.cyclonedx":      true,
	"application/vnd.cyclonedx+json": true,
	"application/vnd.cyclonedx+xml":  true,
	"application/vnd.syft+json":      true,
}

// Limits of the filter: evidence is small.
const (
	maxEvidenceLayers = 64
	maxEvidenceBytes  = source.MaxBlobSize
	// MaxCarriedEvidence bounds the evidence manifests one promotion
	// carries; the rest is left behind (and named).
	MaxCarriedEvidence = 256
)

// cosignSuffixKind maps a cosign tag suffix (source.CosignTag) to the
// evidence it holds.
var cosignSuffixKind = map[string]contract.EvidenceKind{source.CosignSignature: contract.EvidenceSignature, source.CosignAttestation: contract.EvidenceAttestation, source.CosignSBOM: contract.EvidenceSBOM}

// NotEvidenceError says why a manifest is not evidence about a digest.
type NotEvidenceError struct {
	Manifest digest.Digest
	Reason   string
}

func (e *NotEvidenceError) Error() string {
	return fmt.Sprintf("%s is not evidence: %s", e.Manifest, e.Reason)
}

func notEvidence(m digest.Digest, format string, args ...any) error {
	return &NotEvidenceError{Manifest: m, Reason: fmt.Sprintf(format, args...)}
}

// CheckEvidence is the one evidence filter: it reports whether manifest m,
// stored (or about to be stored) in repo, is evidence about subject, and of
// which kind. viaTag is the cosign tag suffix m is stored under ("" for a
// referrer). Evidence is an image manifest (never an index) whose artifact
// type, config media type and every layer say one kind of evidence, that
// names subject (as its OCI subject, or by the cosign tag it is under), and
// whose layers are that evidence about that very digest: simple-signing
// payloads and in-toto statements are read and must name subject. So no
// runnable image, and nothing about another image, passes. Errors reading
// the store are returned as they are; a *NotEvidenceError says why m is not
// evidence.
func CheckEvidence(ctx context.Context, src source.Source, repo string, m source.Manifest, subject digest.Digest, viaTag string) (contract.EvidenceKind, error) {
	if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != mediaTypeDockerV2 {
		return "", notEvidence(m.Digest, "a %s is never evidence", mediaTypeName(m.MediaType))
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(m.Content, &man); err != nil {
		return "", notEvidence(m.Digest, "manifest: %v", err)
	}
	if man.MediaType != "" && man.MediaType != m.MediaType {
		return "", notEvidence(m.Digest, "manifest says %s but is stored as %s", man.MediaType, m.MediaType)
	}
	switch {
	case man.Subject != nil && man.Subject.Digest != subject:
		return "", notEvidence(m.Digest, "its subject is %s, not %s", man.Subject.Digest, subject)
	case man.Subject == nil && viaTag == "":
		return "", notEvidence(m.Digest, "it has no subject")
	case len(man.Layers) == 0:
		return "", notEvidence(m.Digest, "it has no layers")
	case len(man.Layers) > maxEvidenceLayers:
		return "", notEvidence(m.Digest, "it has %d layers, more than %d", len(man.Layers), maxEvidenceLayers)
	}
	kind, err := evidenceKind(m.Digest, &man)
	if err != nil {
		return "", err
	}
	if viaTag != "" && cosignSuffixKind[viaTag] != kind {
		return "", notEvidence(m.Digest, "the .%s tag holds only %s evidence, not %s", viaTag, cosignSuffixKind[viaTag], kind)
	}
	if kind == contract.EvidenceBundle && man.Subject == nil {
		return "", notEvidence(m.Digest, "a Sigstore bundle must name its subject")
	}
	var total int64
	for i, l := range man.Layers {
		if len(l.URLs) > 0 {
			return "", notEvidence(m.Digest, "layer %d is a foreign layer", i)
		}
		if total += l.Size; l.Size < 0 || total > maxEvidenceBytes {
			return "", notEvidence(m.Digest, "its layers are over %d bytes", maxEvidenceBytes)
		}
		b, err := src.Blob(ctx, repo, l.Digest)
		switch {
		case errors.Is(err, source.ErrNotFound) || errors.Is(err, source.ErrInvalid):
			return "", notEvidence(m.Digest, "layer %d (%s): %v", i, l.Digest, err)
		case err != nil:
			return "", fmt.Errorf("evidence %s, layer %s: %w", m.Digest, l.Digest, err)
		case int64(len(b)) != l.Size:
			return "", notEvidence(m.Digest, "layer %d is %d bytes, its descriptor says %d", i, len(b), l.Size)
		}
		if err := checkLayer(kind, l.MediaType, b, subject); err != nil {
			return "", notEvidence(m.Digest, "layer %d (%s): %v", i, l.MediaType, err)
		}
	}
	return kind, nil
}

// evidenceKind classifies a manifest by its artifact type, config media
// type and layer media types, which must all agree.
func evidenceKind(md digest.Digest, man *ocispec.Manifest) (contract.EvidenceKind, error) {
	first := man.Layers[0].MediaType
	var kind contract.EvidenceKind
	switch {
	case first == mediaTypeSimpleSigning:
		kind = contract.EvidenceSignature
	case first == mediaTypeDSSE:
		kind = contract.EvidenceAttestation
	case strings.HasPrefix(first, mediaTypeBundlePrefix):
		kind = contract.EvidenceBundle
	case sbomMediaTypes[first]:
		kind = contract.EvidenceSBOM
	default:
		return "", notEvidence(md, "layer media type %s is not an evidence type", first)
	}
	for i, l := range man.Layers {
		if layerKind(l.MediaType) != kind {
			return "", notEvidence(md, "layer %d is %s, not %s evidence", i, l.MediaType, kind)
		}
	}
	if at := man.ArtifactType; at != "" && !typeFits(kind, at) {
		return "", notEvidence(md, "artifact type %s does not fit %s evidence", at, kind)
	}
	if ct := man.Config.MediaType; !typeFits(kind, ct) && !neutralConfig(ct) {
		return "", notEvidence(md, "config media type %s does not fit %s evidence", ct, kind)
	}
	return kind, nil
}

func layerKind(mt string) contract.EvidenceKind {
	switch {
	case mt == mediaTypeSimpleSigning:
		return contract.EvidenceSignature
	case mt == mediaTypeDSSE:
		return contract.EvidenceAttestation
	case strings.HasPrefix(mt, mediaTypeBundlePrefix):
		return contract.EvidenceBundle
	case sbomMediaTypes[mt]:
		return contract.EvidenceSBOM
	}
	return ""
}

// typeFits reports whether an artifact or config media type names kind.
func typeFits(kind contract.EvidenceKind, mt string) bool {
	switch kind {
	case contract.EvidenceSignature:
		return mt == mediaTypeCosignSig || mt == mediaTypeSimpleSigning
	case contract.EvidenceAttestation:
		return mt == mediaTypeDSSE
	case contract.EvidenceBundle:
		return strings.HasPrefix(mt, mediaTypeBundlePrefix)
	case contract.EvidenceSBOM:
		return sbomMediaTypes[mt]
	}
	return false
}

// neutralConfig: config media types cosign and oras write for evidence.
// An image config is accepted because cosign's tag-scheme manifests carry
// one; what makes such a manifest unrunnable is that every layer is
// evidence checked below, never a filesystem.
func neutralConfig(mt string) bool {
	return mt == ocispec.MediaTypeEmptyJSON || mt == ocispec.MediaTypeImageConfig || mt == mediaTypeDockerConfig
}

// checkLayer checks that a layer's bytes are evidence of kind about d.
func checkLayer(kind contract.EvidenceKind, mediaType string, b []byte, d digest.Digest) error {
	switch kind {
	case contract.EvidenceSignature:
		var p struct {
			Critical struct {
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
			} `json:"critical"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("simple-signing payload: %w", err)
		}
		if p.Critical.Image.Digest != d.String() {
			return fmt.Errorf("the payload signs %q, not %s", p.Critical.Image.Digest, d)
		}
	case contract.EvidenceAttestation:
		env, err := attest.ParseEnvelope(b)
		if err != nil {
			return err
		}
		st, err := env.Statement()
		if err != nil {
			return err
		}
		if !st.HasSubjectDigest(d.String()) {
			return fmt.Errorf("the statement is not about %s", d)
		}
	case contract.EvidenceBundle:
		var bundle protobundle.Bundle
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &bundle); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if !strings.HasPrefix(bundle.GetMediaType(), mediaTypeBundlePrefix) {
			return fmt.Errorf("bundle media type %q", bundle.GetMediaType())
		}
		env := bundle.GetDsseEnvelope()
		if env == nil {
			return errors.New("the bundle holds no DSSE envelope, so nothing in it names the image")
		}
		if env.GetPayloadType() != attest.PayloadTypeInToto {
			return fmt.Errorf("bundle payload type %q", env.GetPayloadType())
		}
		st, err := attest.ParseStatement(env.GetPayload())
		if err != nil {
			return err
		}
		if !st.HasSubjectDigest(d.String()) {
			return fmt.Errorf("the statement is not about %s", d)
		}
	case contract.EvidenceSBOM:
		if strings.HasSuffix(mediaType, "+json") || mediaType == "application/vnd.cyclonedx" {
			if !json.Valid(b) {
				return errors.New("the SBOM is not JSON")
			}
			return nil
		}
		// Text formats: text, never an archive.
		if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
			return errors.New("the SBOM is not text")
		}
	}
	return nil
}

// looksLikeEvidence is the cheap structural half of the filter (no blob is
// read): an image manifest whose layers all have evidence media types.
func looksLikeEvidence(m source.Manifest) bool {
	if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != mediaTypeDockerV2 {
		return false
	}
	var man ocispec.Manifest
	if json.Unmarshal(m.Content, &man) != nil || len(man.Layers) == 0 {
		return false
	}
	_, err := evidenceKind(m.Digest, &man)
	return err == nil
}

func mediaTypeName(mt string) string {
	switch mt {
	case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
		return "index (" + mt + ")"
	case "":
		return "manifest without a media type"
	}
	return mt
}

package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/static"

	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Media types of cosign's layer format.
const (
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	dsseMediaType          = "application/vnd.dsse.envelope.v1+json"
	// cosignSigArtifactType marks a simple-signing manifest stored as an
	// OCI 1.1 referrer (cosign --registry-referrers-mode=oci-1-1).
	cosignSigArtifactType   = "application/vnd.dev.cosign.artifact.sig.v1+json"
	predicateTypeAnnotation = "predicateType"
)

// tagSignatures verifies the signatures cosign keeps under sha256-<hex>.sig.
func (c *collection) tagSignatures(ctx context.Context) error {
	return c.tagged(ctx, source.CosignSignature, func(ctx context.Context, md digest.Digest, man *ocispec.Manifest) error {
		return c.signatureLayers(ctx, SourceTag, md, man)
	})
}

// tagAttestations verifies the attestations cosign keeps under
// sha256-<hex>.att.
func (c *collection) tagAttestations(ctx context.Context) error {
	return c.tagged(ctx, source.CosignAttestation, func(ctx context.Context, md digest.Digest, man *ocispec.Manifest) error {
		for _, layer := range man.Layers {
			if layer.MediaType != dsseMediaType {
				continue
			}
			if err := c.attestationLayer(ctx, md, layer); err != nil {
				return err
			}
		}
		return nil
	})
}

// tagged reads the manifest under the cosign tag with suffix and hands it
// to each. A manifest that is not valid JSON is recorded as a broken
// signature or attestation.
func (c *collection) tagged(ctx context.Context, suffix string, each func(context.Context, digest.Digest, *ocispec.Manifest) error) error {
	tag := source.CosignTag(c.subj.Digest, suffix)
	md, err := c.src.Resolve(ctx, c.subj.Repository, tag)
	if errors.Is(err, source.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m, err := c.src.Manifest(ctx, c.subj.Repository, md)
	if errors.Is(err, source.ErrNotFound) {
		return nil // deleted between the two reads
	}
	if err != nil {
		return err
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(m.Content, &man); err != nil {
		reason := fmt.Sprintf("manifest under tag %s is not valid JSON: %v", tag, err)
		if suffix == source.CosignAttestation {
			c.ev.Attestations = append(c.ev.Attestations, Attestation{Source: SourceTag, Manifest: md, Reason: reason})
		} else {
			c.ev.Signatures = append(c.ev.Signatures, Signature{Source: SourceTag, Manifest: md, Reason: reason})
		}
		return nil
	}
	return each(ctx, md, &man)
}

// signatureLayers verifies each simple-signing layer of man.
func (c *collection) signatureLayers(ctx context.Context, src string, md digest.Digest, man *ocispec.Manifest) error {
	for _, layer := range man.Layers {
		if layer.MediaType != simpleSigningMediaType {
			continue
		}
		s := Signature{Source: src, Manifest: md}
		payload, reason, err := c.blob(ctx, layer.Digest, "signature payload")
		if err != nil {
			return err
		}
		if reason == "" {
			sig, err := layerSignature(payload, layer)
			if err != nil {
				reason = fmt.Sprintf("malformed signature layer %s: %v", layer.Digest, err)
			} else {
				s.Verified, s.Authorities, s.Signer, reason = c.check(func(a *authority) (*contract.Signer, error) {
					return a.checkCosign(ctx, sig, c.hash(), false)
				})
			}
		}
		s.Reason = reason
		c.ev.Signatures = append(c.ev.Signatures, s)
	}
	return nil
}

// attestationLayer verifies one DSSE layer of an .att manifest.
func (c *collection) attestationLayer(ctx context.Context, md digest.Digest, layer ocispec.Descriptor) error {
	at := Attestation{Source: SourceTag, Manifest: md, Layer: layer.Digest,
		PredicateType: layer.Annotations[predicateTypeAnnotation]}
	env, reason, err := c.blob(ctx, layer.Digest, "attestation envelope")
	if err != nil {
		return err
	}
	if reason == "" {
		att, err := layerSignature(env, layer)
		if err != nil {
			reason = fmt.Sprintf("malformed attestation layer %s: %v", layer.Digest, err)
		} else {
			at.Verified, at.Authorities, at.Signer, reason = c.check(func(a *authority) (*contract.Signer, error) {
				return a.checkCosign(ctx, att, c.hash(), true)
			})
		}
	}
	at.Reason = reason
	if at.Verified {
		c.readStatement(&at, env)
	}
	c.ev.Attestations = append(c.ev.Attestations, at)
	return nil
}

// layerSignature turns a cosign layer into the cosign library's signature
// type. The certificate, chain, Rekor bundle and timestamp live in
// annotations, which static.NewSignature only reads from options.
func layerSignature(payload []byte, layer ocispec.Descriptor) (oci.Signature, error) {
	ann := layer.Annotations
	opts := []static.Option{static.WithLayerMediaType(types.MediaType(layer.MediaType)), static.WithAnnotations(ann)}
	if cert := ann[static.CertificateAnnotationKey]; cert != "" {
		opts = append(opts, static.WithCertChain([]byte(cert), []byte(ann[static.ChainAnnotationKey])))
	}
	if b := ann[static.BundleAnnotationKey]; b != "" {
		var rb cbundle.RekorBundle
		if err := json.Unmarshal([]byte(b), &rb); err != nil {
			return nil, fmt.Errorf("rekor bundle annotation: %w", err)
		}
		opts = append(opts, static.WithBundle(&rb))
	}
	if t := ann[static.RFC3161TimestampAnnotationKey]; t != "" {
		var ts cbundle.RFC3161Timestamp
		if err := json.Unmarshal([]byte(t), &ts); err != nil {
			return nil, fmt.Errorf("timestamp annotation: %w", err)
		}
		opts = append(opts, static.WithRFC3161Timestamp(&ts))
	}
	if layer.MediaType == dsseMediaType {
		return static.NewAttestation(payload, opts...)
	}
	b64sig, ok := ann[static.SignatureAnnotationKey]
	if !ok || strings.TrimSpace(b64sig) == "" {
		return nil, errors.New("no signature annotation")
	}
	return static.NewSignature(payload, b64sig, opts...)
}

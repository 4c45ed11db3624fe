package verifier

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

const (
	// bundleMediaTypePrefix starts every Sigstore bundle media type; only
	// v0.3 and later are stored as OCI referrers.
	bundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// bundlePredicateAnnotation is cosign's unauthenticated hint of a
	// bundle's predicate type.
	bundlePredicateAnnotation = "dev.sigstore.bundle.predicateType"
	// CosignSignPredicate is the predicate type of the statement cosign v3
	// signs for "cosign sign": such a bundle is an image signature, any
	// other bundle an attestation.
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// referrers verifies the Sigstore bundles and cosign signatures stored as
// OCI 1.1 referrers of the subject.
func (c *collection) referrers(ctx context.Context) error {
	descs, err := c.src.Referrers(ctx, c.subj.Repository, c.subj.Digest)
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return nil
		}
		return err
	}
	for _, d := range descs {
		// The index's artifactType is a hint written by whoever pushed;
		// the manifest says what it really holds.
		m, err := c.src.Manifest(ctx, c.subj.Repository, d.Digest)
		if errors.Is(err, source.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var man ocispec.Manifest
		if json.Unmarshal(m.Content, &man) != nil || man.Subject == nil || man.Subject.Digest != c.subj.Digest {
			continue // not evidence about this subject
		}
		switch {
		case isBundleManifest(&man):
			if err := c.bundleManifest(ctx, d.Digest, &man); err != nil {
				return err
			}
		case man.ArtifactType == cosignSigArtifactType || man.Config.MediaType == cosignSigArtifactType:
			if err := c.signatureLayers(ctx, SourceReferrer, d.Digest, &man); err != nil {
				return err
			}
		}
	}
	return nil
}

func isBundleManifest(man *ocispec.Manifest) bool {
	if strings.HasPrefix(man.ArtifactType, bundleMediaTypePrefix) {
		return true
	}
	return len(man.Layers) == 1 && strings.HasPrefix(man.Layers[0].MediaType, bundleMediaTypePrefix)
}

// bundleManifest verifies the bundle in a referrer manifest. A bundle whose
// statement has cosign's sign predicate is a signature; any other is an
// attestation. Until verified, only the unauthenticated annotation says
// which, and an unverified bundle is reported as an attestation unless the
// annotation says signature.
func (c *collection) bundleManifest(ctx context.Context, md digest.Digest, man *ocispec.Manifest) error {
	hint := man.Annotations[bundlePredicateAnnotation]
	at := Attestation{Source: SourceBundle, Manifest: md, PredicateType: hint}
	var layer ocispec.Descriptor
	var reason string
	if len(man.Layers) != 1 {
		reason = fmt.Sprintf("a bundle manifest needs exactly one layer, it has %d", len(man.Layers))
	} else {
		layer = man.Layers[0]
		at.Layer = layer.Digest
	}
	var b *bundle.Bundle
	if reason == "" {
		raw, why, err := c.blob(ctx, layer.Digest, "bundle")
		if err != nil {
			return err
		}
		reason = why
		if reason == "" {
			b = &bundle.Bundle{}
			if err := b.UnmarshalJSON(raw); err != nil {
				reason = fmt.Sprintf("malformed bundle %s: %v", layer.Digest, err)
			}
		}
	}
	if reason == "" {
		alg := c.subj.Digest.Algorithm().String()
		raw, _ := hex.DecodeString(c.subj.Digest.Encoded())
		at.Verified, at.Authorities, at.Signer, reason = c.check(func(a *authority) (*contract.Signer, error) {
			return a.checkBundle(b, alg, raw)
		})
	}
	at.Reason = reason
	if at.Verified {
		c.readBundleStatement(&at, b)
	}
	if at.PredicateType == CosignSignPredicate {
		c.ev.Signatures = append(c.ev.Signatures, Signature{Source: SourceBundle, Manifest: md,
			Verified: at.Verified, Authorities: at.Authorities, Signer: at.Signer, Reason: at.Reason})
		return nil
	}
	c.ev.Attestations = append(c.ev.Attestations, at)
	return nil
}

// readBundleStatement reads the statement of a verified bundle. Bundles
// holding a message signature (not DSSE) carry no statement: they cannot
// be image evidence.
func (c *collection) readBundleStatement(at *Attestation, b *bundle.Bundle) {
	env := b.GetDsseEnvelope()
	if env == nil {
		unverify(at, "the bundle holds a message signature, not a DSSE envelope")
		return
	}
	c.readPayload(at, env.GetPayloadType(), env.GetPayload())
	if at.Verified && at.PredicateType == CosignSignPredicate {
		at.Predicate = nil // an empty predicate: the signature is the point
	}
}

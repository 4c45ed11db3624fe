package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/static"

	"github.com/portcullis-dev/portcullis/verifier/source"
)

// simpleSigningMediaType is the layer media type of cosign signatures.
const simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"

// cosignTag is the tag under which cosign keeps signatures of d.
func cosignTag(d digest.Digest, suffix string) string {
	return d.Algorithm().String() + "-" + d.Encoded() + "." + suffix
}

// tagSignatures verifies the signatures cosign keeps under sha256-<hex>.sig.
func (v *Verifier) tagSignatures(ctx context.Context, src source.Source, subj Subject) ([]Signature, error) {
	md, err := src.Resolve(ctx, subj.Repository, cosignTag(subj.Digest, "sig"))
	if errors.Is(err, source.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := src.Manifest(ctx, subj.Repository, md)
	if err != nil {
		return nil, err
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(m.Content, &man); err != nil {
		return []Signature{{Source: "tag", Manifest: md, Reason: fmt.Sprintf("signature manifest is not valid JSON: %v", err)}}, nil
	}
	h, err := v1.NewHash(subj.Digest.String())
	if err != nil {
		return nil, err
	}
	var out []Signature
	for _, layer := range man.Layers {
		if layer.MediaType != simpleSigningMediaType {
			continue
		}
		s := Signature{Source: "tag", Manifest: md}
		payload, err := src.Blob(ctx, subj.Repository, layer.Digest)
		switch {
		case errors.Is(err, source.ErrNotFound):
			s.Reason = fmt.Sprintf("signature payload %s is missing from the registry", layer.Digest)
			out = append(out, s)
			continue
		case err != nil:
			return nil, err
		}
		sig, err := static.NewSignature(payload, layer.Annotations[static.SignatureAnnotationKey],
			static.WithLayerMediaType(types.MediaType(layer.MediaType)), static.WithAnnotations(layer.Annotations))
		if err != nil {
			s.Reason = fmt.Sprintf("malformed signature layer %s: %v", layer.Digest, err)
			out = append(out, s)
			continue
		}
		v.checkSignature(ctx, sig, h, &s)
		out = append(out, s)
	}
	return out, nil
}

// checkSignature tries every authority's keys on sig; the first that
// verifies it for digest h wins.
func (v *Verifier) checkSignature(ctx context.Context, sig oci.Signature, h v1.Hash, s *Signature) {
	var reasons []string
	for _, a := range v.authorities {
		for _, sv := range a.verifiers {
			co := &cosign.CheckOpts{
				SigVerifier: sv,
				// Offline: no transparency log; the signature itself is checked.
				IgnoreTlog: true,
				IgnoreSCT:  true,
				// Binds the signature to this digest: without it a signature
				// copied from another image would pass.
				ClaimVerifier: cosign.SimpleClaimVerifier,
			}
			if _, err := cosign.VerifyImageSignature(ctx, sig, h, co); err != nil {
				reasons = append(reasons, fmt.Sprintf("%s: %v", a.name, err))
				continue
			}
			s.Verified, s.Authorities, s.Reason = true, []string{a.name}, ""
			return
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no authority is configured")
	}
	s.Reason = strings.Join(reasons, "; ")
}

package verifier

import (
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// Subject is the image whose evidence is gathered.
type Subject struct {
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
}

// Where evidence was found, as in [Signature].Source and [Attestation].Source.
const (
	// SourceTag is cosign's tag scheme: sha256-<hex>.sig and .att.
	SourceTag = "tag"
	// SourceReferrer is an OCI 1.1 referrer holding a cosign simple-signing
	// layer (cosign --registry-referrers-mode=oci-1-1).
	SourceReferrer = "referrer"
	// SourceBundle is a Sigstore bundle (v0.3) stored as a referrer, as
	// cosign v3 writes by default.
	SourceBundle = "bundle"
)

// Signature is one image signature found for the subject and what checking
// it showed.
type Signature struct {
	// Source says where it was found: SourceTag, SourceReferrer or
	// SourceBundle.
	Source string `json:"source"`
	// Manifest is the digest of the manifest that carries the signature.
	Manifest digest.Digest `json:"manifest"`
	// Verified is true when at least one authority verified it for this
	// digest.
	Verified bool `json:"verified"`
	// Authorities names every authority that verified it, in configuration
	// order.
	Authorities []string `json:"authorities,omitempty"`
	// Signer is who signed, when verified.
	Signer *contract.Signer `json:"signer,omitempty"`
	// Reason says why it did not verify: one clause per authority tried.
	Reason string `json:"reason,omitempty"`
}

// Attestation is one in-toto attestation (a DSSE envelope) found for the
// subject and what checking it showed.
type Attestation struct {
	// Source is SourceTag (sha256-<hex>.att) or SourceBundle.
	Source string `json:"source"`
	// Manifest is the digest of the manifest that carries it; Layer the
	// digest of the envelope or bundle blob.
	Manifest digest.Digest `json:"manifest"`
	Layer    digest.Digest `json:"layer"`
	// PredicateType is the statement's predicate type. For an attestation
	// that did not verify it is the unauthenticated hint from the manifest
	// annotations, if any.
	PredicateType string `json:"predicateType"`
	// Verified is true when at least one authority verified the envelope
	// and the statement names the subject digest.
	Verified    bool             `json:"verified"`
	Authorities []string         `json:"authorities,omitempty"`
	Signer      *contract.Signer `json:"signer,omitempty"`
	// Predicate is the parsed predicate, set only when Verified: a policy
	// never sees claims nobody vouched for. Its Kind() says which type.
	Predicate attest.Predicate `json:"predicate,omitempty"`
	// Reason says why it did not verify, or why a verified predicate could
	// not be parsed.
	Reason string `json:"reason,omitempty"`
}

// Evidence is everything verified about a subject.
type Evidence struct {
	Subject      Subject       `json:"subject"`
	Signatures   []Signature   `json:"signatures"`
	Attestations []Attestation `json:"attestations"`
}

// VerifiedBy returns the signatures that authority verified.
func (e *Evidence) VerifiedBy(authority string) []Signature {
	var out []Signature
	for _, s := range e.Signatures {
		for _, a := range s.Authorities {
			if a == authority {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

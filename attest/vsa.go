package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Verification results of a [VSA].
const (
	VSAPassed = "PASSED"
	VSAFailed = "FAILED"
)

// VSA is a SLSA Verification Summary Attestation v1 predicate: a verifier's
// statement that it checked an artifact against a policy, and the outcome.
// See https://slsa.dev/spec/v1.0/verification_summary.
type VSA struct {
	Verifier VSAVerifier `json:"verifier"`
	// TimeVerified is when the verification happened.
	TimeVerified time.Time `json:"timeVerified,omitzero"`
	// ResourceURI names the artifact verified, e.g.
	// "oci://registry.example.com/prod/app@sha256:...".
	ResourceURI string `json:"resourceUri"`
	// Policy is the policy verified against: its URI and/or digest.
	Policy ResourceRef `json:"policy"`
	// InputAttestations are the attestations the verifier used.
	InputAttestations []ResourceRef `json:"inputAttestations,omitempty"`
	// VerificationResult is VSAPassed or VSAFailed.
	VerificationResult string `json:"verificationResult"`
	// VerifiedLevels are the levels verified, e.g. ["SLSA_BUILD_LEVEL_3"],
	// or ["FAILED"].
	VerifiedLevels []string `json:"verifiedLevels"`
	// DependencyLevels counts the transitive dependencies verified at each
	// level, if the verifier checked them.
	DependencyLevels map[string]int `json:"dependencyLevels,omitempty"`
	// SLSAVersion is the SLSA version of the verified levels, e.g. "1.0".
	SLSAVersion string `json:"slsaVersion,omitempty"`
}

// Kind returns KindVSA.
func (*VSA) Kind() string { return KindVSA }

// VSAVerifier identifies the verifier.
type VSAVerifier struct {
	ID string `json:"id"`
	// Version maps component names to versions, e.g. {"portcullis": "1.2.0"}.
	Version map[string]string `json:"version,omitempty"`
}

// ResourceRef points at a resource by URI and/or digest.
type ResourceRef struct {
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// NewVSA returns the JSON payload of an in-toto v1 Statement with predicate
// type [PredicateVSAV1] about subjects. Sign it into a DSSE envelope with
// payload type [PayloadTypeInToto]. It fails if a subject has no digest or a
// field the VSA specification requires is missing: verifier.id,
// timeVerified (required here, though optional in the specification),
// resourceUri, policy, verificationResult (PASSED or FAILED) and
// verifiedLevels. The time is written in UTC.
func NewVSA(subjects []Subject, vsa VSA) ([]byte, error) {
	if len(subjects) == 0 {
		return nil, errors.New("attest: vsa: no subject")
	}
	for i, s := range subjects {
		if err := checkDigestSet(s.Digest); err != nil {
			return nil, fmt.Errorf("attest: vsa: subject[%d] %q: %w", i, s.Name, err)
		}
	}
	if vsa.TimeVerified.IsZero() {
		return nil, errors.New("attest: vsa: timeVerified is missing")
	}
	if err := vsa.check(); err != nil {
		return nil, fmt.Errorf("attest: vsa: %w", err)
	}
	vsa.TimeVerified = vsa.TimeVerified.UTC()
	pred, err := json.Marshal(&vsa)
	if err != nil {
		return nil, fmt.Errorf("attest: vsa: %w", err)
	}
	return json.Marshal(&Statement{
		Type:          StatementV1,
		Subject:       subjects,
		PredicateType: PredicateVSAV1,
		Predicate:     pred,
	})
}

func parseVSA(raw json.RawMessage) (*VSA, error) {
	var v VSA
	if err := decodePredicate(raw, &v); err != nil {
		return nil, fmt.Errorf("attest: vsa: %w", err)
	}
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("attest: vsa: %w", err)
	}
	return &v, nil
}

func (v *VSA) check() error {
	switch {
	case v.Verifier.ID == "":
		return errors.New("verifier.id is missing")
	case v.ResourceURI == "":
		return errors.New("resourceUri is missing")
	case v.Policy.URI == "" && len(v.Policy.Digest) == 0:
		return errors.New("policy is missing (needs a uri or a digest)")
	case v.VerificationResult != VSAPassed && v.VerificationResult != VSAFailed:
		return fmt.Errorf("verificationResult is %q, want %q or %q", v.VerificationResult, VSAPassed, VSAFailed)
	case len(v.VerifiedLevels) == 0:
		return errors.New("verifiedLevels is empty")
	}
	return nil
}

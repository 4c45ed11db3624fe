package attest

import (
	"encoding/json"
	"strings"
)

// Predicate types this package decodes into typed values.
const (
	PredicateSLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	PredicateSLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	// PredicateSPDX is the SPDX predicate type; versioned forms such as
	// "https://spdx.dev/Document/v2.3" are accepted too.
	PredicateSPDX = "https://spdx.dev/Document"
	// PredicateCycloneDX is the CycloneDX predicate type; versioned forms
	// such as "https://cyclonedx.org/bom/v1.5" are accepted too.
	PredicateCycloneDX = "https://cyclonedx.org/bom"
	// PredicateCosignVuln is cosign's vulnerability scan predicate
	// ("cosign attest --type vuln", "trivy --format cosign-vuln").
	PredicateCosignVuln = "https://cosign.sigstore.dev/attestation/vuln/v1"
	PredicateVSAV1      = "https://slsa.dev/verification_summary/v1"
)

// Kinds of [Predicate], as returned by Kind.
const (
	KindProvenance = "provenance"
	KindSBOM       = "sbom"
	KindVuln       = "vuln"
	KindVSA        = "vsa"
	KindUnknown    = "unknown"
)

// Predicate is a decoded predicate: one of [*Provenance], [*SBOM],
// [*VulnReport], [*VSA] or [*Unknown]. Use a type switch to reach the fields.
type Predicate interface {
	// Kind is one of the Kind constants.
	Kind() string
}

// Unknown is a predicate of a type this package does not decode, kept as
// raw JSON so that a policy can still look at it.
type Unknown struct {
	PredicateType string          `json:"predicateType"`
	Raw           json.RawMessage `json:"raw"`
}

// Kind returns KindUnknown.
func (*Unknown) Kind() string { return KindUnknown }

// parsePredicate is ParsePredicate without its guard.
func parsePredicate(predicateType string, raw json.RawMessage) (Predicate, error) {
	switch {
	case predicateType == PredicateSLSAProvenanceV02:
		return parseProvenanceV02(raw)
	case predicateType == PredicateSLSAProvenanceV1:
		return parseProvenanceV1(raw)
	case isTypeOrVersion(predicateType, PredicateSPDX):
		return parseSPDXPredicate(raw)
	case isTypeOrVersion(predicateType, PredicateCycloneDX):
		return parseCycloneDX(raw)
	case predicateType == PredicateCosignVuln:
		return parseCosignVuln(raw)
	case predicateType == PredicateVSAV1:
		return parseVSA(raw)
	default:
		return &Unknown{PredicateType: predicateType, Raw: raw}, nil
	}
}

// isTypeOrVersion reports whether t is base or base + "/" + a version.
func isTypeOrVersion(t, base string) bool {
	rest, ok := strings.CutPrefix(t, base)
	return ok && (rest == "" || (len(rest) > 1 && rest[0] == '/' && !strings.Contains(rest[1:], "/")))
}

package contract

import (
	"time"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/scanner"
)

// APIVersion is the version of the [Input] contract, in Input.APIVersion.
// docs/policy-input.md documents it; add fields, never rename them.
const APIVersion = "portcullis.dev/v1"

// Action is what the request would do with the image.
type Action string

// Actions, as in [Input].Action.
const (
	ActionPush    Action = "push"
	ActionPromote Action = "promote"
	ActionAdmit   Action = "admit"
	// ActionDelete is a refused deletion in a protected repository; it is
	// recorded, never decided by policy (Valid reports false).
	ActionDelete Action = "delete"
)

// Valid reports whether a is one of the actions.
func (a Action) Valid() bool {
	return a == ActionPush || a == ActionPromote || a == ActionAdmit
}

// Input is the document a policy sees as `input`.
type Input struct {
	APIVersion string `json:"apiVersion"`
	Action     Action `json:"action"`
	// Time is when the decision is taken: policies compare ages and expiry
	// dates with it, so that a decision can be replayed.
	Time     time.Time `json:"time"`
	Subject  Subject   `json:"subject"`
	Target   Target    `json:"target"`
	Request  Actor     `json:"request"`
	Evidence Evidence  `json:"evidence"`
}

// Subject is the image the decision is about.
type Subject struct {
	// Repository is the repository the image is read from, e.g. "staging/app".
	Repository string `json:"repository"`
	// Digest is the manifest digest.
	Digest string `json:"digest"`
	// Tag is the tag the request named, if any.
	Tag string `json:"tag,omitempty"`
	// Reference is the image reference as the requester wrote it (e.g. in a
	// pod spec), before tags were resolved to digests.
	Reference string `json:"reference,omitempty"`
}

// Target is where the image goes: a registry namespace (push, promote) or a
// Kubernetes workload (admit). Exactly one is set.
type Target struct {
	Registry   *RegistryTarget   `json:"registry,omitempty"`
	Kubernetes *KubernetesTarget `json:"kubernetes,omitempty"`
}

// RegistryTarget is a repository of this registry.
type RegistryTarget struct {
	// Namespace is the repository's first path element, e.g. "prod".
	Namespace string `json:"namespace"`
	// Repository is the full repository name, e.g. "prod/app".
	Repository string `json:"repository"`
	// Tag is the tag to be written, if any.
	Tag string `json:"tag,omitempty"`
}

// KubernetesTarget is the workload an admission request creates or updates.
type KubernetesTarget struct {
	Namespace       string            `json:"namespace"`
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`
	Workload        Workload          `json:"workload"`
	// Container is the container (or init or ephemeral container) naming the
	// image.
	Container string `json:"container,omitempty"`
}

// Workload names a Kubernetes object.
type Workload struct {
	// Kind is e.g. "Deployment", "Pod", "CronJob".
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Actor says who asked (the policy input's "request").
type Actor struct {
	// Identity is the authenticated registry user or Kubernetes user.
	Identity *Identity `json:"identity,omitempty"`
	// ServiceAccount is the pod's service account ("namespace/name"), at
	// admission.
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// PodLabels are the pod template's labels, at admission.
	PodLabels map[string]string `json:"podLabels,omitempty"`
}

// Identity is an authenticated user.
type Identity struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups,omitempty"`
}

// Evidence is what was verified about the subject. Only verified claims are
// parsed: an unverified signature or attestation appears with its reason
// only.
type Evidence struct {
	Signatures   Signatures   `json:"signatures"`
	Attestations Attestations `json:"attestations"`
	// SBOM is the image's bill of materials, or null.
	SBOM *SBOM `json:"sbom"`
	// Provenance lists the verified SLSA provenance predicates.
	Provenance      []Provenance    `json:"provenance"`
	Vulnerabilities Vulnerabilities `json:"vulnerabilities"`
	// Errors lists the checks the gate could not make.
	Errors []CheckError `json:"errors"`
}

// Signatures are the image signatures, grouped by the authority that
// verified them.
type Signatures struct {
	// ByAuthority maps an authority name (portcullis.yaml) to the signatures
	// it verified. A signature several authorities verified is under each.
	ByAuthority map[string][]VerifiedSignature `json:"byAuthority"`
	// Unverified are the signatures no authority verified.
	Unverified []UnverifiedSignature `json:"unverified"`
}

// VerifiedSignature is a signature an authority verified.
type VerifiedSignature struct {
	Source   string  `json:"source"`
	Manifest string  `json:"manifest"`
	Signer   *Signer `json:"signer,omitempty"`
}

// UnverifiedSignature is a signature found but not verified.
type UnverifiedSignature struct {
	Source   string `json:"source"`
	Manifest string `json:"manifest"`
	Reason   string `json:"reason"`
}

// Attestations are the in-toto attestations, verified ones grouped by
// predicate type.
type Attestations struct {
	ByPredicateType map[string][]VerifiedAttestation `json:"byPredicateType"`
	// Unverified are attestations no authority verified, or whose verified
	// predicate could not be parsed.
	Unverified []UnverifiedAttestation `json:"unverified"`
}

// VerifiedAttestation is an attestation verified for the subject.
type VerifiedAttestation struct {
	Source      string   `json:"source"`
	Manifest    string   `json:"manifest"`
	Authorities []string `json:"authorities"`
	Signer      *Signer  `json:"signer,omitempty"`
	// Kind is the predicate's kind: provenance, sbom, vuln, vsa or unknown.
	Kind string `json:"kind"`
	// Predicate is the parsed predicate (attest package), whose form depends
	// on Kind; for unknown, {predicateType, raw}.
	Predicate attest.Predicate `json:"predicate"`
}

// UnverifiedAttestation is an attestation found but not usable.
type UnverifiedAttestation struct {
	Source        string `json:"source"`
	Manifest      string `json:"manifest"`
	PredicateType string `json:"predicateType,omitempty"`
	Reason        string `json:"reason"`
}

// SBOM sources, as in [SBOM].Source.
const (
	SBOMFromAttestation = "attestation"
	SBOMFromScanner     = "scanner"
)

// SBOM is the image's software bill of materials.
type SBOM struct {
	// Source is "attestation" (a verified SBOM attestation) or "scanner"
	// (generated by the registry's scanner).
	Source string `json:"source"`
	// PredicateType and Authorities describe the attestation, when Source
	// is "attestation".
	PredicateType string             `json:"predicateType,omitempty"`
	Authorities   []string           `json:"authorities,omitempty"`
	Format        string             `json:"format"`
	SpecVersion   string             `json:"specVersion"`
	Components    []attest.Component `json:"components"`
	Licenses      []string           `json:"licenses"`
	LicenseIDs    []string           `json:"licenseIds"`
}

// Provenance is one verified SLSA provenance, normalized.
type Provenance struct {
	PredicateType    string   `json:"predicateType"`
	Authorities      []string `json:"authorities"`
	SLSAVersion      string   `json:"slsaVersion"`
	BuilderID        string   `json:"builderId"`
	BuildType        string   `json:"buildType"`
	SourceRepository string   `json:"sourceRepository,omitempty"`
	SourceRef        string   `json:"sourceRef,omitempty"`
	SourceRevision   string   `json:"sourceRevision,omitempty"`
}

// Vulnerabilities holds the vulnerability reports.
type Vulnerabilities struct {
	// Scan is the registry scanner's report, or null when the image was not
	// scanned (see Errors for why).
	Scan *Scan `json:"scan"`
	// Attested are the verified vulnerability attestations.
	Attested []AttestedVulnReport `json:"attested"`
}

// Scan is the registry scanner's report ([scanner.Report] without its
// package inventory, which becomes the generated SBOM).
type Scan struct {
	Digest          string                  `json:"digest"`
	Scanner         scanner.ScannerInfo     `json:"scanner"`
	DB              scanner.DBInfo          `json:"db"`
	ScannedAt       time.Time               `json:"scannedAt"`
	OS              *scanner.OS             `json:"os,omitempty"`
	Packages        int                     `json:"packages"`
	Vulnerabilities []scanner.Vulnerability `json:"vulnerabilities"`
	Counts          map[string]int          `json:"counts"`
}

// AttestedVulnReport is a verified vulnerability attestation.
type AttestedVulnReport struct {
	PredicateType string             `json:"predicateType"`
	Authorities   []string           `json:"authorities"`
	Report        *attest.VulnReport `json:"report"`
}

// CheckError is a check the gate could not make.
type CheckError struct {
	// Check is e.g. "signatures", "attestations", "scan".
	Check   string `json:"check"`
	Message string `json:"message"`
}

// Checks named in [CheckError].Check by the gate (policy.WithCheckError).
const (
	CheckEvidence = "evidence"
	CheckScan     = "scan"
)

// Signer says who produced a signature: a key, or a certificate identity.
type Signer struct {
	// KeyID is the SHA-256 of the public key's PKIX DER, hex, for key
	// signatures.
	KeyID string `json:"keyId,omitempty"`
	// Subject is the certificate's subject alternative name (an e-mail or
	// URI, e.g. a CI workflow), for keyless signatures.
	Subject string `json:"subject,omitempty"`
	// Issuer is the OIDC issuer recorded in the certificate.
	Issuer string `json:"issuer,omitempty"`
}

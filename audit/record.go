// Package audit keeps the decision history of Portcullis: every push,
// promotion, admission and break-glass decision becomes a Record, appended as
// a leaf of an RFC 6962 Merkle tree whose roots are published in signed
// checkpoints (signed notes in the transparency-dev checkpoint format).
//
// A Log is the entry point: Append records, Checkpoint, Verify the whole
// history, compute inclusion and consistency proofs, and Search it. The pure
// functions ParseCheckpoint, VerifyInclusion and VerifyConsistency let an
// auditor check a record or a checkpoint offline, with the public key only.
//
// The format is documented in docs/audit.md.
package audit

import (
	"errors"
	"fmt"
	"time"
)

// Actions a Record can describe.
const (
	ActionPush       = "push"
	ActionPromote    = "promote"
	ActionAdmit      = "admit"
	ActionBreakGlass = "break-glass"
	// ActionDelete is a deletion refused in a protected repository.
	ActionDelete = "delete"
)

// Verdicts a Record can carry.
const (
	VerdictAllow = "allow"
	VerdictDeny  = "deny"
	VerdictError = "error"
)

// EnforcementWarn is the Enforcement of an admission taken in a namespace
// in warn mode: the webhook admitted the workload whatever the verdict.
const EnforcementWarn = "warn"

// Record is one decision. Its JSON form is part of the signed log: never
// rename a field; add new optional fields only.
type Record struct {
	// Time of the decision (UTC). Zero means "when appended".
	Time time.Time `json:"time"`
	// Action is push, promote, admit, break-glass or delete.
	Action string `json:"action"`
	// Subject is the artifact decided on.
	Subject Subject `json:"subject"`
	// Target is where the artifact was going.
	Target Target `json:"target,omitzero"`
	// Actor is who asked.
	Actor Actor `json:"actor,omitzero"`
	// Evidence summarises what the decision was taken on.
	Evidence Evidence `json:"evidence,omitzero"`
	// PolicyRevision is the digest of the compiled policy bundle.
	PolicyRevision string `json:"policyRevision,omitempty"`
	// Verdict is allow, deny or error (an error is a denial: the gate fails closed).
	Verdict string `json:"verdict"`
	// Reasons are the policy's deny messages (or why it allowed a break-glass).
	Reasons []string `json:"reasons,omitempty"`
	// Warnings are the policy's warn messages.
	Warnings []string `json:"warnings,omitempty"`
	// BreakGlassJustification is the operator's justification; required for break-glass.
	BreakGlassJustification string `json:"breakGlassJustification,omitempty"`
	// Error says why the decision could not be taken (verdict error).
	Error string `json:"error,omitempty"`
	// Cached says an admission was answered from the webhook's decision
	// cache: the verdict, evidence and policy revision are those of the
	// earlier decision it repeats; time, target and actor are this one's.
	Cached bool `json:"cached,omitempty"`
	// LeftBehind names, on a promotion, the manifests about the subject
	// that were not evidence and so were not carried into the target.
	LeftBehind []string `json:"leftBehind,omitempty"`
	// Enforcement is "warn" on an admission decided in a namespace in
	// warn mode: the workload was admitted, with warnings, whatever the
	// verdict (which stays the policy's: deny or error). Empty means the
	// verdict was enforced.
	Enforcement string `json:"enforcement,omitempty"`
}

// Subject identifies the artifact.
type Subject struct {
	// Repository is the repository the artifact was pushed to or is pulled
	// from, e.g. "staging/app" or "registry.example.com/prod/app".
	Repository string `json:"repository,omitempty"`
	// Digest is the manifest digest, e.g. "sha256:...".
	Digest string `json:"digest,omitempty"`
	// Tag is the tag used, if any.
	Tag string `json:"tag,omitempty"`
}

// Target is where the artifact goes: a registry repository (promote, push)
// or a Kubernetes workload (admit).
type Target struct {
	// Repository is the destination repository of a promotion, e.g. "prod/app".
	Repository string `json:"repository,omitempty"`
	// Namespace is the Kubernetes namespace (admit) or the registry namespace.
	Namespace string `json:"namespace,omitempty"`
	// Kind and Name identify the Kubernetes workload (e.g. Deployment/web).
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
}

// Actor is who asked for the decision.
type Actor struct {
	// Identity is the authenticated registry identity (user, token subject).
	Identity string `json:"identity,omitempty"`
	// KubernetesUser is the user of the AdmissionReview request.
	KubernetesUser string `json:"kubernetesUser,omitempty"`
	// ServiceAccount is the workload's service account (namespace/name).
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// Evidence summarises the verified evidence a decision was taken on.
type Evidence struct {
	Signers      []EvidenceSigner `json:"signers,omitempty"`
	Attestations []Attestation    `json:"attestations,omitempty"`
	SBOMDigest   string           `json:"sbomDigest,omitempty"`
	Scan         *Scan            `json:"scan,omitempty"`
	VSADigest    string           `json:"vsaDigest,omitempty"`
}

// EvidenceSigner is one verified signature: a key (KeyID) or a keyless identity
// (Subject and Issuer), and the trust authority that accepted it.
type EvidenceSigner struct {
	Authority string `json:"authority,omitempty"`
	KeyID     string `json:"keyId,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Issuer    string `json:"issuer,omitempty"`
}

// Attestation is one verified attestation.
type Attestation struct {
	PredicateType string `json:"predicateType"`
	Digest        string `json:"digest,omitempty"`
}

// Scan summarises a vulnerability scan.
type Scan struct {
	DBVersion string    `json:"dbVersion,omitempty"`
	DBBuiltAt time.Time `json:"dbBuiltAt,omitzero"`
	// Counts by severity (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN).
	Counts map[string]int `json:"counts,omitempty"`
}

// ErrInvalidRecord is wrapped by the errors of Validate.
var ErrInvalidRecord = errors.New("invalid audit record")

// Validate checks the enumerations. It is deliberately lenient otherwise: a
// decision that failed early (say, a tag that did not resolve) must still be
// recorded.
func (r *Record) Validate() error {
	switch r.Action {
	case ActionPush, ActionPromote, ActionAdmit, ActionBreakGlass, ActionDelete:
	default:
		return fmt.Errorf("%w: action %q: want push, promote, admit, break-glass or delete", ErrInvalidRecord, r.Action)
	}
	switch r.Verdict {
	case VerdictAllow, VerdictDeny, VerdictError:
	default:
		return fmt.Errorf("%w: verdict %q: want allow, deny or error", ErrInvalidRecord, r.Verdict)
	}
	if r.Enforcement != "" && r.Enforcement != EnforcementWarn {
		return fmt.Errorf("%w: enforcement %q: want %s or none", ErrInvalidRecord, r.Enforcement, EnforcementWarn)
	}
	if r.Action == ActionBreakGlass && r.BreakGlassJustification == "" {
		return fmt.Errorf("%w: break-glass without a justification", ErrInvalidRecord)
	}
	return nil
}

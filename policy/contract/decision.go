package contract

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Verdict is the outcome of evaluating a policy for one input.
type Verdict struct {
	// Allow is true only when the policy evaluated without error and its
	// deny set is empty.
	Allow bool `json:"allow"`
	// Deny and Warn are the policy's messages, sorted by Msg.
	Deny []Message `json:"deny"`
	Warn []Message `json:"warn"`
	// Revision is the digest of the compiled bundle (policy.Bundle.Revision).
	Revision string `json:"revision"`
	// PolicySet names the policy set that decided, when a policy set chose it.
	PolicySet string `json:"policySet,omitempty"`
	// Error says why evaluation failed; the decision is then a denial.
	Error string `json:"error,omitempty"`
}

// Message is one reason a policy gives.
type Message struct {
	// Msg is an actionable sentence.
	Msg string `json:"msg"`
	// Details is structured data the policy added (the library adds
	// "policy", naming itself, and what the message is about).
	Details map[string]any `json:"details,omitempty"`
}

// Request asks for a decision about one image.
type Request struct {
	Action Action `json:"action"`
	// Registry is the host of another registry the image and its
	// evidence are read from (admission only; Options.Remote must allow
	// it), or "" for the registry the gate guards.
	Registry string `json:"registry,omitempty"`
	// Repository is where the image and its evidence are read from.
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	Tag        string        `json:"tag,omitempty"`
	// Reference is the image as the requester wrote it, if any.
	Reference string `json:"reference,omitempty"`
	Target    Target `json:"target"`
	Actor     Actor  `json:"actor"`
	// LeftBehind, on a promotion, are the manifests about the digest that
	// are not evidence and so are not carried (recorded; policy does not
	// see them).
	LeftBehind []LeftBehind `json:"leftBehind,omitempty"`
	// Enforcement is, at admission, how the webhook acts on the decision
	// in the workload's namespace: EnforcementWarn (warn mode: admitted
	// whatever the verdict) or "" (enforced). Recorded; policy does not
	// see it, and a cached decision is recorded with the current
	// request's (RecordCached).
	Enforcement string `json:"enforcement,omitempty"`
}

// EnforcementWarn is the Request.Enforcement of an admission in a
// namespace in warn mode
// (audit.EnforcementWarn in the record: gate's tests keep the two equal).
const EnforcementWarn = "warn"

// FullRepository is the repository, prefixed with the host of another
// registry (so that policy never mistakes another registry's prod/app for
// this registry's).
func (r Request) FullRepository() string {
	if r.Registry != "" {
		return r.Registry + "/" + r.Repository
	}
	return r.Repository
}

// Decision is the gate's answer, with what it was based on.
type Decision struct {
	Verdict
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration"`
	Request  Request       `json:"request"`
	// Input is what policy saw: the evidence, the scan, the request.
	Input *Input `json:"input,omitempty"`
	// CachedEvidence says the verified evidence came from the cache.
	CachedEvidence bool `json:"cachedEvidence,omitempty"`
	// PolicyDuration is how long policy evaluation took (for metrics; not
	// recorded, as Duration is the decision's).
	PolicyDuration time.Duration `json:"-"`
	// VSA is set when an admission's evidence came from the verification
	// summary the gate signed at promotion instead of being collected and
	// verified again; policy still decided, on Input.
	VSA *VSAProof `json:"vsa,omitempty"`
	// TrustRevision is the revision of the trust configuration the
	// evidence was verified under (verifier.Verifier.Revision).
	TrustRevision string `json:"trustRevision,omitempty"`
	// Cached says the decision repeats an earlier one (the webhook's
	// decision cache) for this request (gate.Gate.RecordCached).
	Cached bool `json:"cached,omitempty"`
	// Note says why an allow that policy did not take was given (the
	// evidence filter); it is the record's reason.
	Note string `json:"note,omitempty"`
}

// Reasons are the messages a person reads: the policy's denials, and the
// error when no denial already says it.
func (d *Decision) Reasons() []string {
	var out []string
	for _, m := range d.Deny {
		out = append(out, m.Msg)
	}
	if d.Error != "" && !slices.ContainsFunc(out, func(m string) bool { return strings.Contains(m, d.Error) }) {
		out = append(out, d.Error)
	}
	return out
}

// VSAProof is what the evidence of an admission came from on the fast
// path: a verification summary this gate signed when it promoted the
// digest, carrying the evidence it had verified.
type VSAProof struct {
	// Manifest is the VSA referrer's manifest digest.
	Manifest digest.Digest `json:"manifest"`
	// TimeVerified is when the evidence was verified.
	TimeVerified time.Time `json:"timeVerified"`
	// Revision is the policy revision the promotion passed (recorded only:
	// the admission's own policy decides the admission).
	Revision string `json:"revision"`
	// TrustRevision is the trust configuration the evidence was verified
	// under, the same as the admission's.
	TrustRevision string `json:"trustRevision"`
}

// ManifestWrite is a manifest PUT into a protected repository.
type ManifestWrite struct {
	Repository string
	// Tag is the tag the PUT names, "" for a PUT by digest.
	Tag    string
	Digest digest.Digest
	// MediaType and Content are the manifest as pushed.
	MediaType string
	Content   []byte
	// Subject is the manifest's subject (OCI 1.1 referrers), if any.
	Subject digest.Digest
	Actor   Actor
}

// Plan is what the registry does for an allowed write.
type Plan struct {
	// Direct: store the manifest as pushed, under the PUT's tag if any;
	// ImmutableTag marks that tag immutable.
	Direct       bool
	ImmutableTag bool
	// Evidence is set when a direct write is evidence (kind) about an
	// image the gate let into the repository.
	Evidence EvidenceKind
	// Otherwise: link Manifests (children first) and set Tags, from From
	// into To, in one transaction.
	From, To  string
	Manifests []digest.Digest
	Tags      []TagUpdate
	// LeftBehind are the manifests about Subject in From that are not
	// evidence, so were not carried.
	LeftBehind []LeftBehind
	// Subject is the promoted image; Decision the gate's decision on it.
	Subject  digest.Digest
	Decision *Decision
}

// LeftBehind is a manifest a promotion did not carry, and why.
type LeftBehind struct {
	Digest digest.Digest `json:"digest"`
	// Tag is the cosign tag it was under, if any.
	Tag    string `json:"tag,omitempty"`
	Reason string `json:"reason"`
}

func (l LeftBehind) String() string {
	if l.Tag != "" {
		return fmt.Sprintf("%s (tag %s): %s", l.Digest, l.Tag, l.Reason)
	}
	return fmt.Sprintf("%s: %s", l.Digest, l.Reason)
}

// TagUpdate points a tag at a digest.
type TagUpdate struct {
	Name      string
	Digest    digest.Digest
	Immutable bool
}

// DeniedError is a write the gate refuses. Its message is written for the
// person reading the client's output.
type DeniedError struct {
	Message  string
	Decision *Decision // nil when no policy was asked
}

func (e *DeniedError) Error() string { return e.Message }

// Refusal is a write into a protected repository that was refused before
// (or without) any policy decision: an immutable tag it would move or
// delete, a blob that is not in the registry, a source namespace that may
// not be promoted from. Every one is recorded (docs/audit.md, "every
// decision is a record").
type Refusal struct {
	// Action is push, promote or [ActionDelete].
	Action     Action
	Repository string
	// Digest is the manifest (or, for a refused blob, the blob) digest.
	Digest digest.Digest
	Tag    string
	// Target is where the write was going, if not Repository itself.
	Target string
	Reason string
	// Err marks a write that failed rather than was refused (the store
	// could not take what the gate allowed): recorded with verdict error.
	Err   bool
	Actor Actor
}

// EvidenceKind says what an evidence manifest holds.
type EvidenceKind string

// The kinds of evidence a protected namespace may hold besides the images
// the gate allowed (see docs/gate.md, I1).
const (
	// EvidenceSignature is cosign's simple-signing signature (tag scheme
	// ".sig", or a referrer of artifact type cosign.artifact.sig).
	EvidenceSignature EvidenceKind = "signature"
	// EvidenceAttestation is a DSSE envelope of an in-toto statement
	// (cosign's ".att" tag scheme, or a DSSE referrer).
	EvidenceAttestation EvidenceKind = "attestation"
	// EvidenceBundle is a Sigstore bundle referrer (cosign v3 signatures
	// and attestations, and the gate's own VSA).
	EvidenceBundle EvidenceKind = "bundle"
	// EvidenceSBOM is an SBOM document (cosign's ".sbom" tag scheme, or an
	// SBOM referrer).
	EvidenceSBOM EvidenceKind = "sbom"
)

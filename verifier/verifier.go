// Package verifier gathers the supply-chain evidence stored with an image
// digest and verifies it cryptographically, so that policy decides on
// facts, never on the mere presence of a file.
//
// Evidence is found wherever cosign puts it: the tag scheme
// (sha256-<hex>.sig and .att, checked with the cosign v2 library), OCI 1.1
// referrers holding simple-signing layers, and Sigstore bundles stored as
// referrers (cosign v3's default, checked with sigstore-go). Everything is
// verified offline: keys need nothing else; keyless certificates are
// checked against a trusted root, with the transparency log proofs and
// timestamps carried by the signature itself.
//
// "Could not check" (I/O, timeouts) is an error; "checked and failed" is a
// result with a reason. Callers must keep the two apart: the gate treats
// an error as a denial.
package verifier

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/root"
	"go.opentelemetry.io/otel/attribute"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/internal/tracing"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Authority is a named signer that policy can require: a set of public
// keys, or keyless identities checked against a trusted root, or both.
type Authority struct {
	Name string
	// Keys are public keys (ECDSA, Ed25519, RSA).
	Keys []crypto.PublicKey
	// Keyless, if set, accepts certificates issued by the trusted root's
	// certificate authorities to one of its identities.
	Keyless *Keyless
}

// Keyless trusts short-lived certificates (Fulcio) naming an identity.
type Keyless struct {
	// Identities: a certificate must match at least one. There must be at
	// least one: an authority never trusts "anyone the CA certified".
	Identities []Identity
	// TrustedRoot holds the certificate authorities, timestamp authorities
	// and transparency logs (see LoadTrustedRoot and FetchTrustedRoot).
	TrustedRoot root.TrustedMaterial
	// RequireSCT demands a certificate transparency proof embedded in the
	// certificate, checked against the trusted root's CT logs.
	RequireSCT bool
}

// Identity matches a certificate: subject (the SAN: e-mail or URI) and
// OIDC issuer, each exactly or by regular expression. Regular expressions
// are not anchored: write ^...$. An empty field matches anything, but an
// Identity must constrain both the subject and the issuer.
type Identity struct {
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
}

// Verifier checks the evidence of digests against configured authorities.
// It is safe for concurrent use.
type Verifier struct {
	authorities []*authority
	revision    string
}

// New returns a Verifier trusting the given authorities, in order.
func New(authorities ...Authority) (*Verifier, error) {
	v := &Verifier{}
	seen := map[string]bool{}
	for _, a := range authorities {
		if seen[a.Name] {
			return nil, fmt.Errorf("verifier: authority %q is configured twice", a.Name)
		}
		seen[a.Name] = true
		au, err := newAuthority(a)
		if err != nil {
			return nil, fmt.Errorf("verifier: authority %q: %w", a.Name, err)
		}
		v.authorities = append(v.authorities, au)
	}
	rev, err := trustRevision(authorities)
	if err != nil {
		return nil, fmt.Errorf("verifier: trust revision: %w", err)
	}
	v.revision = rev
	return v, nil
}

// Authorities returns the names of the configured authorities, in order.
func (v *Verifier) Authorities() []string {
	out := make([]string, len(v.authorities))
	for i, a := range v.authorities {
		out[i] = a.name
	}
	return out
}

// Collect gathers and verifies the evidence for subj from src. Evidence
// that is present but does not verify is reported with a reason; an error
// means the evidence could not be read.
func (v *Verifier) Collect(ctx context.Context, src source.Source, subj Subject) (ev *Evidence, err error) {
	ctx, span := tracing.Start(ctx, "verifier.Collect",
		attribute.String("portcullis.repository", subj.Repository), attribute.String("portcullis.digest", subj.Digest.String()))
	defer func() {
		if ev != nil {
			span.SetAttributes(attribute.Int("portcullis.signatures", len(ev.Signatures)), attribute.Int("portcullis.attestations", len(ev.Attestations)))
		}
		tracing.End(span, err)
	}()
	// I3: a panic while verifying (cosign, sigstore-go, parsers) is an
	// error, which the gate denies; it never crashes the server.
	defer panics.Recover(ctx, nil, "verifier.Collect", &err)
	if err := subj.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("collect evidence for %s@%s: %w", subj.Repository, subj.Digest, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collect evidence for %s@%s: %w", subj.Repository, subj.Digest, err)
	}
	c := &collection{v: v, src: src, subj: subj,
		ev: &Evidence{Subject: subj, Signatures: []Signature{}, Attestations: []Attestation{}}}
	var steps []func(context.Context) error
	if h, err := v1.NewHash(subj.Digest.String()); err == nil {
		// cosign's tag scheme exists for SHA-256 subjects only.
		c.h = h
		steps = append(steps, c.tagSignatures, c.tagAttestations)
	}
	steps = append(steps, c.referrers)
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, fmt.Errorf("collect evidence for %s@%s: %w", subj.Repository, subj.Digest, err)
		}
	}
	if c.failed != nil {
		return nil, fmt.Errorf("collect evidence for %s@%s: %w", subj.Repository, subj.Digest, c.failed)
	}
	return c.ev, nil
}

// collection is the state of one Collect call.
type collection struct {
	v    *Verifier
	src  source.Source
	subj Subject
	h    v1.Hash
	ev   *Evidence
	// failed is set when a parser panicked (see internal).
	failed error
}

// blob reads a blob. A missing blob gives a reason to record instead of
// an error: the evidence is broken, the registry answered.
func (c *collection) blob(ctx context.Context, d digest.Digest, what string) (b []byte, reason string, err error) {
	b, err = c.src.Blob(ctx, c.subj.Repository, d)
	if errors.Is(err, source.ErrNotFound) {
		return nil, fmt.Sprintf("%s %s is missing from the registry", what, d), nil
	}
	if errors.Is(err, source.ErrInvalid) {
		return nil, fmt.Sprintf("%s %s: %v", what, d, err), nil
	}
	return b, "", err
}

package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// vsaExtension is the key of the VSA predicate field holding what the gate
// binds the summary to and the evidence itself ([vsaEvidence]); consumers
// of the SLSA predicate ignore it.
const vsaExtension = "https://portcullis.dev/vsa/evidence/v1"

// vsaEvidence is the part of the gate's VSA that the fast path rests on.
type vsaEvidence struct {
	// TrustRevision is the trust configuration the evidence was verified
	// under: under another, the summary does not stand.
	TrustRevision string `json:"trustRevision"`
	// Fingerprint identifies the evidence stored with repository@digest
	// when it was verified (cosign tags and referrers, the gate's own VSAs
	// left out): evidence added or removed since, and the summary does not
	// stand.
	Fingerprint string `json:"fingerprint"`
	// Evidence is the verified evidence, as policy sees it
	// ([policy.VerifiedEvidence]: signatures, attestations and what they
	// say; no scan, no check errors).
	Evidence contract.Evidence `json:"evidence"`
}

// fastPath finds the evidence of an admission in a verification summary,
// when one applies: the image is in a protected namespace of this registry
// (so it got there only through the gate) and carries a VSA signed with
// this gate's key, for this digest and repository, verified under the
// current trust configuration, over exactly the evidence stored with the
// image now, and younger than VSAMaxAge. It stands in for collecting and
// verifying signatures and attestations only: the caller scans and
// evaluates the admission's policy on it. It returns nil, and the reason,
// when the evidence must be collected.
func (g *Gate) fastPath(ctx context.Context, req contract.Request, now time.Time) (*contract.VSAProof, *contract.Evidence, string) {
	if g.vsa == nil || req.Action != contract.ActionAdmit || req.Registry != "" || g.cfg.protected(req.Repository) == nil {
		return nil, nil, ""
	}
	return g.findVSA(ctx, req.Repository, req.Digest, now)
}

// isVSA reports whether a referrer descriptor looks like a verification
// summary (its signature decides whether it is this gate's).
func isVSA(desc ocispec.Descriptor) bool {
	return desc.ArtifactType == bundleMediaType && desc.Annotations["dev.sigstore.bundle.predicateType"] == attest.PredicateVSAV1
}

// findVSA returns the newest valid VSA of repo@d and its evidence.
func (g *Gate) findVSA(ctx context.Context, repo string, d digest.Digest, now time.Time) (*contract.VSAProof, *contract.Evidence, string) {
	src := g.o.Store.Source()
	refs, err := src.Referrers(ctx, repo, d)
	if err != nil {
		return nil, nil, fmt.Sprintf("referrers: %v", err)
	}
	if !slices.ContainsFunc(refs, isVSA) {
		return nil, nil, "no verification summary"
	}
	fp, err := evidenceFingerprint(ctx, src, repo, d, refs)
	if err != nil {
		return nil, nil, fmt.Sprintf("evidence fingerprint: %v", err)
	}
	trust := g.o.Verifier.Revision()
	var (
		best *contract.VSAProof
		ev   *contract.Evidence
	)
	why := "no verification summary"
	for _, desc := range refs {
		if !isVSA(desc) {
			continue
		}
		p, e, err := g.checkVSA(ctx, repo, d, desc.Digest, trust, fp, now)
		if err != nil {
			why = fmt.Sprintf("verification summary %s: %v", desc.Digest, err)
			continue
		}
		if best == nil || p.TimeVerified.After(best.TimeVerified) {
			best, ev = p, e
		}
	}
	if best == nil {
		return nil, nil, why
	}
	return best, ev, ""
}

var errNotOurs = errors.New("not signed with this gate's key")

// checkVSA verifies one VSA referrer manifest m of repo@d: signed with
// this gate's key, about repo@d, verified under trust revision trust over
// the evidence with fingerprint fp, and young enough.
func (g *Gate) checkVSA(ctx context.Context, repo string, d, m digest.Digest, trust, fp string, now time.Time) (*contract.VSAProof, *contract.Evidence, error) {
	src := g.o.Store.Source()
	man, err := src.Manifest(ctx, repo, m)
	if err != nil {
		return nil, nil, err
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(man.Content, &om); err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	if len(om.Layers) != 1 || om.Layers[0].MediaType != bundleMediaType {
		return nil, nil, errors.New("manifest does not hold one bundle layer")
	}
	raw, err := src.Blob(ctx, repo, om.Layers[0].Digest)
	if err != nil {
		return nil, nil, err
	}
	payload, err := g.vsa.open(raw)
	if err != nil {
		return nil, nil, err
	}
	st, err := attest.ParseStatement(payload)
	if err != nil {
		return nil, nil, err
	}
	if st.PredicateType != attest.PredicateVSAV1 || !st.HasSubjectDigest(d.String()) {
		return nil, nil, fmt.Errorf("not a verification summary of %s", d)
	}
	// One pass over the predicate: the SLSA fields and the evidence.
	var v struct {
		attest.VSA
		Evidence *vsaEvidence `json:"https://portcullis.dev/vsa/evidence/v1"` // vsaExtension
	}
	if err := json.Unmarshal(st.Predicate, &v); err != nil {
		return nil, nil, fmt.Errorf("predicate: %w", err)
	}
	if v.Evidence == nil {
		return nil, nil, errors.New("carries no evidence (written by an older gate)")
	}
	bound := v.Evidence
	switch {
	case v.Verifier.ID != VSAVerifierID:
		return nil, nil, fmt.Errorf("verifier %q", v.Verifier.ID)
	case v.VerificationResult != attest.VSAPassed:
		return nil, nil, fmt.Errorf("result %s", v.VerificationResult)
	case v.ResourceURI != "oci://"+repo+"@"+d.String():
		return nil, nil, fmt.Errorf("resource %s is not %s@%s", v.ResourceURI, repo, d)
	case bound.TrustRevision != trust:
		return nil, nil, fmt.Errorf("verified under trust revision %s, not the current %s", shortRevision(bound.TrustRevision), shortRevision(trust))
	case bound.Fingerprint != fp:
		return nil, nil, errors.New("the evidence stored with the image changed since it was verified")
	case v.TimeVerified.After(now.Add(time.Minute)):
		return nil, nil, fmt.Errorf("verified in the future (%s)", v.TimeVerified)
	case now.Sub(v.TimeVerified) > g.cfg.VSAMaxAge.D():
		return nil, nil, fmt.Errorf("verified %s ago, more than %s", now.Sub(v.TimeVerified).Round(time.Second), g.cfg.VSAMaxAge)
	}
	rev := ""
	for alg, hex := range v.Policy.Digest {
		rev = alg + ":" + hex
	}
	return &contract.VSAProof{Manifest: m, TimeVerified: v.TimeVerified, Revision: rev, TrustRevision: trust}, &bound.Evidence, nil
}

// open checks that bundle raw is a DSSE envelope of an in-toto statement
// signed with this key, and returns the statement. The bundle is read with
// encoding/json, not protojson (several times faster on the cold
// admission path): only this gate's signature over what was read counts,
// so a reading that differed could only fail the check.
func (s *vsaSigner) open(raw []byte) ([]byte, error) {
	var b struct {
		DSSE *struct {
			Payload     []byte `json:"payload"`
			PayloadType string `json:"payloadType"`
			Signatures  []struct {
				Sig []byte `json:"sig"`
			} `json:"signatures"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	env := b.DSSE
	if env == nil || env.PayloadType != attest.PayloadTypeInToto {
		return nil, errors.New("bundle holds no in-toto DSSE envelope")
	}
	pae := dsse.PAE(env.PayloadType, env.Payload)
	for _, sig := range env.Signatures {
		if s.verifier.VerifySignature(bytes.NewReader(sig.Sig), bytes.NewReader(pae)) == nil {
			return env.Payload, nil
		}
	}
	return nil, errNotOurs
}

package gate

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy"
)

// VSAProof is what an admission decided on the fast path rests on: a
// verification summary this gate signed when it promoted the digest.
type VSAProof struct {
	// Manifest is the VSA referrer's manifest digest.
	Manifest digest.Digest `json:"manifest"`
	// TimeVerified is when the promotion was decided.
	TimeVerified time.Time `json:"timeVerified"`
	// Revision is the policy revision the promotion passed, the same as
	// the admission's.
	Revision string `json:"revision"`
}

// fastPath admits req on a verification summary when one applies: the
// image is in a protected namespace (so it got there only through the
// gate), carries a VSA signed with this gate's key, for this digest and
// repository, that PASSED the policy revision that decides this
// admission, and is younger than VSAMaxAge. Nothing else is read: no
// signatures, attestations or scan. It returns nil, and the reason, when
// the full check must run.
func (g *Gate) fastPath(ctx context.Context, req Request, now time.Time) (*Decision, string) {
	if g.vsa == nil || req.Action != policy.ActionAdmit || req.Registry != "" || g.cfg.protected(req.Repository) == nil {
		return nil, ""
	}
	b := g.o.Policies.For(req.Target)
	rev := b.Engine().Revision()
	proof, why := g.findVSA(ctx, req.Repository, req.Digest, rev, now)
	if proof == nil {
		return nil, why
	}
	return &Decision{
		Decision: policy.Decision{Allow: true, Revision: rev, PolicySet: b.Name()},
		Time:     now.UTC(), Request: req, VSA: proof,
	}, ""
}

// findVSA returns the newest valid VSA of repo@d for revision rev.
func (g *Gate) findVSA(ctx context.Context, repo string, d digest.Digest, rev string, now time.Time) (*VSAProof, string) {
	src := g.o.Store.Source()
	refs, err := src.Referrers(ctx, repo, d)
	if err != nil {
		return nil, fmt.Sprintf("referrers: %v", err)
	}
	var best *VSAProof
	why := "no verification summary"
	for _, desc := range refs {
		if desc.ArtifactType != bundleMediaType || desc.Annotations["dev.sigstore.bundle.predicateType"] != attest.PredicateVSAV1 {
			continue
		}
		p, err := g.checkVSA(ctx, repo, d, desc.Digest, rev, now)
		if err != nil {
			why = fmt.Sprintf("verification summary %s: %v", desc.Digest, err)
			continue
		}
		if best == nil || p.TimeVerified.After(best.TimeVerified) {
			best = p
		}
	}
	return best, why
}

var errNotOurs = errors.New("not signed with this gate's key")

// checkVSA verifies one VSA referrer manifest m of repo@d.
func (g *Gate) checkVSA(ctx context.Context, repo string, d, m digest.Digest, rev string, now time.Time) (*VSAProof, error) {
	src := g.o.Store.Source()
	man, err := src.Manifest(ctx, repo, m)
	if err != nil {
		return nil, err
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(man.Content, &om); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if len(om.Layers) != 1 || om.Layers[0].MediaType != bundleMediaType {
		return nil, errors.New("manifest does not hold one bundle layer")
	}
	raw, err := src.Blob(ctx, repo, om.Layers[0].Digest)
	if err != nil {
		return nil, err
	}
	payload, err := g.vsa.open(raw)
	if err != nil {
		return nil, err
	}
	st, err := attest.ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	if st.PredicateType != attest.PredicateVSAV1 || !st.HasSubjectDigest(d.String()) {
		return nil, fmt.Errorf("not a verification summary of %s", d)
	}
	pred, err := attest.ParsePredicate(st.PredicateType, st.Predicate)
	if err != nil {
		return nil, err
	}
	v := pred.(*attest.VSA)
	revAlg, revHex, _ := cutDigest(rev)
	switch {
	case v.Verifier.ID != VSAVerifierID:
		return nil, fmt.Errorf("verifier %q", v.Verifier.ID)
	case v.VerificationResult != attest.VSAPassed:
		return nil, fmt.Errorf("result %s", v.VerificationResult)
	case v.ResourceURI != "oci://"+repo+"@"+d.String():
		return nil, fmt.Errorf("resource %s is not %s@%s", v.ResourceURI, repo, d)
	case v.Policy.Digest[revAlg] != revHex || revHex == "":
		return nil, fmt.Errorf("policy revision %v is not the current %s", v.Policy.Digest, shortRevision(rev))
	case v.TimeVerified.After(now.Add(time.Minute)):
		return nil, fmt.Errorf("verified in the future (%s)", v.TimeVerified)
	case now.Sub(v.TimeVerified) > g.cfg.VSAMaxAge:
		return nil, fmt.Errorf("verified %s ago, more than %s", now.Sub(v.TimeVerified).Round(time.Second), g.cfg.VSAMaxAge)
	}
	return &VSAProof{Manifest: m, TimeVerified: v.TimeVerified, Revision: rev}, nil
}

// open checks that bundle raw is a DSSE envelope of an in-toto statement
// signed with this key, and returns the statement.
func (s *vsaSigner) open(raw []byte) ([]byte, error) {
	var b protobundle.Bundle
	if err := protojson.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	env := b.GetDsseEnvelope()
	if env == nil || env.PayloadType != attest.PayloadTypeInToto {
		return nil, errors.New("bundle holds no in-toto DSSE envelope")
	}
	v, err := signature.LoadVerifier(s.key.Public(), crypto.SHA256)
	if err != nil {
		return nil, err
	}
	pae := dsse.PAE(env.PayloadType, env.Payload)
	for _, sig := range env.Signatures {
		if v.VerifySignature(bytes.NewReader(sig.Sig), bytes.NewReader(pae)) == nil {
			return env.Payload, nil
		}
	}
	return nil, errNotOurs
}

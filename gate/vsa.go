package gate

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// VSAVerifierID identifies Portcullis as the verifier in its VSAs.
const VSAVerifierID = "https://portcullis.dev/gate"

const bundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// vsaSigner signs verification summaries into Sigstore bundles, as cosign
// v3 stores attestations: a referrer any cosign or sigstore client reads.
type vsaSigner struct {
	key      crypto.Signer
	verifier signature.Verifier // of key's public key
	hint     string             // base64 SHA-256 of the public key, as cosign writes it
}

func newVSASigner(key crypto.Signer) (*vsaSigner, error) {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("vsa key: %w", err)
	}
	sum := sha256.Sum256(der)
	v, err := signature.LoadVerifier(key.Public(), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("vsa key: %w", err)
	}
	return &vsaSigner{key: key, verifier: v, hint: base64.StdEncoding.EncodeToString(sum[:])}, nil
}

// bundle signs statement (an in-toto statement) into a v0.3 bundle.
func (s *vsaSigner) bundle(statement []byte) ([]byte, error) {
	h := sha256.Sum256(dsse.PAE(attest.PayloadTypeInToto, statement))
	sig, err := s.key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign vsa: %w", err)
	}
	return protojson.Marshal(&protobundle.Bundle{
		MediaType: bundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{
			PublicKey: &protocommon.PublicKeyIdentifier{Hint: s.hint}}},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: attest.PayloadTypeInToto, Signatures: []*protodsse.Signature{{Sig: sig}}}},
	})
}

// Promoted is called by the registry once a plan is committed. It attaches
// a signed VSA to the promoted image: that this digest passed this policy
// revision, and (for the admission webhook's fast path) the evidence the
// gate verified in the target repository, bound to the trust revision it
// was verified under and to the evidence stored there. A failure is
// logged: the promotion stands, admission then verifies fully.
func (g *Gate) Promoted(ctx context.Context, p *contract.Plan) {
	if g.vsa == nil || p == nil || p.Decision == nil || p.To == "" || !p.Decision.Allow {
		return
	}
	if err := g.writeVSA(ctx, p); err != nil {
		g.log.WarnContext(ctx, "gate: writing the verification summary failed", "repository", p.To, "digest", p.Subject, "err", err)
	}
}

func (g *Gate) writeVSA(ctx context.Context, p *contract.Plan) error {
	d := p.Decision
	src := g.o.Store.Source()
	// The summary carries what an admission of p.To@p.Subject would verify
	// now: the evidence the promotion carried, in the target repository,
	// fingerprinted first (evidence that arrives while it is verified then
	// changes the fingerprint, and the summary does not stand for it).
	// The scan is not in it: admission asks the scanner, as a full check
	// does.
	refs, err := src.Referrers(ctx, p.To, p.Subject)
	if err != nil {
		return err
	}
	fp, err := evidenceFingerprint(ctx, src, p.To, p.Subject, refs)
	if err != nil {
		return err
	}
	ev, _, err := g.evidence(ctx, "", p.To, p.Subject)
	if err != nil {
		return fmt.Errorf("the evidence of %s@%s could not be checked, so no summary stands in for it: %w", p.To, p.Subject, err)
	}
	verified := policy.VerifiedEvidence(ev)
	var inputs []attest.ResourceRef
	for _, pt := range sortedKeys(verified.Attestations.ByPredicateType) {
		for _, a := range verified.Attestations.ByPredicateType[pt] {
			if alg, hex, ok := cutDigest(a.Manifest); ok {
				inputs = append(inputs, attest.ResourceRef{URI: "oci://" + p.To + "@" + a.Manifest, Digest: map[string]string{alg: hex}})
			}
		}
	}
	alg, hexd, _ := cutDigest(p.Subject.String())
	revAlg, revHex, _ := cutDigest(d.Revision)
	st, err := attest.NewVSA([]attest.Subject{{Name: p.To, Digest: map[string]string{alg: hexd}}}, attest.VSA{
		Verifier:           attest.VSAVerifier{ID: VSAVerifierID},
		TimeVerified:       d.Time,
		ResourceURI:        "oci://" + p.To + "@" + p.Subject.String(),
		Policy:             attest.ResourceRef{URI: "portcullis:policy-set/" + d.PolicySet, Digest: map[string]string{revAlg: revHex}},
		InputAttestations:  inputs,
		VerificationResult: attest.VSAPassed,
		VerifiedLevels:     []string{"PORTCULLIS_POLICY_" + d.PolicySet},
	})
	if err != nil {
		return err
	}
	if st, err = withVSAEvidence(st, vsaEvidence{TrustRevision: g.o.Verifier.Revision(), Fingerprint: fp, Evidence: verified}); err != nil {
		return err
	}
	b, err := g.vsa.bundle(st)
	if err != nil {
		return err
	}
	subj, err := g.o.Store.Source().Manifest(ctx, p.To, p.Subject)
	if err != nil {
		return err
	}
	empty := []byte("{}")
	man := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: bundleMediaType,
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: digest.FromBytes(empty), Size: int64(len(empty))},
		Layers:       []ocispec.Descriptor{{MediaType: bundleMediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}},
		Subject:      &ocispec.Descriptor{MediaType: subj.MediaType, Digest: p.Subject, Size: int64(len(subj.Content))},
		Annotations: map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": attest.PredicateVSAV1,
			"org.opencontainers.image.created":  d.Time.UTC().Format("2006-01-02T15:04:05Z"),
		},
	}
	man.SchemaVersion = 2
	raw, err := json.Marshal(man)
	if err != nil {
		return err
	}
	md, err := g.o.Store.PutArtifact(ctx, p.To, ocispec.MediaTypeImageManifest, raw, empty, b)
	if err != nil {
		return err
	}
	g.log.InfoContext(ctx, "gate: verification summary attached", "repository", p.To, "digest", p.Subject, "vsa", md, "revision", d.Revision)
	return nil
}

// withVSAEvidence adds the evidence to the predicate of VSA statement st.
func withVSAEvidence(st []byte, ev vsaEvidence) ([]byte, error) {
	var stmt attest.Statement
	if err := json.Unmarshal(st, &stmt); err != nil {
		return nil, err
	}
	var pred map[string]json.RawMessage
	if err := json.Unmarshal(stmt.Predicate, &pred); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(&ev)
	if err != nil {
		return nil, fmt.Errorf("vsa evidence: %w", err)
	}
	pred[vsaExtension] = raw
	if stmt.Predicate, err = json.Marshal(pred); err != nil {
		return nil, err
	}
	return json.Marshal(&stmt)
}

func cutDigest(d string) (alg, hexv string, ok bool) {
	alg, hexv, ok = strings.Cut(d, ":")
	if _, err := hex.DecodeString(hexv); err != nil {
		return alg, hexv, false
	}
	return alg, hexv, ok
}

package verifier

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// authority is an Authority compiled once into the verifiers every check
// needs, so that collecting evidence costs no set-up per signature.
type authority struct {
	name    string
	keys    []*keyCheck
	keyless *keylessCheck
}

type keyCheck struct {
	id     string // hex SHA-256 of the PKIX DER
	sv     signature.Verifier
	bundle *verify.Verifier
}

type keylessCheck struct {
	identities []cosign.Identity
	policy     []verify.PolicyOption
	trusted    root.TrustedMaterial
	requireSCT bool
	// Bundles are checked at the time their own evidence proves: the
	// transparency log's, a timestamp authority's, or, with neither, now
	// (so an expired certificate without a timestamp fails).
	withTlog, withTimestamp, withNow *verify.Verifier
}

func newAuthority(a Authority) (*authority, error) {
	if a.Name == "" {
		return nil, errors.New("an authority needs a name")
	}
	if len(a.Keys) == 0 && a.Keyless == nil {
		return nil, errors.New("no keys and no keyless identities")
	}
	au := &authority{name: a.Name}
	for i, k := range a.Keys {
		kc, err := newKeyCheck(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		au.keys = append(au.keys, kc)
	}
	if a.Keyless != nil {
		kl, err := newKeylessCheck(a.Keyless)
		if err != nil {
			return nil, fmt.Errorf("keyless: %w", err)
		}
		au.keyless = kl
	}
	return au, nil
}

// KeyID returns the key id Portcullis reports for pub: the hex SHA-256 of
// its PKIX DER encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

func newKeyCheck(pub crypto.PublicKey) (*keyCheck, error) {
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	sv, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	// The bundle's key hint is not trusted to pick the key: this key is
	// tried whatever the hint says, and the signature decides.
	km := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	bv, err := verify.NewVerifier(km, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, err
	}
	return &keyCheck{id: id, sv: sv, bundle: bv}, nil
}

func newKeylessCheck(k *Keyless) (*keylessCheck, error) {
	if k.TrustedRoot == nil {
		return nil, errors.New("no trusted root")
	}
	if len(k.TrustedRoot.FulcioCertificateAuthorities()) == 0 {
		return nil, errors.New("the trusted root has no certificate authority")
	}
	if len(k.Identities) == 0 {
		return nil, errors.New("no identities: name at least one certificate subject and issuer")
	}
	kl := &keylessCheck{trusted: k.TrustedRoot, requireSCT: k.RequireSCT}
	for i, id := range k.Identities {
		if err := id.validate(); err != nil {
			return nil, fmt.Errorf("identity %d: %w", i, err)
		}
		kl.identities = append(kl.identities, cosign.Identity{
			Subject: id.Subject, SubjectRegExp: id.SubjectRegExp, Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp})
		sid, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegExp, id.Subject, id.SubjectRegExp)
		if err != nil {
			return nil, fmt.Errorf("identity %d: %w", i, err)
		}
		kl.policy = append(kl.policy, verify.WithCertificateIdentity(sid))
	}
	var sct []verify.VerifierOption
	if k.RequireSCT {
		sct = append(sct, verify.WithSignedCertificateTimestamps(1))
	}
	var err error
	mk := func(opts ...verify.VerifierOption) *verify.Verifier {
		if err != nil {
			return nil
		}
		var v *verify.Verifier
		v, err = verify.NewVerifier(k.TrustedRoot, append(opts, sct...)...)
		return v
	}
	kl.withTlog = mk(verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	kl.withTimestamp = mk(verify.WithSignedTimestamps(1))
	kl.withNow = mk(verify.WithCurrentTime())
	return kl, err
}

func (id Identity) validate() error {
	for _, re := range []string{id.SubjectRegExp, id.IssuerRegExp} {
		if _, err := regexp.Compile(re); err != nil {
			return err
		}
	}
	switch {
	case id.Subject == "" && id.SubjectRegExp == "":
		return errors.New("no subject (give subject or subjectRegExp)")
	case id.Issuer == "" && id.IssuerRegExp == "":
		return errors.New("no issuer (give issuer or issuerRegExp)")
	}
	return nil
}

// checkCosign verifies a signature or attestation in cosign's layer format
// for digest h. It returns who signed, or why no key or identity of this
// authority verified it.
func (a *authority) checkCosign(ctx context.Context, sig oci.Signature, h v1.Hash, isAttestation bool) (*contract.Signer, error) {
	verifyFn, claims := cosign.VerifyImageSignature, cosign.SimpleClaimVerifier
	if isAttestation {
		verifyFn, claims = cosign.VerifyBlobAttestation, cosign.IntotoSubjectClaimVerifier
	}
	var errs []string
	for _, k := range a.keys {
		co := &cosign.CheckOpts{
			SigVerifier: k.sv,
			// Offline: the signature itself is checked, not a log entry.
			IgnoreTlog: true,
			IgnoreSCT:  true,
			// Binds the signature to this digest: without it a signature
			// copied from another image would pass.
			ClaimVerifier: claims,
		}
		if _, err := verifyFn(ctx, sig, h, co); err != nil {
			errs = append(errs, fmt.Sprintf("key %s: %v", shortID(k.id), err))
			continue
		}
		return &contract.Signer{KeyID: k.id}, nil
	}
	if kl := a.keyless; kl != nil {
		cert, err := sig.Cert()
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("keyless: certificate: %v", err))
		case cert == nil:
			errs = append(errs, "keyless: the signature carries no certificate")
		default:
			rb, _ := sig.Bundle()
			ts, _ := sig.RFC3161Timestamp()
			// cosign must only see a timestamp and a bundle that verify
			// (precheck.go: it panics on some that do not).
			if err := precheckKeyless(sig, rb, ts, kl.trusted); err != nil {
				errs = append(errs, fmt.Sprintf("keyless: %v", err))
				break
			}
			co := &cosign.CheckOpts{
				TrustedMaterial:     kl.trusted,
				Identities:          kl.identities,
				IgnoreSCT:           !kl.requireSCT,
				IgnoreTlog:          rb == nil, // a Rekor bundle is checked offline against the root's logs
				UseSignedTimestamps: ts != nil,
				ClaimVerifier:       claims,
			}
			if _, err := verifyFn(ctx, sig, h, co); err != nil {
				errs = append(errs, fmt.Sprintf("keyless: %v", err))
				break
			}
			return certSigner(cert), nil
		}
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

// checkBundle verifies a Sigstore bundle for the artifact digest (algorithm
// and raw bytes). It returns who signed, or why nothing verified it.
func (a *authority) checkBundle(b *bundle.Bundle, alg string, raw []byte) (*contract.Signer, error) {
	artifact := verify.WithArtifactDigest(alg, raw)
	var errs []string
	if len(a.keys) > 0 {
		if vc, err := b.VerificationContent(); err == nil && vc.PublicKey() != nil {
			hinted := hintKeyID(vc.PublicKey().Hint())
			for _, k := range a.keys {
				// A bundle names its key by hint (cosign writes the key's
				// SHA-256): a key it does not name is not tried, so the
				// cost of N signatures stays N verifications, whatever
				// the number of keys. Without a hint every key is tried.
				if hinted != "" && hinted != k.id {
					errs = append(errs, fmt.Sprintf("key %s: the bundle is signed by key %s", shortID(k.id), shortID(hinted)))
					continue
				}
				if _, err := k.bundle.Verify(b, verify.NewPolicy(artifact, verify.WithKey())); err != nil {
					errs = append(errs, fmt.Sprintf("key %s: %v", shortID(k.id), err))
					continue
				}
				return &contract.Signer{KeyID: k.id}, nil
			}
		} else {
			errs = append(errs, "keys: the bundle is signed with a certificate, not a key")
		}
	}
	if kl := a.keyless; kl != nil {
		v := kl.withNow
		if tl, _ := b.TlogEntries(); len(tl) > 0 {
			v = kl.withTlog
		} else if ts, _ := b.Timestamps(); len(ts) > 0 {
			v = kl.withTimestamp
		}
		res, err := v.Verify(b, verify.NewPolicy(artifact, kl.policy...))
		if err != nil {
			errs = append(errs, fmt.Sprintf("keyless: %v%s", err, validityHint(b, v == kl.withNow)))
		} else if res.Signature == nil || res.Signature.Certificate == nil {
			errs = append(errs, "keyless: the bundle is not signed with a certificate")
		} else {
			return summarySigner(*res.Signature.Certificate), nil
		}
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

// validityHint explains a certificate failure the library words vaguely:
// outside its validity window, with no trusted timestamp to prove the
// signature was made inside it.
func validityHint(b *bundle.Bundle, checkedNow bool) string {
	vc, err := b.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return ""
	}
	c, now := vc.Certificate(), time.Now()
	switch {
	case checkedNow && now.After(c.NotAfter):
		return fmt.Sprintf(" (the certificate expired at %s and the bundle has no trusted timestamp from before then)", c.NotAfter.UTC().Format(time.RFC3339))
	case checkedNow && now.Before(c.NotBefore):
		return fmt.Sprintf(" (the certificate is not valid before %s)", c.NotBefore.UTC().Format(time.RFC3339))
	case !checkedNow:
		return fmt.Sprintf(" (the certificate is valid from %s to %s)", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// hintKeyID turns a bundle's key hint (base64 of the key's SHA-256, as
// cosign writes it) into a key id; any other hint gives "".
func hintKeyID(hint string) string {
	b, err := base64.StdEncoding.DecodeString(hint)
	if err != nil || len(b) != sha256.Size {
		return ""
	}
	return hex.EncodeToString(b)
}

func certSigner(cert *x509.Certificate) *contract.Signer {
	s, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return &contract.Signer{}
	}
	return summarySigner(s)
}

func summarySigner(s certificate.Summary) *contract.Signer {
	return &contract.Signer{Subject: s.SubjectAlternativeName, Issuer: s.Issuer}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

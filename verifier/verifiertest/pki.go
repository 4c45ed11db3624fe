package verifiertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// PKI is a small hand-made Fulcio-like CA and timestamp authority, for
// what the fake Sigstore cannot do: certificates valid in the past, and
// timestamps at a chosen time.
type PKI struct {
	caRoot, caInter  *x509.Certificate
	caInterKey       *ecdsa.PrivateKey
	tsaRoot, tsaLeaf *x509.Certificate
	tsaLeafKey       *ecdsa.PrivateKey
}

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidEKU      = asn1.ObjectIdentifier{2, 5, 29, 37}
)

func makeCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var serial atomic.Int64

func caTemplate(cn string, from, to time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
}

func NewPKI(t testing.TB) *PKI {
	t.Helper()
	now := time.Now()
	p := &PKI{}
	rootKey, interKey := NewKey(t), NewKey(t)
	rt := caTemplate("test-fulcio-root", now.Add(-48*time.Hour), now.Add(48*time.Hour))
	p.caRoot = makeCert(t, rt, rt, rootKey.Public(), rootKey)
	p.caInter = makeCert(t, caTemplate("test-fulcio-intermediate", now.Add(-47*time.Hour), now.Add(47*time.Hour)), p.caRoot, interKey.Public(), rootKey)
	p.caInterKey = interKey

	tsaRootKey, tsaKey := NewKey(t), NewKey(t)
	tr := caTemplate("test-tsa-root", now.Add(-48*time.Hour), now.Add(48*time.Hour))
	p.tsaRoot = makeCert(t, tr, tr, tsaRootKey.Public(), tsaRootKey)
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	leaf := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "test-tsa"},
		NotBefore: now.Add(-47 * time.Hour), NotAfter: now.Add(47 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidEKU, Critical: true, Value: eku}}}
	p.tsaLeaf = makeCert(t, leaf, p.tsaRoot, tsaKey.Public(), tsaRootKey)
	p.tsaLeafKey = tsaKey
	return p
}

// Leaf issues a Fulcio-like certificate for an e-mail identity and OIDC
// issuer, valid from notBefore to notAfter.
func (p *PKI) Leaf(t testing.TB, email, issuer string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := NewKey(t)
	v2, _ := asn1.Marshal(issuer)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), NotBefore: notBefore, NotAfter: notAfter,
		EmailAddresses: []string{email}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV1, Value: []byte(issuer)}, {Id: oidIssuerV2, Value: v2}}}
	return makeCert(t, tmpl, p.caInter, key.Public(), p.caInterKey), key
}

// TimestampAt is an RFC 3161 response stamping sig at time at.
func (p *PKI) TimestampAt(t testing.TB, sig []byte, at time.Time) []byte {
	t.Helper()
	h := sha256.Sum256(sig)
	resp, err := (&timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: h[:], Time: at,
		Policy: asn1.ObjectIdentifier{1, 2, 3, 4}}).CreateResponseWithOpts(p.tsaLeaf, p.tsaLeafKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TrustedRoot is the PKI as a Sigstore trusted root.
func (p *PKI) TrustedRoot(t testing.TB) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: p.caRoot, Intermediates: []*x509.Certificate{p.caInter}, URI: "https://fulcio.test"}},
		nil,
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{Root: p.tsaRoot, Leaf: p.tsaLeaf, URI: "https://tsa.test"}},
		nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

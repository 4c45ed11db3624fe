package verifier_test

import (
	"crypto"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/portcullis-dev/portcullis/verifier"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

const (
	alice  = "alice@example.com"
	issuer = "https://issuer.example"
)

func keylessVerifier(t testing.TB, tr root.TrustedMaterial, ids ...verifier.Identity) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(verifier.Authority{Name: "ci", Keyless: &verifier.Keyless{Identities: ids, TrustedRoot: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKeylessBundles(t *testing.T) {
	vs := vt.NewVirtualSigstore(t)
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, vt.TrustedRootJSON(t, vs), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := verifier.LoadTrustedRoot(path)
	if err != nil {
		t.Fatal(err)
	}
	exact := keylessVerifier(t, tr, verifier.Identity{Subject: alice, Issuer: issuer})
	regexps := keylessVerifier(t, tr, verifier.Identity{SubjectRegExp: `@example\.com$`, IssuerRegExp: `^https://issuer\.example$`})
	const repo = "staging/app"

	tests := []struct {
		name       string
		v          *verifier.Verifier
		bundle     func(d digest.Digest) []byte
		wantReason string // "" = verified
	}{
		{"right identity, with a timestamp", exact, func(d digest.Digest) []byte {
			return vt.KeylessBundle(t, vs, alice, issuer, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), true)
		}, ""},
		{"right identity, no timestamp, certificate still valid", exact, func(d digest.Digest) []byte {
			return vt.KeylessBundle(t, vs, alice, issuer, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), false)
		}, ""},
		{"identity by regular expressions", regexps, func(d digest.Digest) []byte {
			return vt.KeylessBundle(t, vs, alice, issuer, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), true)
		}, ""},
		{"another subject", exact, func(d digest.Digest) []byte {
			return vt.KeylessBundle(t, vs, "mallory@example.com", issuer, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), true)
		}, "no matching CertificateIdentity"},
		{"another issuer", exact, func(d digest.Digest) []byte {
			return vt.KeylessBundle(t, vs, alice, "https://evil.example", vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), true)
		}, `expected issuer value "https://issuer.example"`},
		{"untrusted CA", exact, func(d digest.Digest) []byte {
			return vt.KeylessBundle(t, vt.NewVirtualSigstore(t), alice, issuer, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), false)
		}, "leaf certificate verification failed"},
		{"statement about another digest", exact, func(d digest.Digest) []byte {
			return vt.KeylessBundle(t, vs, alice, issuer, vt.Statement(t, digest.FromString("other"), vt.SLSAv1, vt.ProvenanceV1), true)
		}, "does not match any digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			d := f.PushImage(t, repo, "v1")
			f.PushBundle(t, repo, d, vt.SLSAv1, tt.bundle(d))
			at := oneAttestation(t, f.collectBoth(t, tt.v, repo, d))
			t.Logf("verified=%v reason=%q", at.Verified, at.Reason)
			if tt.wantReason != "" {
				wantRejected(t, at.Verified, at.Reason, tt.wantReason)
				return
			}
			if !at.Verified || at.Signer == nil || at.Signer.Subject != alice || at.Signer.Issuer != issuer {
				t.Fatalf("attestation %+v, want verified as %s from %s", at, alice, issuer)
			}
		})
	}
}

// TestKeylessCertificateTimes: a certificate is only good inside its
// validity window, and only a trusted timestamp can prove the signature
// was made then.
func TestKeylessCertificateTimes(t *testing.T) {
	pki := vt.NewPKI(t)
	v := keylessVerifier(t, pki.TrustedRoot(t), verifier.Identity{Subject: alice, Issuer: issuer})
	now := time.Now()
	expired := [2]time.Time{now.Add(-2 * time.Hour), now.Add(-1 * time.Hour)}
	future := [2]time.Time{now.Add(time.Hour), now.Add(2 * time.Hour)}
	const repo = "staging/app"
	tests := []struct {
		name       string
		validity   [2]time.Time
		stampAt    time.Time // zero: no timestamp
		wantReason string
	}{
		{"expired, no timestamp", expired, time.Time{}, "the certificate expired at"},
		{"expired, timestamped inside its validity", expired, now.Add(-90 * time.Minute), ""},
		{"expired, timestamped after it expired", expired, now.Add(-30 * time.Minute), "leaf certificate verification failed"},
		{"not yet valid, no timestamp", future, time.Time{}, "the certificate is not valid before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			d := f.PushImage(t, repo, "v1")
			cert, key := pki.Leaf(t, alice, issuer, tt.validity[0], tt.validity[1])
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			sig := vt.SignDSSE(t, key, vt.PayloadTypeInToto, st)
			vm := &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_Certificate{
				Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}}}
			if !tt.stampAt.IsZero() {
				vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{
					{SignedTimestamp: pki.TimestampAt(t, sig, tt.stampAt)}}}
			}
			f.PushBundle(t, repo, d, vt.SLSAv1, vt.Bundle(t, vm, vt.PayloadTypeInToto, st, sig))
			at := oneAttestation(t, f.collectBoth(t, v, repo, d))
			t.Logf("verified=%v reason=%q", at.Verified, at.Reason)
			if tt.wantReason != "" {
				wantRejected(t, at.Verified, at.Reason, tt.wantReason)
			} else if !at.Verified {
				t.Fatalf("rejected: %s", at.Reason)
			}
		})
	}
}

// TestKeylessTagScheme: cosign v2's keyless signatures keep the
// certificate and chain in layer annotations.
func TestKeylessTagScheme(t *testing.T) {
	vs := vt.NewVirtualSigstore(t)
	v := keylessVerifier(t, vs, verifier.Identity{Subject: alice, Issuer: issuer})
	var chain []byte
	for _, a := range vs.FulcioCertificateAuthorities() {
		fca := a.(*root.FulcioCertificateAuthority)
		for _, c := range append(fca.Intermediates, fca.Root) {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
	}
	const repo = "staging/app"
	for _, tt := range []struct {
		name, identity, issuer, wantReason string
	}{
		{"right identity", alice, issuer, ""},
		{"another issuer", alice, "https://evil.example", "none of the expected identities matched"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			d := f.PushImage(t, repo, "v1")
			cert, key, err := vs.GenerateLeafCert(tt.identity, tt.issuer)
			if err != nil {
				t.Fatal(err)
			}
			p, sig := f.SignPayload(t, key.(crypto.Signer), repo, d)
			f.PushSignatureLayer(t, repo, d, p, map[string]string{
				"dev.cosignproject.cosign/signature": sig,
				"dev.sigstore.cosign/certificate":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
				"dev.sigstore.cosign/chain":          string(chain),
			})
			ev := f.collectBoth(t, v, repo, d)
			if len(ev.Signatures) != 1 {
				t.Fatalf("%d signatures, want 1", len(ev.Signatures))
			}
			s := ev.Signatures[0]
			t.Logf("verified=%v reason=%q", s.Verified, s.Reason)
			if tt.wantReason != "" {
				wantRejected(t, s.Verified, s.Reason, tt.wantReason)
			} else if !s.Verified || s.Signer.Subject != alice || s.Signer.Issuer != issuer {
				t.Fatalf("signature %+v, want verified as %s", s, alice)
			}
		})
	}
}

// TestTrustedRootFromTUF: the trusted root comes from a TUF mirror the
// operator keeps, over file:// or HTTP, and a tampered target is refused.
func TestTrustedRootFromTUF(t *testing.T) {
	ctx := t.Context()
	vs := vt.NewVirtualSigstore(t)
	dir, rootPath := vt.TUFRepo(t, vt.TrustedRootJSON(t, vs))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for _, mirror := range []string{"file://" + dir, srv.URL} {
		tr, err := verifier.FetchTrustedRoot(ctx, verifier.TUF{Mirror: mirror, Root: rootPath, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: %v", mirror, err)
		}
		// The fetched root verifies what the fake Sigstore signed.
		f := newFixture(t)
		d := f.PushImage(t, "app", "v1")
		f.PushBundle(t, "app", d, vt.SLSAv1, vt.KeylessBundle(t, vs, alice, issuer, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), true))
		at := oneAttestation(t, f.collectBoth(t, keylessVerifier(t, tr, verifier.Identity{Subject: alice, Issuer: issuer}), "app", d))
		if !at.Verified {
			t.Fatalf("%s: not verified with the fetched root: %s", mirror, at.Reason)
		}
	}

	// Tamper with the target: the hash in the signed targets metadata no
	// longer matches.
	matches, _ := filepath.Glob(filepath.Join(dir, "targets", "*.trusted_root.json"))
	if err := os.WriteFile(matches[0], []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.FetchTrustedRoot(ctx, verifier.TUF{Mirror: "file://" + dir, Root: rootPath}); err == nil {
		t.Fatal("a tampered trusted_root.json was accepted")
	} else {
		t.Logf("tampered: %v", err)
	}
	// Another repository's root does not vouch for this one.
	_, otherRoot := vt.TUFRepo(t, vt.TrustedRootJSON(t, vs))
	if _, err := verifier.FetchTrustedRoot(ctx, verifier.TUF{Mirror: srv.URL, Root: otherRoot}); err == nil {
		t.Fatal("metadata signed by keys the pinned root does not list was accepted")
	}
}

func TestNewRejectsUnsafeKeyless(t *testing.T) {
	vs := vt.NewVirtualSigstore(t)
	for name, k := range map[string]*verifier.Keyless{
		"no identities": {TrustedRoot: vs},
		"no issuer":     {TrustedRoot: vs, Identities: []verifier.Identity{{Subject: alice}}},
		"no subject":    {TrustedRoot: vs, Identities: []verifier.Identity{{Issuer: issuer}}},
		"bad regexp":    {TrustedRoot: vs, Identities: []verifier.Identity{{SubjectRegExp: "(", Issuer: issuer}}},
		"no root":       {Identities: []verifier.Identity{{Subject: alice, Issuer: issuer}}},
	} {
		if _, err := verifier.New(verifier.Authority{Name: "ci", Keyless: k}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

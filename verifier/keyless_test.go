package verifier_test

import (
	"crypto"
	"crypto/ed25519"
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
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/portcullis-dev/portcullis/verifier"
)

const (
	alice  = "alice@example.com"
	issuer = "https://issuer.example"
)

func newVirtualSigstore(t testing.TB) *ca.VirtualSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// trustedRootJSON serialises the fake Sigstore's trusted root, as an
// operator would ship it in trusted_root.json.
func trustedRootJSON(t testing.TB, vs *ca.VirtualSigstore) []byte {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keylessVerifier(t testing.TB, tr root.TrustedMaterial, ids ...verifier.Identity) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(verifier.Authority{Name: "ci", Keyless: &verifier.Keyless{Identities: ids, TrustedRoot: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKeylessBundles(t *testing.T) {
	vs := newVirtualSigstore(t)
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, trustedRootJSON(t, vs), 0o644); err != nil {
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
			return keylessBundle(t, vs, alice, issuer, statementFor(t, d, slsaV1, provenanceV1), true)
		}, ""},
		{"right identity, no timestamp, certificate still valid", exact, func(d digest.Digest) []byte {
			return keylessBundle(t, vs, alice, issuer, statementFor(t, d, slsaV1, provenanceV1), false)
		}, ""},
		{"identity by regular expressions", regexps, func(d digest.Digest) []byte {
			return keylessBundle(t, vs, alice, issuer, statementFor(t, d, slsaV1, provenanceV1), true)
		}, ""},
		{"another subject", exact, func(d digest.Digest) []byte {
			return keylessBundle(t, vs, "mallory@example.com", issuer, statementFor(t, d, slsaV1, provenanceV1), true)
		}, "no matching CertificateIdentity"},
		{"another issuer", exact, func(d digest.Digest) []byte {
			return keylessBundle(t, vs, alice, "https://evil.example", statementFor(t, d, slsaV1, provenanceV1), true)
		}, `expected issuer value "https://issuer.example"`},
		{"untrusted CA", exact, func(d digest.Digest) []byte {
			return keylessBundle(t, newVirtualSigstore(t), alice, issuer, statementFor(t, d, slsaV1, provenanceV1), false)
		}, "leaf certificate verification failed"},
		{"statement about another digest", exact, func(d digest.Digest) []byte {
			return keylessBundle(t, vs, alice, issuer, statementFor(t, digest.FromString("other"), slsaV1, provenanceV1), true)
		}, "does not match any digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			d := f.pushImage(t, repo, "v1")
			f.pushBundle(t, repo, d, slsaV1, tt.bundle(d))
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
	pki := newTestPKI(t)
	v := keylessVerifier(t, pki.trustedRoot(t), verifier.Identity{Subject: alice, Issuer: issuer})
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
			d := f.pushImage(t, repo, "v1")
			cert, key := pki.leaf(t, alice, issuer, tt.validity[0], tt.validity[1])
			st := statementFor(t, d, slsaV1, provenanceV1)
			sig := signDSSE(t, key, payloadTypeInToto, st)
			vm := &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_Certificate{
				Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}}}
			if !tt.stampAt.IsZero() {
				vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{
					{SignedTimestamp: pki.timestampAt(t, sig, tt.stampAt)}}}
			}
			f.pushBundle(t, repo, d, slsaV1, bundleJSON(t, vm, payloadTypeInToto, st, sig))
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
	vs := newVirtualSigstore(t)
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
			d := f.pushImage(t, repo, "v1")
			cert, key, err := vs.GenerateLeafCert(tt.identity, tt.issuer)
			if err != nil {
				t.Fatal(err)
			}
			p, sig := f.signPayload(t, key.(crypto.Signer), repo, d)
			f.pushSignatureLayer(t, repo, d, p, map[string]string{
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

// tufRepo writes a signed TUF repository serving trustedRoot as
// trusted_root.json, and returns its directory and initial root.json.
func tufRepo(t testing.TB, trustedRoot []byte) (dir, rootPath string) {
	t.Helper()
	dir = t.TempDir()
	exp := time.Now().AddDate(0, 0, 30)
	rootMd, targetsMd := metadata.Root(exp), metadata.Targets(exp)
	snapshotMd, timestampMd := metadata.Snapshot(exp), metadata.Timestamp(exp)
	tf, err := metadata.TargetFile().FromBytes("trusted_root.json", trustedRoot, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	targetsMd.Signed.Targets["trusted_root.json"] = tf
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "targets", tf.Hashes["sha256"].String()+".trusted_root.json"), trustedRoot, 0o644); err != nil {
		t.Fatal(err)
	}
	signers := map[string]signature.Signer{}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		k, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := rootMd.Signed.AddKey(k, role); err != nil {
			t.Fatal(err)
		}
		if signers[role], err = signature.LoadSigner(priv, crypto.Hash(0)); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []func() error{
		func() error { _, err := targetsMd.Sign(signers[metadata.TARGETS]); return err },
		func() error { _, err := snapshotMd.Sign(signers[metadata.SNAPSHOT]); return err },
		func() error { _, err := timestampMd.Sign(signers[metadata.TIMESTAMP]); return err },
		func() error { _, err := rootMd.Sign(signers[metadata.ROOT]); return err },
		func() error { return rootMd.ToFile(filepath.Join(dir, "1.root.json"), true) },
		func() error { return targetsMd.ToFile(filepath.Join(dir, "1.targets.json"), true) },
		func() error { return snapshotMd.ToFile(filepath.Join(dir, "1.snapshot.json"), true) },
		func() error { return timestampMd.ToFile(filepath.Join(dir, "timestamp.json"), true) },
		func() error { return rootMd.ToFile(filepath.Join(t.TempDir(), "root.json"), true) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	rootPath = filepath.Join(t.TempDir(), "root.json")
	if err := rootMd.ToFile(rootPath, true); err != nil {
		t.Fatal(err)
	}
	return dir, rootPath
}

// TestTrustedRootFromTUF: the trusted root comes from a TUF mirror the
// operator keeps, over file:// or HTTP, and a tampered target is refused.
func TestTrustedRootFromTUF(t *testing.T) {
	ctx := t.Context()
	vs := newVirtualSigstore(t)
	dir, rootPath := tufRepo(t, trustedRootJSON(t, vs))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for _, mirror := range []string{"file://" + dir, srv.URL} {
		tr, err := verifier.FetchTrustedRoot(ctx, verifier.TUF{Mirror: mirror, Root: rootPath, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: %v", mirror, err)
		}
		// The fetched root verifies what the fake Sigstore signed.
		f := newFixture(t)
		d := f.pushImage(t, "app", "v1")
		f.pushBundle(t, "app", d, slsaV1, keylessBundle(t, vs, alice, issuer, statementFor(t, d, slsaV1, provenanceV1), true))
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
	_, otherRoot := tufRepo(t, trustedRootJSON(t, vs))
	if _, err := verifier.FetchTrustedRoot(ctx, verifier.TUF{Mirror: srv.URL, Root: otherRoot}); err == nil {
		t.Fatal("metadata signed by keys the pinned root does not list was accepted")
	}
}

func TestNewRejectsUnsafeKeyless(t *testing.T) {
	vs := newVirtualSigstore(t)
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

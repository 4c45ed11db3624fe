package verifier_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// Annotations of cosign's tag-scheme layers.
const (
	annSignature = "dev.cosignproject.cosign/signature"
	annCert      = "dev.sigstore.cosign/certificate"
	annBundle    = "dev.sigstore.cosign/bundle"
	annTimestamp = "dev.sigstore.cosign/rfc3161timestamp"
)

func timestampAnnotation(t testing.TB, resp []byte) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"SignedRFC3161Timestamp": resp})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTagSchemeCraftedKeyless is finding 3 of the soundness issue: a
// tag-scheme signature with a certificate and an RFC 3161 timestamp that
// does not verify made cosign's timestamp check index an empty slice while
// a keyless authority was configured. Crafted layers like it are rejected
// signatures with a reason: never a panic, never verified.
func TestTagSchemeCraftedKeyless(t *testing.T) {
	pki, other := vt.NewPKI(t), vt.NewPKI(t)
	keyless := verifier.Authority{Name: "ci", Keyless: &verifier.Keyless{
		Identities: []verifier.Identity{{Subject: alice, Issuer: issuer}}, TrustedRoot: pki.TrustedRoot(t)}}
	// A key authority before the keyless one: cosign is called for both.
	withKey := verifier.Authority{Name: "release", Keys: []crypto.PublicKey{vt.NewKey(t).Public()}}
	v, err := verifier.New(withKey, keyless)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	valid := [2]time.Time{now.Add(-time.Hour), now.Add(time.Hour)}
	expired := [2]time.Time{now.Add(-2 * time.Hour), now.Add(-time.Hour)}
	const repo = "staging/app"
	type layer struct {
		cert, timestamp, bundle string
	}
	tests := []struct {
		name     string
		validity [2]time.Time
		// annotations gets the raw signature and returns what else the
		// layer carries.
		annotations func(sig []byte) layer
		wantReason  string // "" = verified
	}{
		{"timestamp from the trusted TSA", expired, func(sig []byte) layer {
			return layer{timestamp: timestampAnnotation(t, pki.TimestampAt(t, sig, now.Add(-90*time.Minute)))}
		}, ""},
		{"timestamp from another TSA", valid, func(sig []byte) layer {
			return layer{timestamp: timestampAnnotation(t, other.TimestampAt(t, sig, now))}
		}, "RFC 3161 timestamp"},
		{"timestamp over other bytes", valid, func(sig []byte) layer {
			return layer{timestamp: timestampAnnotation(t, pki.TimestampAt(t, []byte("something else"), now))}
		}, "RFC 3161 timestamp"},
		{"timestamp that is not DER", valid, func([]byte) layer {
			return layer{timestamp: timestampAnnotation(t, []byte("not a timestamp"))}
		}, "RFC 3161 timestamp"},
		{"empty timestamp", valid, func([]byte) layer {
			return layer{timestamp: `{"SignedRFC3161Timestamp":null}`}
		}, "RFC 3161 timestamp"},
		{"rekor bundle with a null body", valid, func([]byte) layer {
			return layer{bundle: `{"SignedEntryTimestamp":null,"Payload":{"body":null,"integratedTime":0,"logIndex":0,"logID":""}}`}
		}, "rekor bundle"},
		{"rekor bundle with a numeric body", valid, func([]byte) layer {
			return layer{bundle: `{"SignedEntryTimestamp":"AAAA","Payload":{"body":42,"integratedTime":1,"logIndex":1,"logID":"00"}}`}
		}, "rekor bundle"},
		{"rekor bundle with a body that is not an entry", valid, func([]byte) layer {
			return layer{bundle: `{"SignedEntryTimestamp":"AAAA","Payload":{"body":"` + base64.StdEncoding.EncodeToString([]byte(`{}`)) + `","integratedTime":1,"logIndex":1,"logID":"00"}}`}
		}, "keyless"},
		{"both a bad timestamp and a bad bundle", valid, func([]byte) layer {
			return layer{timestamp: timestampAnnotation(t, []byte{0x30, 0x00}), bundle: `{"Payload":{"body":{}}}`}
		}, "RFC 3161 timestamp"},
		{"rekor bundle from a log the root does not list", valid, func([]byte) layer {
			body := base64.StdEncoding.EncodeToString([]byte(`{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"` + strings.Repeat("ab", 32) + `"}},"signature":{"content":"AAAA","publicKey":{"content":"AAAA"}}}}`))
			return layer{bundle: `{"SignedEntryTimestamp":"AAAA","Payload":{"body":"` + body + `","integratedTime":1,"logIndex":1,"logID":"` + strings.Repeat("00", 32) + `"}}`}
		}, "rekor bundle: body: invalid public key"},
		{"certificate that is not PEM", valid, func(sig []byte) layer {
			return layer{cert: "not a certificate", timestamp: timestampAnnotation(t, pki.TimestampAt(t, sig, now))}
		}, "keyless: certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			d := f.PushImage(t, repo, "v1")
			cert, key := pki.Leaf(t, alice, issuer, tt.validity[0], tt.validity[1])
			p, b64 := f.SignPayload(t, key, repo, d)
			sig, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			l := tt.annotations(sig)
			ann := map[string]string{annSignature: b64, annCert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))}
			if l.cert != "" {
				ann[annCert] = l.cert
			}
			if l.timestamp != "" {
				ann[annTimestamp] = l.timestamp
			}
			if l.bundle != "" {
				ann[annBundle] = l.bundle
			}
			f.PushSignatureLayer(t, repo, d, p, ann)
			ev := f.collectBoth(t, v, repo, d)
			if len(ev.Signatures) != 1 {
				t.Fatalf("%d signatures, want 1", len(ev.Signatures))
			}
			s := ev.Signatures[0]
			t.Logf("verified=%v reason=%q", s.Verified, s.Reason)
			if tt.wantReason != "" {
				wantRejected(t, s.Verified, s.Reason, tt.wantReason)
			} else if !s.Verified || s.Signer == nil || s.Signer.Subject != alice {
				t.Fatalf("signature %+v, want verified as %s", s, alice)
			}
		})
	}
}

// panickingSource panics in one of its methods, as a bug anywhere under
// Collect would.
type panickingSource struct {
	source.Source
	method string
}

func (s panickingSource) Blob(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	if s.method == "Blob" {
		var m map[string]int
		m["boom"]++
	}
	return s.Source.Blob(ctx, repo, d)
}

func (s panickingSource) Referrers(ctx context.Context, repo string, d digest.Digest) ([]ocispec.Descriptor, error) {
	if s.method == "Referrers" {
		panic("referrers exploded")
	}
	return s.Source.Referrers(ctx, repo, d)
}

// TestCollectRecoversPanics: a panic under Collect is an error (which the
// gate denies, I3), never a crash and never evidence.
func TestCollectRecoversPanics(t *testing.T) {
	f := newFixture(t)
	key := vt.NewKey(t)
	d := f.PushImage(t, "app", "v1")
	p, sig := f.SignPayload(t, key, "app", d)
	f.PushSignature(t, "app", d, p, sig)
	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"Blob", "Referrers"} {
		ev, err := v.Collect(t.Context(), panickingSource{Source: f.reg.Store().Source(), method: method}, verifier.Subject{Repository: "app", Digest: d})
		var pe *panics.Error
		if ev != nil || !errors.As(err, &pe) || pe.Where != "verifier.Collect" {
			t.Fatalf("%s panics: Collect = %v, %v; want no evidence and a recovered panic", method, ev, err)
		}
		t.Logf("%s: %v", method, err)
	}
}

package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

func TestParseEnvelope(t *testing.T) {
	statement := readFixture(t, "statement-slsa-v1.json")
	b64 := base64.StdEncoding.EncodeToString
	env := func(payloadType, payload string, sigs ...Signature) []byte {
		b, err := json.Marshal(map[string]any{"payloadType": payloadType, "payload": payload, "signatures": sigs})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sig := Signature{KeyID: "k1", Sig: b64([]byte("signature bytes"))}
	// 0xfb 0xff encodes to "+/8=" in standard base64 and "-_8=" in URL-safe.
	binary := []byte{0xfb, 0xff}

	tests := []struct {
		name        string
		in          []byte
		wantPayload []byte
		wantErr     string
	}{
		{name: "fixture", in: readFixture(t, "envelope-slsa-v1.json"), wantPayload: statement},
		{name: "url-safe base64", in: env(PayloadTypeInToto, base64.URLEncoding.EncodeToString(binary), sig), wantPayload: binary},
		{name: "keyless signature without keyid", in: env(PayloadTypeInToto, b64(statement), Signature{Sig: sig.Sig}), wantPayload: statement},
		{name: "other payload type is decoded too", in: env("application/vnd.cncf.notary.payload.v1+json", b64([]byte("{}")), sig), wantPayload: []byte("{}")},
		{name: "bad JSON", in: []byte(`{"payloadType": `), wantErr: "unexpected end of JSON input"},
		{name: "not an object", in: []byte(`[]`), wantErr: "cannot unmarshal array"},
		{name: "null", in: []byte(`null`), wantErr: "payloadType is missing"},
		{name: "trailing data", in: append(env(PayloadTypeInToto, b64(statement), sig), []byte(` {}`)...), wantErr: "invalid character"},
		{name: "payload of wrong type", in: []byte(`{"payloadType":"x","payload":42,"signatures":[{"sig":"AA=="}]}`), wantErr: "cannot unmarshal number"},
		{name: "signatures of wrong type", in: []byte(`{"payloadType":"x","payload":"e30=","signatures":{"sig":"AA=="}}`), wantErr: "cannot unmarshal object"},
		{name: "missing payloadType", in: env("", b64(statement), sig), wantErr: "payloadType is missing"},
		{name: "missing payload", in: env(PayloadTypeInToto, "", sig), wantErr: "payload is missing"},
		{name: "payload of line breaks only", in: env(PayloadTypeInToto, "\r\n", sig), wantErr: "payload is empty"},
		{name: "bad base64 payload", in: env(PayloadTypeInToto, "not base64!", sig), wantErr: "payload: invalid base64"},
		{name: "unpadded base64 payload", in: env(PayloadTypeInToto, "e30", sig), wantErr: "payload: invalid base64"},
		{name: "no signatures", in: env(PayloadTypeInToto, b64(statement)), wantErr: "no signatures"},
		{name: "signatures missing", in: []byte(`{"payloadType":"x","payload":"e30="}`), wantErr: "no signatures"},
		{name: "empty sig", in: env(PayloadTypeInToto, b64(statement), sig, Signature{KeyID: "k2"}), wantErr: "signatures[1]: sig is missing"},
		{name: "sig of line breaks only", in: env(PayloadTypeInToto, b64(statement), Signature{Sig: "\n"}), wantErr: "signatures[0]: sig is empty"},
		{name: "bad base64 sig", in: env(PayloadTypeInToto, b64(statement), Signature{Sig: "%%%"}), wantErr: "signatures[0]: sig: invalid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvelope(tt.in)
			if !wantErr(t, err, tt.wantErr) {
				return
			}
			if !bytes.Equal(got.Payload, tt.wantPayload) {
				t.Fatalf("payload = %q, want %q", got.Payload, tt.wantPayload)
			}
		})
	}
}

func TestEnvelopeStatement(t *testing.T) {
	e, err := ParseEnvelope(readFixture(t, "envelope-slsa-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !e.IsInToto() {
		t.Fatalf("IsInToto() = false for payload type %q", e.PayloadType)
	}
	st, err := e.Statement()
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != PredicateSLSAProvenanceV1 || !st.HasSubjectDigest(imageDigest) {
		t.Fatalf("statement = %+v", st)
	}

	e.PayloadType = "application/json"
	if e.IsInToto() {
		t.Fatal("IsInToto() = true for application/json")
	}
	if _, err := e.Statement(); err == nil {
		t.Fatal("Statement() accepted a payload that is not declared in-toto")
	}
}

// TestEnvelopeRoundTrip checks that an Envelope marshals back to a DSSE
// envelope, and that DSSE() works with go-securesystemslib's signer and
// verifier.
func TestEnvelopeRoundTrip(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv := &ed25519SignerVerifier{pub: pub, priv: priv}
	signer, err := dsse.NewEnvelopeSigner(sv)
	if err != nil {
		t.Fatal(err)
	}
	payload := readFixture(t, "statement-slsa-v0.2.json")
	signed, err := signer.SignPayload(context.Background(), PayloadTypeInToto, payload)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}

	e, err := ParseEnvelope(wire)
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := ParseEnvelope(again)
	if err != nil {
		t.Fatalf("re-parsing a marshalled Envelope: %v", err)
	}
	mustEqual(t, e2, e)

	verifier, err := dsse.NewEnvelopeVerifier(sv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(context.Background(), e.DSSE()); err != nil {
		t.Fatalf("verifying DSSE(): %v", err)
	}
	e.Payload = append(bytes.Clone(e.Payload), ' ')
	if _, err := verifier.Verify(context.Background(), e.DSSE()); err == nil {
		t.Fatal("a modified payload verified")
	}
}

type ed25519SignerVerifier struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func (s *ed25519SignerVerifier) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, data), nil
}

func (s *ed25519SignerVerifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(s.pub, data, sig) {
		return errBadSignature
	}
	return nil
}

func (s *ed25519SignerVerifier) KeyID() (string, error)   { return "test-ed25519", nil }
func (s *ed25519SignerVerifier) Public() crypto.PublicKey { return s.pub }

var errBadSignature = errors.New("ed25519: bad signature")

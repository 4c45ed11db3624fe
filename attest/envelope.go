package attest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// PayloadTypeInToto is the DSSE payload type of an in-toto Statement.
const PayloadTypeInToto = "application/vnd.in-toto+json"

// Signature is one DSSE signature: the key id (may be empty, as in keyless
// signing) and the base64-encoded signature bytes.
type Signature = dsse.Signature

// Envelope is a decoded DSSE envelope. Payload holds the decoded bytes; the
// signatures are left encoded for the verifier. Marshalling an Envelope to
// JSON gives back a valid DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// parseEnvelope is ParseEnvelope without its guard.
func parseEnvelope(b []byte) (*Envelope, error) {
	var raw dsse.Envelope
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("attest: dsse envelope: %w", err)
	}
	if raw.PayloadType == "" {
		return nil, errors.New("attest: dsse envelope: payloadType is missing")
	}
	if raw.Payload == "" {
		return nil, errors.New("attest: dsse envelope: payload is missing")
	}
	payload, err := decodeBase64(raw.Payload)
	if err != nil {
		return nil, fmt.Errorf("attest: dsse envelope: payload: %w", err)
	}
	if len(payload) == 0 {
		return nil, errors.New("attest: dsse envelope: payload is empty")
	}
	if len(raw.Signatures) == 0 {
		return nil, errors.New("attest: dsse envelope: no signatures")
	}
	for i, s := range raw.Signatures {
		if s.Sig == "" {
			return nil, fmt.Errorf("attest: dsse envelope: signatures[%d]: sig is missing", i)
		}
		sig, err := decodeBase64(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("attest: dsse envelope: signatures[%d]: sig: %w", i, err)
		}
		if len(sig) == 0 {
			return nil, fmt.Errorf("attest: dsse envelope: signatures[%d]: sig is empty", i)
		}
	}
	return &Envelope{PayloadType: raw.PayloadType, Payload: payload, Signatures: raw.Signatures}, nil
}

// IsInToto reports whether the envelope declares an in-toto Statement payload.
func (e *Envelope) IsInToto() bool { return e.PayloadType == PayloadTypeInToto }

// Statement parses the payload as an in-toto Statement. It fails if the
// envelope's payload type is not [PayloadTypeInToto]: the payload type is
// part of what is signed, so a payload must not be read as something its
// signer did not declare.
func (e *Envelope) Statement() (*Statement, error) {
	if !e.IsInToto() {
		return nil, fmt.Errorf("attest: dsse payload type is %q, want %q", e.PayloadType, PayloadTypeInToto)
	}
	return ParseStatement(e.Payload)
}

// DSSE returns the envelope in go-securesystemslib's form, as its
// dsse.EnvelopeVerifier expects.
func (e *Envelope) DSSE() *dsse.Envelope {
	return &dsse.Envelope{
		PayloadType: e.PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(e.Payload),
		Signatures:  append([]Signature(nil), e.Signatures...),
	}
}

// decodeBase64 accepts standard and URL-safe base64, both padded, like
// go-securesystemslib, and reports where the encoding is bad.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err == nil {
		return b, nil
	}
	if b, err2 := base64.URLEncoding.DecodeString(s); err2 == nil {
		return b, nil
	}
	return nil, fmt.Errorf("invalid base64: %w", err)
}

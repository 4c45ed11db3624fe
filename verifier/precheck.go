package verifier

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// The cosign v2 library trusts the shape of a layer's timestamp and Rekor
// bundle before it has verified them: VerifyRFC3161Timestamp takes the
// first verified timestamp without checking that there is one (finding 3
// of the soundness issue: a timestamp that fails to verify is an index out
// of range), and VerifyBundle type-asserts and parses the bundle's body
// before it checks the log's signature over it. So both are verified here
// first, with sigstore-go, exactly as cosign then verifies them again:
// cosign only ever sees a timestamp a trusted authority signed and a body a
// trusted log signed.

// precheckKeyless verifies the layer's RFC 3161 timestamp and Rekor bundle,
// if it has them, against the trusted root.
func precheckKeyless(sig oci.Signature, rb *cbundle.RekorBundle, ts *cbundle.RFC3161Timestamp, trusted root.TrustedMaterial) error {
	if ts != nil {
		if err := precheckTimestamp(sig, ts, trusted); err != nil {
			return fmt.Errorf("RFC 3161 timestamp: %w", err)
		}
	}
	if rb != nil {
		if err := precheckRekorBundle(rb, trusted); err != nil {
			return fmt.Errorf("rekor bundle: %w", err)
		}
	}
	return nil
}

// precheckTimestamp verifies ts over what cosign stamps: the raw signature
// or, for an attestation (no signature annotation), the whole envelope.
func precheckTimestamp(sig oci.Signature, ts *cbundle.RFC3161Timestamp, trusted root.TrustedMaterial) error {
	if len(ts.SignedRFC3161Timestamp) == 0 {
		return errors.New("the annotation holds no timestamp")
	}
	if len(trusted.TimestampingAuthorities()) == 0 {
		return errors.New("the trusted root has no timestamp authority")
	}
	b64, err := sig.Base64Signature()
	if err != nil {
		return err
	}
	var stamped []byte
	if b64 == "" {
		if stamped, err = sig.Payload(); err != nil {
			return err
		}
	} else if stamped, err = base64.StdEncoding.DecodeString(b64); err != nil {
		return fmt.Errorf("signature annotation: %w", err)
	}
	_, err = verify.VerifySignedTimestampWithThreshold(&stampedSignature{ts: ts.SignedRFC3161Timestamp, sig: stamped}, trusted, 1)
	return err
}

// stampedSignature is a signature and its timestamp, as sigstore-go's
// timestamp verification reads them.
type stampedSignature struct {
	verify.BaseSignedEntity
	ts, sig []byte
}

func (s *stampedSignature) Timestamps() ([][]byte, error) { return [][]byte{s.ts}, nil }

func (s *stampedSignature) SignatureContent() (verify.SignatureContent, error) {
	return rawSignature(s.sig), nil
}

// rawSignature is signature bytes without an envelope or message.
type rawSignature []byte

func (s rawSignature) Signature() []byte                                       { return s }
func (s rawSignature) EnvelopeContent() verify.EnvelopeContent                 { return nil }
func (s rawSignature) MessageSignatureContent() verify.MessageSignatureContent { return nil }

// precheckRekorBundle verifies the signed entry timestamp of a Rekor bundle
// (the log's promise to include the body) against the trusted root's logs,
// as cosign's VerifyBundle does at its end.
func precheckRekorBundle(rb *cbundle.RekorBundle, trusted root.TrustedMaterial) error {
	b64, ok := rb.Payload.Body.(string)
	if !ok {
		return fmt.Errorf("the body is a %s, not a base64 string", jsonKind(rb.Payload.Body))
	}
	body, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return fmt.Errorf("log id: %w", err)
	}
	if len(rb.SignedEntryTimestamp) == 0 {
		return errors.New("no signed entry timestamp")
	}
	entry, err := tlog.NewEntry(body, rb.Payload.IntegratedTime, rb.Payload.LogIndex, logID, rb.SignedEntryTimestamp, nil)
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if err := tlog.VerifySET(entry, trusted.RekorLogs()); err != nil {
		return fmt.Errorf("signed entry timestamp: %w", err)
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

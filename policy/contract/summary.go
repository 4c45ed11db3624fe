package contract

import (
	"encoding/json"
	"fmt"

	"github.com/portcullis-dev/portcullis/attest"
)

// UnmarshalJSON reads a verified attestation as MarshalJSON writes it, its
// predicate decoded into the type its kind names, so that an [Evidence]
// saved as JSON (the gate's verification summaries carry one) reads back
// as the value policy saw.
func (a *VerifiedAttestation) UnmarshalJSON(b []byte) error {
	type plain VerifiedAttestation
	var v struct {
		plain
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var p attest.Predicate
	switch v.Kind {
	case attest.KindProvenance:
		p = &attest.Provenance{}
	case attest.KindSBOM:
		p = &attest.SBOM{}
	case attest.KindVuln:
		p = &attest.VulnReport{}
	case attest.KindVSA:
		p = &attest.VSA{}
	case attest.KindUnknown:
		p = &attest.Unknown{}
	default:
		return fmt.Errorf("policy: verified attestation of unknown kind %q", v.Kind)
	}
	if len(v.Predicate) > 0 && string(v.Predicate) != "null" {
		if err := json.Unmarshal(v.Predicate, p); err != nil {
			return fmt.Errorf("policy: %s predicate: %w", v.Kind, err)
		}
	}
	*a = VerifiedAttestation(v.plain)
	a.Predicate = p
	return nil
}

package policy

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

// TestVerifiedEvidenceRoundTrip: for every fixture scenario, the verified
// evidence saved as JSON (as the gate's verification summaries carry it),
// read back and completed with the scan by NewInputWithEvidence gives the
// same input value, and so the same decision, as NewInput.
func TestVerifiedEvidenceRoundTrip(t *testing.T) {
	e := libraryEngine(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := allowedFixture()
			sc.change(f)
			in := f.input()
			raw, err := json.Marshal(VerifiedEvidence(f.evidence))
			if err != nil {
				t.Fatal(err)
			}
			var verified contract.Evidence
			if err := json.Unmarshal(raw, &verified); err != nil {
				t.Fatal(err)
			}
			if again, err := json.Marshal(verified); err != nil || !bytes.Equal(raw, again) {
				t.Fatalf("evidence changed in a JSON round trip (%v):\n%s\n%s", err, raw, again)
			}
			back := NewInputWithEvidence(f.action, f.subject, f.target, f.request, verified, f.scan, fixtureNow, f.opts...)
			v1, err := inputValue(in)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := inputValue(back)
			if err != nil {
				t.Fatal(err)
			}
			if v1.Compare(v2) != 0 {
				j1, _ := json.Marshal(in)
				j2, _ := json.Marshal(back)
				t.Fatalf("inputs differ:\n%s\n%s", j1, j2)
			}
			d1, err1 := e.Eval(t.Context(), in)
			d2, err2 := e.Eval(t.Context(), back)
			j1, _ := json.Marshal(d1)
			j2, _ := json.Marshal(d2)
			if (err1 == nil) != (err2 == nil) || !bytes.Equal(j1, j2) {
				t.Fatalf("decisions differ: %s (%v) vs %s (%v)", j1, err1, j2, err2)
			}
		})
	}
}

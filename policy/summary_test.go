package policy

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestEvidenceJSONRoundTrip: the evidence of every fixture scenario, saved
// as JSON and read back, gives the same input value and the same decision
// (the gate's verification summaries carry evidence this way).
func TestEvidenceJSONRoundTrip(t *testing.T) {
	e := libraryEngine(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := allowedFixture()
			sc.change(f)
			in := f.input()
			raw, err := json.Marshal(in.Evidence)
			if err != nil {
				t.Fatal(err)
			}
			back := *in
			back.Evidence = Evidence{}
			if err := json.Unmarshal(raw, &back.Evidence); err != nil {
				t.Fatal(err)
			}
			again, err := json.Marshal(back.Evidence)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, again) {
				t.Fatalf("evidence changed in a JSON round trip:\n%s\n%s", raw, again)
			}
			v1, err := in.value()
			if err != nil {
				t.Fatal(err)
			}
			v2, err := back.value()
			if err != nil {
				t.Fatal(err)
			}
			if v1.Compare(v2) != 0 {
				t.Fatalf("input value changed in a JSON round trip")
			}
			d1, err1 := e.Eval(t.Context(), in)
			d2, err2 := e.Eval(t.Context(), &back)
			j1, _ := json.Marshal(d1)
			j2, _ := json.Marshal(d2)
			if (err1 == nil) != (err2 == nil) || !bytes.Equal(j1, j2) {
				t.Fatalf("decisions differ: %s (%v) vs %s (%v)", j1, err1, j2, err2)
			}
		})
	}
}

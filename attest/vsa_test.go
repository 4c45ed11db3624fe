package attest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func testVSA() VSA {
	return VSA{
		Verifier:     VSAVerifier{ID: "https://portcullis.example/verifier", Version: map[string]string{"portcullis": "0.1.0"}},
		TimeVerified: time.Date(2025, 2, 3, 15, 4, 5, 0, time.FixedZone("CET", 3600)),
		ResourceURI:  "oci://registry.example/prod/app@" + imageDigest,
		Policy: ResourceRef{
			URI:    "https://portcullis.example/policies/prod",
			Digest: map[string]string{"sha256": "725a3f94ec1af8830d0f708e7941c233d3cb981a6e943ca9aee5899cceb48383"},
		},
		InputAttestations: []ResourceRef{
			{URI: "oci://registry.example/staging/app@sha256:1f38c1af0cc5c48fc1d60cb3eb42837e0d9f6a4e3b2c1d0e9f8a7b6c5d4e3f2a", Digest: map[string]string{"sha256": "1f38c1af0cc5c48fc1d60cb3eb42837e0d9f6a4e3b2c1d0e9f8a7b6c5d4e3f2a"}},
		},
		VerificationResult: VSAPassed,
		VerifiedLevels:     []string{"SLSA_BUILD_LEVEL_3"},
		DependencyLevels:   map[string]int{"SLSA_BUILD_LEVEL_3": 4, "SLSA_BUILD_LEVEL_0": 1},
		SLSAVersion:        "1.0",
	}
}

func TestNewVSARoundTrip(t *testing.T) {
	subjects := []Subject{{Name: "registry.example/prod/app", Digest: map[string]string{"sha256": strings.TrimPrefix(imageDigest, "sha256:")}}}
	in := testVSA()
	payload, err := NewVSA(subjects, in)
	if err != nil {
		t.Fatal(err)
	}

	st, err := ParseStatement(payload)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != StatementV1 || st.PredicateType != PredicateVSAV1 {
		t.Fatalf("statement header = %q, %q", st.Type, st.PredicateType)
	}
	if !st.HasSubjectDigest(imageDigest) {
		t.Fatal("subject digest lost")
	}
	mustEqual(t, st.Subject, subjects)

	p, err := ParsePredicate(st.PredicateType, st.Predicate)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := p.(*VSA)
	if !ok {
		t.Fatalf("ParsePredicate returned %T", p)
	}
	if !got.TimeVerified.Equal(in.TimeVerified) || got.TimeVerified.Location() != time.UTC {
		t.Fatalf("TimeVerified = %v, want %v in UTC", got.TimeVerified, in.TimeVerified)
	}
	want := in
	want.TimeVerified = in.TimeVerified.UTC()
	mustEqual(t, *got, want)

	// The wire form uses the specification's field names.
	var wire struct {
		Predicate map[string]any `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &wire); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"verifier", "timeVerified", "resourceUri", "policy", "inputAttestations", "verificationResult", "verifiedLevels", "dependencyLevels", "slsaVersion"} {
		if _, ok := wire.Predicate[k]; !ok {
			t.Errorf("predicate lacks %q: %s", k, payload)
		}
	}
	if got := wire.Predicate["timeVerified"]; got != "2025-02-03T14:04:05Z" {
		t.Errorf("timeVerified = %v", got)
	}

	// NewVSA is deterministic, so a VSA can be compared or cached by digest.
	again, err := NewVSA(subjects, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(payload) {
		t.Fatal("NewVSA is not deterministic")
	}
}

func TestNewVSAErrors(t *testing.T) {
	subjects := []Subject{{Name: "app", Digest: map[string]string{"sha256": "abc"}}}
	tests := []struct {
		name     string
		subjects []Subject
		edit     func(v *VSA)
		wantErr  string
	}{
		{name: "no subject", subjects: nil, wantErr: "no subject"},
		{name: "subject without digest", subjects: []Subject{{Name: "app"}}, wantErr: `subject[0] "app": digest is empty`},
		{name: "no time", subjects: subjects, edit: func(v *VSA) { v.TimeVerified = time.Time{} }, wantErr: "timeVerified is missing"},
		{name: "no verifier", subjects: subjects, edit: func(v *VSA) { v.Verifier.ID = "" }, wantErr: "verifier.id is missing"},
		{name: "no resource", subjects: subjects, edit: func(v *VSA) { v.ResourceURI = "" }, wantErr: "resourceUri is missing"},
		{name: "no policy", subjects: subjects, edit: func(v *VSA) { v.Policy = ResourceRef{} }, wantErr: "policy is missing"},
		{name: "bad result", subjects: subjects, edit: func(v *VSA) { v.VerificationResult = "passed" }, wantErr: `verificationResult is "passed"`},
		{name: "no levels", subjects: subjects, edit: func(v *VSA) { v.VerifiedLevels = nil }, wantErr: "verifiedLevels is empty"},
		{name: "failed", subjects: subjects, edit: func(v *VSA) { v.VerificationResult, v.VerifiedLevels = VSAFailed, []string{"FAILED"} }},
		{name: "policy by digest only", subjects: subjects, edit: func(v *VSA) { v.Policy.URI = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVSA()
			if tt.edit != nil {
				tt.edit(&v)
			}
			_, err := NewVSA(tt.subjects, v)
			wantErr(t, err, tt.wantErr)
		})
	}
}

func TestParseVSA(t *testing.T) {
	valid, err := json.Marshal(testVSA())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		raw     []byte
		wantErr string
	}{
		{name: "valid", raw: valid},
		{name: "without timeVerified (optional)", raw: mutateJSON(t, valid, func(m map[string]any) { delete(m, "timeVerified") })},
		{name: "bad JSON", raw: valid[:50], wantErr: "vsa: unexpected end of JSON input"},
		{name: "null", raw: []byte("null"), wantErr: "vsa: predicate is empty"},
		{name: "missing verifier", raw: mutateJSON(t, valid, func(m map[string]any) { delete(m, "verifier") }), wantErr: "verifier.id is missing"},
		{name: "unknown result", raw: mutateJSON(t, valid, func(m map[string]any) { m["verificationResult"] = "MAYBE" }), wantErr: `verificationResult is "MAYBE"`},
		{name: "levels of wrong type", raw: mutateJSON(t, valid, func(m map[string]any) { m["verifiedLevels"] = "SLSA_BUILD_LEVEL_3" }), wantErr: "cannot unmarshal string"},
		{name: "bad time", raw: mutateJSON(t, valid, func(m map[string]any) { m["timeVerified"] = "now" }), wantErr: "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePredicate(PredicateVSAV1, tt.raw)
			if wantErr(t, err, tt.wantErr) && p.Kind() != KindVSA {
				t.Fatalf("Kind() = %q", p.Kind())
			}
		})
	}
}

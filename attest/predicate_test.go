package attest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/in-toto/in-toto-golang/in_toto"
	slsa02 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v0.2"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
)

func TestUnknownPredicateKeptRaw(t *testing.T) {
	raw := json.RawMessage(`{"author":"https://acme.example","statements":[{"vulnerability":{"name":"CVE-2024-45337"},"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}`)
	tests := []struct {
		name, predicateType string
		raw                 json.RawMessage
	}{
		{name: "OpenVEX", predicateType: "https://openvex.dev/ns/v0.2.0", raw: raw},
		{name: "SLSA provenance v0.1", predicateType: "https://slsa.dev/provenance/v0.1", raw: raw},
		{name: "look-alike SPDX type", predicateType: "https://spdx.dev/Document/v2.3/extra", raw: raw},
		{name: "look-alike CycloneDX type", predicateType: "https://cyclonedx.org/bomb", raw: raw},
		{name: "invalid JSON is kept too", predicateType: "https://example.com/custom", raw: json.RawMessage(`{not json`)},
		{name: "no predicate", predicateType: "https://example.com/custom", raw: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePredicate(tt.predicateType, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			u, ok := p.(*Unknown)
			if !ok || p.Kind() != KindUnknown {
				t.Fatalf("ParsePredicate returned %T, kind %q", p, p.Kind())
			}
			if u.PredicateType != tt.predicateType || !bytes.Equal(u.Raw, tt.raw) {
				t.Fatalf("got %+v, want the input unchanged", u)
			}
		})
	}
}

func TestUnknownPredicateFromStatement(t *testing.T) {
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"abc"}}],` +
		`"predicateType":"https://openvex.dev/ns/v0.2.0","predicate":{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}}`)
	st, err := ParseStatement(payload)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePredicate(st.PredicateType, st.Predicate)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"predicateType":"https://openvex.dev/ns/v0.2.0","raw":{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}}`
	if string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
}

// TestConstantsMatchLibraries keeps the constants this package declares
// (to avoid importing heavy packages) equal to the libraries' own.
func TestConstantsMatchLibraries(t *testing.T) {
	for _, c := range []struct{ ours, theirs string }{
		{StatementV01, in_toto.StatementInTotoV01},
		{StatementV1, in_toto.StatementInTotoV1},
		{PredicateSPDX, in_toto.PredicateSPDX},
		{PredicateCycloneDX, in_toto.PredicateCycloneDX},
		{PredicateSLSAProvenanceV02, slsa02.PredicateSLSAProvenance},
		{PredicateSLSAProvenanceV1, slsa1.PredicateSLSAProvenance},
		{PredicateCosignVuln, attestation.CosignVulnProvenanceV01},
	} {
		if c.ours != c.theirs {
			t.Errorf("constant %q differs from the library's %q", c.ours, c.theirs)
		}
	}
}

// TestCosignGeneratedStatements parses statements as "cosign attest" builds
// them.
func TestCosignGeneratedStatements(t *testing.T) {
	hex := strings.TrimPrefix(imageDigest, "sha256:")
	tests := []struct {
		cosignType string
		predicate  []byte
		wantKind   string
	}{
		{"vuln", readFixture(t, "cosign-vuln.json"), KindVuln},
		{"slsaprovenance02", predicateOf(t, readFixture(t, "statement-slsa-v0.2.json")), KindProvenance},
		{"slsaprovenance1", predicateOf(t, readFixture(t, "statement-slsa-v1.json")), KindProvenance},
		{"spdxjson", readFixture(t, "spdx-2.3.json"), KindSBOM},
		{"spdx", readFixture(t, "spdx-2.3.json"), KindSBOM},
		{"cyclonedx", readFixture(t, "cyclonedx-1.6.json"), KindSBOM},
		{"openvex", []byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}`), KindUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.cosignType, func(t *testing.T) {
			st, err := attestation.GenerateStatement(attestation.GenerateOpts{
				Predicate: bytes.NewReader(tt.predicate),
				Type:      tt.cosignType,
				Digest:    hex,
				Repo:      "ghcr.io/acme/app",
			})
			if err != nil {
				t.Fatal(err)
			}
			payload, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseStatement(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !parsed.HasSubjectDigest(imageDigest) {
				t.Fatal("subject digest not found")
			}
			p, err := ParsePredicate(parsed.PredicateType, parsed.Predicate)
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind() != tt.wantKind {
				t.Fatalf("Kind() = %q, want %q", p.Kind(), tt.wantKind)
			}
		})
	}
}

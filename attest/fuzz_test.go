package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// The targets call the parsers without their guard (guard.go), so that a
// panic fails the target instead of becoming an error.
//
// Run one with, for example:
//
//	go test ./attest -run '^$' -fuzz '^FuzzParseSBOM$' -fuzztime 20s

func FuzzParseEnvelope(f *testing.F) {
	f.Add(readFixture(f, "envelope-slsa-v1.json"))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`))
	f.Add([]byte(`{"payloadType":"x","payload":"-_8=","signatures":[{"sig":"AA"}]}`))
	f.Add([]byte(`{"payloadType":"","payload":"","signatures":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEnvelope(b)
		if err != nil {
			return
		}
		if e.PayloadType == "" || len(e.Payload) == 0 || len(e.Signatures) == 0 {
			t.Fatalf("accepted an incomplete envelope: %+v", e)
		}
		// An accepted envelope marshals back to one that parses the same.
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := parseEnvelope(out)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
		if !bytes.Equal(e2.Payload, e.Payload) || e2.PayloadType != e.PayloadType {
			t.Fatal("round trip changed the envelope")
		}
		if e.IsInToto() {
			_, _ = e.Statement()
		}
		if _, err := base64.StdEncoding.DecodeString(e.DSSE().Payload); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	f.Add(readFixture(f, "statement-slsa-v0.2.json"))
	f.Add(readFixture(f, "statement-slsa-v1.json"))
	vsa, err := NewVSA([]Subject{{Name: "app", Digest: map[string]string{"sha256": "abc"}}}, testVSA())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(vsa)
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":""}}],"predicateType":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStatement(b)
		if err != nil {
			return
		}
		if len(st.Subject) == 0 || st.PredicateType == "" {
			t.Fatalf("accepted an incomplete statement: %+v", st)
		}
		for _, s := range st.Subject {
			for alg, v := range s.Digest {
				if !st.HasSubjectDigest(alg + ":" + v) {
					t.Fatalf("HasSubjectDigest(%s:%s) = false for its own subject", alg, v)
				}
			}
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParseSBOM feeds SPDX JSON (kind 0), CycloneDX JSON (kind 1), or text
// that it wraps in a JSON string as cosign does (kind 2: SPDX tag-value or
// JSON), so that the fuzzer mutates tag-value text directly.

func FuzzParseSBOM(f *testing.F) {
	quoted := func(b []byte) []byte { q, _ := json.Marshal(string(b)); return q }
	spdxDoc := readFixture(f, "spdx-2.3.json")
	f.Add(uint8(0), spdxDoc)
	f.Add(uint8(0), quoted(spdxDoc))
	f.Add(uint8(2), []byte("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\n"+
		"PackageName: zlib1g\nSPDXID: SPDXRef-Package-zlib1g\nPackageLicenseDeclared: Zlib\n"+
		"PackageComment: <text>multi\nline</text>\n"+
		"ExternalRef: PACKAGE-MANAGER purl pkg:deb/debian/zlib1g@1.2.13\n"+
		"Relationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-zlib1g\n"))
	f.Add(uint8(1), readFixture(f, "cyclonedx-1.5.json"))
	f.Add(uint8(1), readFixture(f, "cyclonedx-1.6.json"))
	f.Add(uint8(1), []byte(`{"bomFormat":"CycloneDX","specVersion":"1.7","components":[{"name":"a","components":[{"name":"b"}]}]}`))
	f.Fuzz(func(t *testing.T, kind uint8, raw []byte) {
		predicateType := PredicateSPDX
		switch kind % 3 {
		case 1:
			predicateType = PredicateCycloneDX
		case 2:
			raw = quoted(raw)
		}
		p, err := parsePredicate(predicateType, raw)
		if err != nil {
			return
		}
		s, ok := p.(*SBOM)
		if !ok {
			t.Fatalf("got %T", p)
		}
		if s.Components == nil || s.Licenses == nil || s.LicenseIDs == nil {
			t.Fatal("nil list in an SBOM")
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatal(err)
		}
	})
}

// predicateTypes are the other predicate types FuzzParsePredicate feeds.
var predicateTypes = []string{
	PredicateSLSAProvenanceV02, PredicateSLSAProvenanceV1, PredicateCosignVuln, PredicateVSAV1, "https://example.com/unknown",
}

func FuzzParsePredicate(f *testing.F) {
	f.Add(uint8(0), []byte(predicateOf(f, readFixture(f, "statement-slsa-v0.2.json"))))
	f.Add(uint8(1), []byte(predicateOf(f, readFixture(f, "statement-slsa-v1.json"))))
	f.Add(uint8(2), readFixture(f, "cosign-vuln.json"))
	vsa, err := json.Marshal(testVSA())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(3), vsa)
	f.Add(uint8(4), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, kind uint8, raw []byte) {
		p, err := parsePredicate(predicateTypes[int(kind)%len(predicateTypes)], raw)
		if err != nil {
			return
		}
		if _, err := json.Marshal(p); err != nil && p.Kind() != KindUnknown {
			t.Fatal(err)
		}
	})
}

func FuzzParseTrivyReport(f *testing.F) {
	f.Add(readFixture(f, "trivy.json"))
	f.Add([]byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"Severity":"high","CVSS":{"x":{"V2Score":1}}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseTrivyReport(b)
		if err != nil {
			return
		}
		total := 0
		for _, n := range r.Counts {
			total += n
		}
		if total != len(r.Vulnerabilities) || len(r.Counts) != 5 {
			t.Fatalf("counts %v do not add up to %d findings", r.Counts, len(r.Vulnerabilities))
		}
	})
}

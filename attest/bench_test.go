package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// largeCycloneDX builds a CycloneDX 1.6 JSON SBOM of n components, about
// 300 bytes each, shaped like Syft's and Trivy's output.
func largeCycloneDX(tb testing.TB, n int) []byte {
	tb.Helper()
	comps := make([]cdx.Component, n)
	licenses := []cdx.Licenses{
		{{License: &cdx.License{ID: "MIT"}}},
		{{Expression: "(MIT OR Apache-2.0)"}},
		{{License: &cdx.License{ID: "BSD-3-Clause"}}},
		{{License: &cdx.License{Name: "Custom Acme License"}}},
	}
	for i := range comps {
		name := fmt.Sprintf("github.com/example/module-%04d", i)
		purl := fmt.Sprintf("pkg:golang/%s@v1.%d.%d", name, i%17, i%5)
		comps[i] = cdx.Component{
			BOMRef:     purl,
			Type:       cdx.ComponentTypeLibrary,
			Name:       name,
			Version:    fmt.Sprintf("v1.%d.%d", i%17, i%5),
			PackageURL: purl,
			Licenses:   &licenses[i%len(licenses)],
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: fmt.Sprintf("%064x", i*7919)}},
		}
	}
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.Metadata = &cdx.Metadata{Component: &cdx.Component{Type: cdx.ComponentTypeContainer, Name: "ghcr.io/acme/app"}}
	bom.Components = &comps
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(false).Encode(bom); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// largeSPDX builds an SPDX 2.3 JSON SBOM of n packages, shaped like Syft's.
func largeSPDX(tb testing.TB, n int) []byte {
	tb.Helper()
	type ref struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type pkg struct {
		Name             string `json:"name"`
		SPDXID           string `json:"SPDXID"`
		Version          string `json:"versionInfo"`
		Supplier         string `json:"supplier"`
		DownloadLocation string `json:"downloadLocation"`
		FilesAnalyzed    bool   `json:"filesAnalyzed"`
		LicenseConcluded string `json:"licenseConcluded"`
		LicenseDeclared  string `json:"licenseDeclared"`
		CopyrightText    string `json:"copyrightText"`
		ExternalRefs     []ref  `json:"externalRefs"`
	}
	pkgs := make([]pkg, n)
	for i := range pkgs {
		name := fmt.Sprintf("github.com/example/module-%04d", i)
		pkgs[i] = pkg{
			Name: name, SPDXID: fmt.Sprintf("SPDXRef-Package-go-module-%d", i), Version: "v1.2.3",
			Supplier: "NOASSERTION", DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION",
			LicenseDeclared: "(MIT OR Apache-2.0)", CopyrightText: "NOASSERTION",
			ExternalRefs: []ref{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + name + "@v1.2.3"}},
		}
	}
	b, err := json.Marshal(map[string]any{
		"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
		"name": "ghcr.io/acme/app", "documentNamespace": "https://acme.example/spdx/app",
		"creationInfo": map[string]any{"creators": []string{"Tool: syft-1.18.1"}, "created": "2024-12-10T09:14:03Z"},
		"packages":     pkgs,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func BenchmarkParseSBOM(b *testing.B) {
	doc := largeCycloneDX(b, 500)
	b.Run("cyclonedx", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			p, err := ParsePredicate(PredicateCycloneDX, doc)
			if err != nil {
				b.Fatal(err)
			}
			if n := len(p.(*SBOM).Components); n != 500 {
				b.Fatalf("%d components", n)
			}
		}
	})

	// The whole path a verifier takes: DSSE envelope, statement, predicate.
	statement, err := json.Marshal(map[string]any{
		"_type": StatementV1, "predicateType": PredicateCycloneDX, "predicate": json.RawMessage(doc),
		"subject": []Subject{{Name: "ghcr.io/acme/app", Digest: map[string]string{"sha256": "abc"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	envelope, err := json.Marshal(map[string]any{
		"payloadType": PayloadTypeInToto, "payload": base64.StdEncoding.EncodeToString(statement),
		"signatures": []Signature{{Sig: "AA=="}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cyclonedx-envelope", func(b *testing.B) {
		b.SetBytes(int64(len(envelope)))
		b.ReportAllocs()
		for b.Loop() {
			e, err := ParseEnvelope(envelope)
			if err != nil {
				b.Fatal(err)
			}
			st, err := e.Statement()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ParsePredicate(st.PredicateType, st.Predicate); err != nil {
				b.Fatal(err)
			}
		}
	})

	spdxDoc := largeSPDX(b, 500)
	b.Run("spdx", func(b *testing.B) {
		b.SetBytes(int64(len(spdxDoc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParsePredicate(PredicateSPDX, spdxDoc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestLargeSBOMSize(t *testing.T) {
	// BenchmarkParseSBOM is meant to run on a ~150 KB CycloneDX SBOM.
	if n := len(largeCycloneDX(t, 500)); n < 120_000 || n > 200_000 {
		t.Errorf("CycloneDX SBOM of 500 components is %d bytes, want about 150 KB", n)
	}
}

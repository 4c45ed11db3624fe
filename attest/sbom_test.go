package attest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSBOM(t *testing.T) {
	spdxDoc := readFixture(t, "spdx-2.3.json")
	cdx15 := readFixture(t, "cyclonedx-1.5.json")
	cdx16 := readFixture(t, "cyclonedx-1.6.json")
	quoted := func(b []byte) []byte {
		q, err := json.Marshal(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return q
	}

	wantSPDX := &SBOM{
		Format:      FormatSPDX,
		SpecVersion: "2.3",
		Components: []Component{
			{Name: "ghcr.io/acme/app", Version: imageDigest},
			{Name: "libssl3", Version: "3.0.15-1~deb12u1", PURL: "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&upstream=openssl&distro=debian-12", Licenses: []string{"Apache-2.0"}},
			{Name: "libc6", Version: "2.36-9+deb12u9", PURL: "pkg:deb/debian/libc6@2.36-9+deb12u9?arch=amd64&upstream=glibc&distro=debian-12", Licenses: []string{"GPL-2.0-only AND LGPL-2.1-only"}},
			{Name: "openjdk-17-jre-headless", Version: "17.0.13+11-2~deb12u1", PURL: "pkg:deb/debian/openjdk-17-jre-headless@17.0.13%2B11-2~deb12u1?arch=amd64&upstream=openjdk-17&distro=debian-12", Licenses: []string{"GPL-2.0-only WITH Classpath-exception-2.0"}},
			{Name: "github.com/spf13/cobra", Version: "v1.8.1", PURL: "pkg:golang/github.com/spf13/cobra@v1.8.1", Licenses: []string{"Apache-2.0"}},
			{Name: "github.com/acme/vendored", Version: "v0.3.0", PURL: "pkg:golang/github.com/acme/vendored@v0.3.0", Licenses: []string{"(MIT OR LicenseRef-acme-commercial)"}},
		},
		Licenses:   []string{"(MIT OR LicenseRef-acme-commercial)", "Apache-2.0", "GPL-2.0-only AND LGPL-2.1-only", "GPL-2.0-only WITH Classpath-exception-2.0"},
		LicenseIDs: []string{"Apache-2.0", "GPL-2.0-only", "LGPL-2.1-only", "LicenseRef-acme-commercial", "MIT"},
	}
	wantCDX15 := &SBOM{
		Format:      FormatCycloneDX,
		SpecVersion: "1.5",
		Components: []Component{
			{Name: "musl", Version: "1.2.5-r0", PURL: "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=3.20.3", Licenses: []string{"MIT"}},
			{Name: "busybox", Version: "1.36.1-r29", PURL: "pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=3.20.3", Licenses: []string{"GPL-2.0-only"}},
			{Name: "libcrypto3", Version: "3.3.2-r0", PURL: "pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=3.20.3", Licenses: []string{"OpenSSL License", "Apache-2.0"}},
			{Name: "golang.org/x/net", Version: "v0.30.0", PURL: "pkg:golang/golang.org/x/net@v0.30.0", Licenses: []string{"BSD-3-Clause"}},
			{Name: "github.com/acme/toolkit", Version: "v1.2.0", PURL: "pkg:golang/github.com/acme/toolkit@v1.2.0", Licenses: []string{"(MIT OR Apache-2.0)"}},
			{Name: "github.com/acme/toolkit/internal/yaml", Version: "v1.2.0", PURL: "pkg:golang/github.com/acme/toolkit/internal/yaml@v1.2.0", Licenses: []string{"MIT"}},
		},
		Licenses:   []string{"(MIT OR Apache-2.0)", "Apache-2.0", "BSD-3-Clause", "GPL-2.0-only", "MIT", "OpenSSL License"},
		LicenseIDs: []string{"Apache-2.0", "BSD-3-Clause", "GPL-2.0-only", "MIT"},
	}
	wantCDX16 := &SBOM{
		Format:      FormatCycloneDX,
		SpecVersion: "1.6",
		Components: []Component{
			{Name: "express", Version: "4.21.2", PURL: "pkg:npm/express@4.21.2", Licenses: []string{"MIT"}},
			{Name: "telemetry", Version: "2.0.1", PURL: "pkg:npm/%40acme/telemetry@2.0.1", Licenses: []string{"Apache-2.0 AND (MIT OR GPL-3.0-only)"}},
			{Name: "left-pad", Version: "1.3.0", PURL: "pkg:npm/left-pad@1.3.0", Licenses: []string{"WTFPL"}},
			{Name: "/app/node_modules/.bin/acme-cli"},
		},
		Licenses:   []string{"Apache-2.0 AND (MIT OR GPL-3.0-only)", "MIT", "WTFPL"},
		LicenseIDs: []string{"Apache-2.0", "GPL-3.0-only", "MIT", "WTFPL"},
	}
	spdxTagValue := strings.Join([]string{
		"SPDXVersion: SPDX-2.3",
		"DataLicense: CC0-1.0",
		"SPDXID: SPDXRef-DOCUMENT",
		"DocumentName: ghcr.io/acme/app",
		"DocumentNamespace: https://acme.example/spdx/app-1",
		"Creator: Tool: syft-1.18.1",
		"Created: 2024-12-10T09:14:03Z",
		"",
		"PackageName: zlib1g",
		"SPDXID: SPDXRef-Package-deb-zlib1g",
		"PackageVersion: 1:1.2.13.dfsg-1",
		"PackageDownloadLocation: NOASSERTION",
		"FilesAnalyzed: false",
		"PackageLicenseConcluded: NOASSERTION",
		"PackageLicenseDeclared: Zlib",
		"PackageCopyrightText: NOASSERTION",
		"ExternalRef: PACKAGE-MANAGER purl pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64",
		"",
	}, "\n")

	tests := []struct {
		name          string
		predicateType string
		raw           []byte
		want          *SBOM
		wantErr       string
	}{
		{name: "SPDX 2.3", predicateType: PredicateSPDX, raw: spdxDoc, want: wantSPDX},
		{name: "SPDX versioned predicate type", predicateType: "https://spdx.dev/Document/v2.3", raw: spdxDoc, want: wantSPDX},
		{name: "SPDX JSON in a string (cosign --type spdx)", predicateType: PredicateSPDX, raw: quoted(spdxDoc), want: wantSPDX},
		{
			name:          "SPDX tag-value in a string (cosign --type spdx)",
			predicateType: PredicateSPDX,
			raw:           quoted([]byte(spdxTagValue)),
			want: &SBOM{
				Format: FormatSPDX, SpecVersion: "2.3",
				Components: []Component{{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", PURL: "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64", Licenses: []string{"Zlib"}}},
				Licenses:   []string{"Zlib"}, LicenseIDs: []string{"Zlib"},
			},
		},
		{
			name:          "SPDX 2.2",
			predicateType: PredicateSPDX,
			raw:           []byte(`{"spdxVersion":"SPDX-2.2","packages":[{"name":"zlib","versionInfo":"1.3.1","licenseConcluded":"Zlib"}]}`),
			want: &SBOM{
				Format: FormatSPDX, SpecVersion: "2.2",
				Components: []Component{{Name: "zlib", Version: "1.3.1", Licenses: []string{"Zlib"}}},
				Licenses:   []string{"Zlib"}, LicenseIDs: []string{"Zlib"},
			},
		},
		{
			name:          "SPDX without packages",
			predicateType: PredicateSPDX,
			raw:           []byte(`{"spdxVersion":"SPDX-2.3"}`),
			want:          &SBOM{Format: FormatSPDX, SpecVersion: "2.3", Components: []Component{}, Licenses: []string{}, LicenseIDs: []string{}},
		},
		{name: "CycloneDX 1.5", predicateType: PredicateCycloneDX, raw: cdx15, want: wantCDX15},
		{name: "CycloneDX versioned predicate type", predicateType: "https://cyclonedx.org/bom/v1.5", raw: cdx15, want: wantCDX15},
		{name: "CycloneDX 1.6", predicateType: PredicateCycloneDX, raw: cdx16, want: wantCDX16},
		{
			name:          "CycloneDX without components",
			predicateType: PredicateCycloneDX,
			raw:           []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`),
			want:          &SBOM{Format: FormatCycloneDX, SpecVersion: "1.6", Components: []Component{}, Licenses: []string{}, LicenseIDs: []string{}},
		},

		{name: "SPDX bad JSON", predicateType: PredicateSPDX, raw: spdxDoc[:100], wantErr: "spdx: unexpected end of JSON input"},
		{name: "SPDX null", predicateType: PredicateSPDX, raw: []byte("null"), wantErr: "spdx: predicate is empty"},
		{name: "SPDX blank", predicateType: PredicateSPDX, raw: []byte(" \n"), wantErr: "spdx: predicate is empty"},
		{name: "SPDX array", predicateType: PredicateSPDX, raw: []byte(`[{"spdxVersion":"SPDX-2.3"}]`), wantErr: "cannot unmarshal array"},
		{name: "SPDX missing version", predicateType: PredicateSPDX, raw: []byte(`{"packages":[]}`), wantErr: "spdxVersion is missing"},
		{name: "SPDX 3.0", predicateType: PredicateSPDX, raw: []byte(`{"spdxVersion":"SPDX-3.0"}`), wantErr: `unsupported spdxVersion "SPDX-3.0"`},
		{name: "SPDX version of wrong type", predicateType: PredicateSPDX, raw: []byte(`{"spdxVersion":2.3}`), wantErr: "cannot unmarshal number"},
		{
			name:          "SPDX packages of wrong type",
			predicateType: PredicateSPDX,
			raw:           mutateJSON(t, spdxDoc, func(m map[string]any) { m["packages"] = map[string]any{"name": "x"} }),
			wantErr:       "cannot unmarshal object",
		},
		{
			name:          "SPDX license of wrong type",
			predicateType: PredicateSPDX,
			raw:           []byte(`{"spdxVersion":"SPDX-2.3","packages":[{"name":"x","licenseDeclared":["MIT"]}]}`),
			wantErr:       "cannot unmarshal array",
		},
		{name: "SPDX bad string", predicateType: PredicateSPDX, raw: []byte(`"SPDXVersion: SPDX-2.3\x"`), wantErr: "attest: spdx:"},
		{name: "SPDX tag-value without version", predicateType: PredicateSPDX, raw: quoted([]byte("PackageName: zlib\n")), wantErr: "spdx tag-value"},
		{name: "CycloneDX bad JSON", predicateType: PredicateCycloneDX, raw: cdx15[:200], wantErr: "cyclonedx: unexpected end of JSON input"},
		{name: "CycloneDX null", predicateType: PredicateCycloneDX, raw: nil, wantErr: "cyclonedx: predicate is empty"},
		{
			name:          "CycloneDX wrong bomFormat",
			predicateType: PredicateCycloneDX,
			raw:           mutateJSON(t, cdx15, func(m map[string]any) { m["bomFormat"] = "SPDX" }),
			wantErr:       `bomFormat is "SPDX", want "CycloneDX"`,
		},
		{
			name:          "CycloneDX missing specVersion",
			predicateType: PredicateCycloneDX,
			raw:           mutateJSON(t, cdx15, func(m map[string]any) { delete(m, "specVersion") }),
			wantErr:       "specVersion is missing",
		},
		{
			name:          "CycloneDX unknown specVersion",
			predicateType: PredicateCycloneDX,
			raw:           mutateJSON(t, cdx15, func(m map[string]any) { m["specVersion"] = "9.9" }),
			wantErr:       "invalid specification version",
		},
		{
			name:          "CycloneDX 1.1 has no JSON",
			predicateType: PredicateCycloneDX,
			raw:           mutateJSON(t, cdx15, func(m map[string]any) { m["specVersion"] = "1.1" }),
			wantErr:       "specVersion 1.1 has no JSON format",
		},
		{
			name:          "CycloneDX components of wrong type",
			predicateType: PredicateCycloneDX,
			raw:           mutateJSON(t, cdx15, func(m map[string]any) { m["components"] = "musl" }),
			wantErr:       "cannot unmarshal string",
		},
		{
			name:          "CycloneDX licenses of wrong type",
			predicateType: PredicateCycloneDX,
			raw:           []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"x","licenses":"MIT"}]}`),
			wantErr:       "cannot unmarshal string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePredicate(tt.predicateType, tt.raw)
			if !wantErr(t, err, tt.wantErr) {
				return
			}
			if got.Kind() != KindSBOM {
				t.Fatalf("Kind() = %q", got.Kind())
			}
			mustEqual(t, got, tt.want)
		})
	}
}

func TestSBOMJSON(t *testing.T) {
	// Empty lists must reach OPA as [], not null.
	p, err := ParsePredicate(PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"format":"cyclonedx","specVersion":"1.5","components":[],"licenses":[],"licenseIds":[]}`; string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
}

func TestLicenseIDs(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{"MIT", []string{"MIT"}},
		{"(MIT OR Apache-2.0)", []string{"MIT", "Apache-2.0"}},
		{"Apache-2.0 AND (MIT OR GPL-3.0-only)", []string{"Apache-2.0", "MIT", "GPL-3.0-only"}},
		{"GPL-2.0-only WITH Classpath-exception-2.0", []string{"GPL-2.0-only"}},
		{"(GPL-2.0-or-later WITH Bison-exception-2.2) and LicenseRef-acme", []string{"GPL-2.0-or-later", "LicenseRef-acme"}},
		{"GPL-2.0+", []string{"GPL-2.0+"}},
		{"((MIT))", []string{"MIT"}},
		{"NOASSERTION", nil},
		{"", nil},
		{"AND OR WITH", nil},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			mustEqual(t, licenseIDs(tt.expr), tt.want)
		})
	}
}

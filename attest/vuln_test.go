package attest

import (
	"encoding/json"
	"testing"
	"time"
)

var (
	vulnCrypto = Vulnerability{
		ID: "CVE-2024-45337", Package: "golang.org/x/crypto", PURL: "pkg:golang/golang.org/x/crypto@v0.27.0",
		InstalledVersion: "v0.27.0", FixedVersion: "0.31.0", Severity: SeverityCritical, CVSS: 9.1,
	}
	// Severity source ghsa has no CVSS entry and there is no nvd one: the
	// highest score of any source (redhat's CVSS v4.0) is taken.
	vulnNet = Vulnerability{
		ID: "GHSA-w32m-9786-jp63", Package: "golang.org/x/net", PURL: "pkg:golang/golang.org/x/net@v0.30.0",
		InstalledVersion: "v0.30.0", FixedVersion: "0.33.0", Severity: SeverityHigh, CVSS: 8.7,
	}
)

func TestParseTrivyReport(t *testing.T) {
	report := readFixture(t, "trivy.json")
	scannedAt := time.Date(2024, 12, 10, 9, 15, 22, 118201837, time.UTC)

	tests := []struct {
		name    string
		in      []byte
		want    *VulnReport
		wantErr string
	}{
		{
			name: "fixture",
			in:   report,
			want: &VulnReport{
				Scanner:   Scanner{Name: "trivy", Version: "0.58.1"},
				ScannedAt: &scannedAt,
				Format:    ResultFormatTrivy,
				Vulnerabilities: []Vulnerability{
					{
						ID: "CVE-2024-9143", Package: "libcrypto3", PURL: "pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=3.20.3",
						InstalledVersion: "3.3.2-r0", FixedVersion: "3.3.2-r1", Severity: SeverityMedium, CVSS: 4.3,
					},
					{
						ID: "CVE-2024-58251", Package: "busybox", PURL: "pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=3.20.3",
						InstalledVersion: "1.36.1-r29", Severity: SeverityLow,
					},
					// "negligible" is not a Trivy severity: UNKNOWN. Severity
					// source alpine has no CVSS entry: NVD's is taken.
					{ID: "CVE-2023-42364", Package: "busybox", InstalledVersion: "1.36.1-r29", FixedVersion: "1.36.1-r30", Severity: SeverityUnknown, CVSS: 5.5},
					vulnCrypto,
					vulnNet,
				},
				Counts: map[string]int{SeverityCritical: 1, SeverityHigh: 1, SeverityMedium: 1, SeverityLow: 1, SeverityUnknown: 1},
			},
		},
		{
			name: "no findings",
			in:   []byte(`{"SchemaVersion":2,"ArtifactName":"alpine:3.20","Results":[{"Target":"alpine","Class":"os-pkgs"}]}`),
			want: &VulnReport{
				Scanner:         Scanner{Name: "trivy"},
				Format:          ResultFormatTrivy,
				Vulnerabilities: []Vulnerability{},
				Counts:          map[string]int{SeverityCritical: 0, SeverityHigh: 0, SeverityMedium: 0, SeverityLow: 0, SeverityUnknown: 0},
			},
		},
		{name: "bad JSON", in: report[:300], wantErr: "trivy report: unexpected end of JSON input"},
		{name: "not a Trivy report", in: []byte(`{"matches":[]}`), wantErr: "SchemaVersion is missing"},
		{name: "empty object", in: []byte(`{}`), wantErr: "SchemaVersion is missing"},
		{name: "array", in: []byte(`[]`), wantErr: "cannot unmarshal array"},
		{name: "Results of wrong type", in: []byte(`{"SchemaVersion":2,"Results":"none"}`), wantErr: "cannot unmarshal string"},
		{
			name:    "Vulnerabilities of wrong type",
			in:      []byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":{"VulnerabilityID":"CVE-1"}}]}`),
			wantErr: "cannot unmarshal object",
		},
		{
			name:    "score of wrong type",
			in:      []byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"CVSS":{"nvd":{"V3Score":"9.8"}}}]}]}`),
			wantErr: "cannot unmarshal string",
		},
		{name: "bad CreatedAt", in: []byte(`{"SchemaVersion":2,"CreatedAt":"today"}`), wantErr: "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTrivyReport(tt.in)
			if !wantErr(t, err, tt.wantErr) {
				return
			}
			mustEqual(t, got, tt.want)
		})
	}
}

func TestParseCosignVuln(t *testing.T) {
	pred := readFixture(t, "cosign-vuln.json")
	scannedAt := time.Date(2024, 12, 10, 9, 15, 22, 118000000, time.UTC)
	scanner := Scanner{
		Name:      "trivy",
		URI:       "pkg:github/aquasecurity/trivy@0.58.1",
		Version:   "0.58.1",
		DBURI:     "pkg:oci/trivy-db@sha256:2c6e0ad5d0b8a7f9e3c1b4d6a8f0e2c4b6d8a0f2e4c6b8d0a2f4e6c8b0d2f4a6?repository_url=ghcr.io/aquasecurity/trivy-db",
		DBVersion: "2024121006",
	}
	grypeResult := `{"matches":[{"vulnerability":{"id":"CVE-2024-45337","severity":"Critical"},"artifact":{"name":"golang.org/x/crypto","version":"v0.27.0"}}]}`

	tests := []struct {
		name    string
		raw     []byte
		want    *VulnReport
		wantErr string
	}{
		{
			name: "trivy --format cosign-vuln",
			raw:  pred,
			want: &VulnReport{
				Scanner:         scanner,
				ScannedAt:       &scannedAt,
				Format:          ResultFormatTrivy,
				Vulnerabilities: []Vulnerability{vulnCrypto, vulnNet},
				Counts:          map[string]int{SeverityCritical: 1, SeverityHigh: 1, SeverityMedium: 0, SeverityLow: 0, SeverityUnknown: 0},
			},
		},
		{
			name: "result in another scanner's format is kept raw",
			raw: []byte(`{"scanner":{"uri":"https://github.com/anchore/grype","version":"0.86.1","result":` + grypeResult + `},` +
				`"metadata":{"scanStartedOn":"2024-12-10T09:15:20Z","scanFinishedOn":"0001-01-01T00:00:00Z"}}`),
			want: &VulnReport{
				Scanner:         Scanner{Name: "grype", URI: "https://github.com/anchore/grype", Version: "0.86.1"},
				Vulnerabilities: []Vulnerability{},
				Counts:          map[string]int{SeverityCritical: 0, SeverityHigh: 0, SeverityMedium: 0, SeverityLow: 0, SeverityUnknown: 0},
				Result:          json.RawMessage(grypeResult),
			},
		},
		{name: "bad JSON", raw: pred[:120], wantErr: "cosign vuln: unexpected end of JSON input"},
		{name: "null", raw: []byte("null"), wantErr: "cosign vuln: predicate is empty"},
		{
			name:    "missing scanner uri",
			raw:     mutateJSON(t, pred, func(m map[string]any) { delete(field(m, "scanner"), "uri") }),
			wantErr: "scanner.uri is missing",
		},
		{
			name:    "missing result",
			raw:     mutateJSON(t, pred, func(m map[string]any) { delete(field(m, "scanner"), "result") }),
			wantErr: "scanner.result is missing",
		},
		{
			name:    "scanner of wrong type",
			raw:     mutateJSON(t, pred, func(m map[string]any) { m["scanner"] = "trivy" }),
			wantErr: "cannot unmarshal string",
		},
		{
			name:    "result of wrong type",
			raw:     mutateJSON(t, pred, func(m map[string]any) { field(m, "scanner")["result"] = []any{1, 2} }),
			wantErr: "scanner.result: json: cannot unmarshal array",
		},
		{
			name:    "bad scan time",
			raw:     mutateJSON(t, pred, func(m map[string]any) { field(m, "metadata")["scanFinishedOn"] = "10/12/2024" }),
			wantErr: "cannot parse",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePredicate(PredicateCosignVuln, tt.raw)
			if !wantErr(t, err, tt.wantErr) {
				return
			}
			if got.Kind() != KindVuln {
				t.Fatalf("Kind() = %q", got.Kind())
			}
			mustEqual(t, got, tt.want)
		})
	}
}

func TestScannerName(t *testing.T) {
	for uri, want := range map[string]string{
		"pkg:github/aquasecurity/trivy@0.58.1":       "trivy",
		"pkg:github/aquasecurity/trivy@244fd47e07d":  "trivy",
		"https://github.com/anchore/grype":           "grype",
		"https://github.com/anchore/grype/":          "grype",
		"pkg:golang/github.com/google/osv-scanner?x": "osv-scanner",
		"snyk": "snyk",
	} {
		if got := scannerName(uri); got != want {
			t.Errorf("scannerName(%q) = %q, want %q", uri, got, want)
		}
	}
}

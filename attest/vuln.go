package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Severities, as in [Vulnerability].Severity and the keys of
// [VulnReport].Counts.
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityMedium   = "MEDIUM"
	SeverityLow      = "LOW"
	SeverityUnknown  = "UNKNOWN"
)

// ResultFormatTrivy is [VulnReport].Format for a Trivy JSON report.
const ResultFormatTrivy = "trivy"

// VulnReport is a vulnerability scan: a cosign vulnerability attestation, or
// a Trivy JSON report.
type VulnReport struct {
	Scanner Scanner `json:"scanner"`
	// ScannedAt is when the scan finished (cosign metadata.scanFinishedOn)
	// or the report was written (Trivy CreatedAt), if known.
	ScannedAt *time.Time `json:"scannedAt,omitempty"`
	// Format is the format the vulnerabilities were read from:
	// ResultFormatTrivy, or "" when a cosign attestation's scanner.result is
	// in a format this package does not decode. Then Vulnerabilities is
	// empty, every count is zero, and Result holds the raw result: a policy
	// should check Format before trusting the counts.
	Format string `json:"format"`
	// Vulnerabilities lists every finding, in report order.
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
	// Counts maps each severity (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN; all
	// five always present) to its number of findings.
	Counts map[string]int `json:"counts"`
	// Result is the raw scanner.result of a cosign attestation when Format
	// is "".
	Result json.RawMessage `json:"result,omitempty"`
}

// Kind returns KindVuln.
func (*VulnReport) Kind() string { return KindVuln }

// Scanner identifies the scanner and its vulnerability database.
type Scanner struct {
	// Name is the scanner's short name, e.g. "trivy", taken from the last
	// path element of the URI.
	Name string `json:"name"`
	// URI is the cosign scanner.uri, e.g. "pkg:github/aquasecurity/trivy@0.58.1".
	URI     string `json:"uri,omitempty"`
	Version string `json:"version,omitempty"`
	// DBURI and DBVersion describe the vulnerability database when the
	// attestation says (cosign scanner.db); a Trivy JSON report does not.
	DBURI     string `json:"dbUri,omitempty"`
	DBVersion string `json:"dbVersion,omitempty"`
}

// Vulnerability is one finding: a vulnerability in one installed package.
type Vulnerability struct {
	// ID is the vulnerability's id, e.g. "CVE-2024-6119" or "GHSA-...".
	ID               string `json:"id"`
	Package          string `json:"package"`
	PURL             string `json:"purl,omitempty"`
	InstalledVersion string `json:"installedVersion,omitempty"`
	// FixedVersion is empty when no fix is known.
	FixedVersion string `json:"fixedVersion,omitempty"`
	// Severity is one of the Severity constants; anything else the scanner
	// reports is UNKNOWN.
	Severity string `json:"severity"`
	// CVSS is the base score, 0 if none: the score of the source Trivy took
	// the severity from, else NVD's, else the highest of any source; for
	// that source, CVSS v3, else v4.0, else v2.
	CVSS float64 `json:"cvss,omitempty"`
}

// cosignVulnPredicate is cosign's vulnerability predicate, with the result
// kept raw so that it is decoded once, straight into a Trivy report.
// (cosign's own attestation.CosignVulnPredicate decodes it into a map.)
type cosignVulnPredicate struct {
	Scanner struct {
		URI     string `json:"uri"`
		Version string `json:"version"`
		DB      struct {
			URI     string `json:"uri"`
			Version string `json:"version"`
		} `json:"db"`
		Result json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanFinishedOn *time.Time `json:"scanFinishedOn"`
	} `json:"metadata"`
}

func parseCosignVuln(raw json.RawMessage) (*VulnReport, error) {
	var p cosignVulnPredicate
	if err := decodePredicate(raw, &p); err != nil {
		return nil, fmt.Errorf("attest: cosign vuln: %w", err)
	}
	s := p.Scanner
	if s.URI == "" {
		return nil, errors.New("attest: cosign vuln: scanner.uri is missing")
	}
	if isJSONNull(s.Result) {
		return nil, errors.New("attest: cosign vuln: scanner.result is missing")
	}
	out := &VulnReport{
		Scanner: Scanner{
			Name:      scannerName(s.URI),
			URI:       s.URI,
			Version:   s.Version,
			DBURI:     s.DB.URI,
			DBVersion: s.DB.Version,
		},
		ScannedAt: nonZeroTime(p.Metadata.ScanFinishedOn),
	}
	var tr trivyReport
	if err := json.Unmarshal(s.Result, &tr); err != nil {
		return nil, fmt.Errorf("attest: cosign vuln: scanner.result: %w", err)
	}
	if tr.SchemaVersion == 0 {
		out.Result = s.Result
		out.Vulnerabilities = []Vulnerability{}
		out.Counts = newCounts()
		return out, nil
	}
	tr.fill(out)
	if out.ScannedAt == nil {
		out.ScannedAt = nonZeroTime(tr.CreatedAt)
	}
	return out, nil
}

// parseTrivyReport is ParseTrivyReport without its guard.
func parseTrivyReport(b []byte) (*VulnReport, error) {
	var tr trivyReport
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("attest: trivy report: %w", err)
	}
	if tr.SchemaVersion == 0 {
		return nil, errors.New("attest: trivy report: SchemaVersion is missing (not a Trivy JSON report)")
	}
	out := &VulnReport{
		Scanner:   Scanner{Name: "trivy", Version: tr.Trivy.Version},
		ScannedAt: nonZeroTime(tr.CreatedAt),
	}
	tr.fill(out)
	return out, nil
}

// trivyReport is the part of Trivy's JSON report (SchemaVersion 2) a policy
// needs; the project's Trivy integration lives in scanner/trivy, and this
// package does not import Trivy.
type trivyReport struct {
	SchemaVersion int        `json:"SchemaVersion"`
	CreatedAt     *time.Time `json:"CreatedAt"`
	Trivy         struct {
		Version string `json:"Version"`
	} `json:"Trivy"`
	Results []struct {
		Vulnerabilities []trivyVuln `json:"Vulnerabilities"`
	} `json:"Results"`
}

type trivyVuln struct {
	VulnerabilityID string `json:"VulnerabilityID"`
	PkgName         string `json:"PkgName"`
	PkgIdentifier   struct {
		PURL string `json:"PURL"`
	} `json:"PkgIdentifier"`
	InstalledVersion string `json:"InstalledVersion"`
	FixedVersion     string `json:"FixedVersion"`
	Severity         string `json:"Severity"`
	SeveritySource   string `json:"SeveritySource"`
	CVSS             map[string]struct {
		V2Score  float64 `json:"V2Score"`
		V3Score  float64 `json:"V3Score"`
		V40Score float64 `json:"V40Score"`
	} `json:"CVSS"`
}

func (tr *trivyReport) fill(out *VulnReport) {
	out.Format = ResultFormatTrivy
	out.Counts = newCounts()
	n := 0
	for _, r := range tr.Results {
		n += len(r.Vulnerabilities)
	}
	out.Vulnerabilities = make([]Vulnerability, 0, n)
	for _, r := range tr.Results {
		for i := range r.Vulnerabilities {
			tv := &r.Vulnerabilities[i]
			v := Vulnerability{
				ID:               tv.VulnerabilityID,
				Package:          tv.PkgName,
				PURL:             tv.PkgIdentifier.PURL,
				InstalledVersion: tv.InstalledVersion,
				FixedVersion:     tv.FixedVersion,
				Severity:         normalizeSeverity(tv.Severity),
				CVSS:             tv.score(),
			}
			out.Counts[v.Severity]++
			out.Vulnerabilities = append(out.Vulnerabilities, v)
		}
	}
}

func (tv *trivyVuln) score() float64 {
	pick := func(source string) (float64, bool) {
		c, ok := tv.CVSS[source]
		if !ok {
			return 0, false
		}
		for _, s := range []float64{c.V3Score, c.V40Score, c.V2Score} {
			if s > 0 {
				return s, true
			}
		}
		return 0, false
	}
	if s, ok := pick(tv.SeveritySource); ok {
		return s
	}
	if s, ok := pick("nvd"); ok {
		return s
	}
	best := 0.0
	for source := range tv.CVSS {
		if s, _ := pick(source); s > best {
			best = s
		}
	}
	return best
}

func normalizeSeverity(s string) string {
	switch s = strings.ToUpper(s); s {
	case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow:
		return s
	default:
		return SeverityUnknown
	}
}

func newCounts() map[string]int {
	return map[string]int{SeverityCritical: 0, SeverityHigh: 0, SeverityMedium: 0, SeverityLow: 0, SeverityUnknown: 0}
}

// scannerName returns the last path element of a scanner URI without its
// version: "pkg:github/aquasecurity/trivy@0.58.1" gives "trivy".
func scannerName(uri string) string {
	name := uri
	if i := strings.IndexAny(name, "?#"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimRight(name, "/")
	if i := strings.LastIndexAny(name, "/:"); i >= 0 {
		name = name[i+1:]
	}
	return name
}

func nonZeroTime(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return t
}

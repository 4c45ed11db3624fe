package policy

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/verifier"
)

// Fixed values of the fixture input: decisions over it must not depend on
// the day the tests run.
var (
	fixtureNow    = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	fixtureDigest = digest.Digest("sha256:8f1c2d3e4b5a69780f1e2d3c4b5a69788f1c2d3e4b5a69780f1e2d3c4b5a6978")
	goodBuilder   = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0"
)

func sha(c byte) digest.Digest {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return digest.Digest("sha256:" + string(b))
}

// fixture holds what NewInput takes, so that scenarios can change it.
type fixture struct {
	action   contract.Action
	subject  contract.Subject
	target   contract.Target
	request  contract.Actor
	evidence *verifier.Evidence
	scan     *scanner.Report
	opts     []InputOption
}

func (f *fixture) input() *contract.Input {
	return NewInput(f.action, f.subject, f.target, f.request, f.evidence, f.scan, fixtureNow, f.opts...)
}

// allowedFixture is an image every library policy of
// testdata/policy/bundle allows: the example of docs/policy-input.md.
func allowedFixture() *fixture {
	release := &contract.Signer{KeyID: "3b0e8b4a6f1c2d9e7a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"}
	ci := &contract.Signer{Subject: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2", Issuer: "https://token.actions.githubusercontent.com"}
	sbom := &attest.SBOM{
		Format: attest.FormatCycloneDX, SpecVersion: "1.6",
		Components: []attest.Component{
			{Name: "openssl", Version: "3.3.2-r0", PURL: "pkg:apk/alpine/openssl@3.3.2-r0", Licenses: []string{"Apache-2.0"}},
			{Name: "readline", Version: "8.2.13-r0", PURL: "pkg:apk/alpine/readline@8.2.13-r0", Licenses: []string{"GPL-3.0-or-later"}},
			{Name: "github.com/acme/app", Version: "v1.4.2", PURL: "pkg:golang/github.com/acme/app@v1.4.2", Licenses: []string{"MIT OR Apache-2.0"}},
		},
		Licenses:   []string{"Apache-2.0", "GPL-3.0-or-later", "MIT OR Apache-2.0"},
		LicenseIDs: []string{"Apache-2.0", "GPL-3.0-or-later", "MIT"},
	}
	scannedAt := fixtureNow.Add(-2 * time.Hour)
	vuln := &attest.VulnReport{
		Scanner:   attest.Scanner{Name: "trivy", URI: "pkg:github/aquasecurity/trivy@0.69.0", Version: "0.69.0", DBURI: "ghcr.io/aquasecurity/trivy-db:2", DBVersion: "2"},
		ScannedAt: &scannedAt,
		Format:    attest.ResultFormatTrivy,
		Vulnerabilities: []attest.Vulnerability{
			{ID: "CVE-2024-9143", Package: "openssl", PURL: "pkg:apk/alpine/openssl@3.3.2-r0", InstalledVersion: "3.3.2-r0", FixedVersion: "3.3.2-r1", Severity: attest.SeverityLow, CVSS: 4.3},
		},
		Counts: map[string]int{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0},
	}
	params := map[string]any{"workflow": map[string]any{"repository": "https://github.com/acme/app", "ref": "refs/tags/v1.4.2", "path": ".github/workflows/release.yml"}}
	prov := &attest.Provenance{
		SLSAVersion: "1.0", BuilderID: goodBuilder,
		BuildType:        "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
		SourceRepository: "https://github.com/acme/app", SourceRef: "refs/tags/v1.4.2",
		SourceRevision: "5f2b8e7c9a1d3f4e6b8a0c2d4e6f8a0b2c4d6e8f",
		Parameters:     params,
		Materials:      []attest.Material{{URI: "git+https://github.com/acme/app@refs/tags/v1.4.2", Digest: map[string]string{"gitCommit": "5f2b8e7c9a1d3f4e6b8a0c2d4e6f8a0b2c4d6e8f"}}},
	}
	return &fixture{
		action:  contract.ActionPromote,
		subject: contract.Subject{Repository: "staging/app", Digest: fixtureDigest.String(), Tag: "1.4.2", Reference: "registry.example.com/staging/app:1.4.2"},
		target:  contract.Target{Registry: &contract.RegistryTarget{Namespace: "prod", Repository: "prod/app", Tag: "1.4.2"}},
		request: contract.Actor{Identity: &contract.Identity{Name: "release-bot", Groups: []string{"ci"}}},
		evidence: &verifier.Evidence{
			Subject: verifier.Subject{Repository: "staging/app", Digest: fixtureDigest},
			Signatures: []verifier.Signature{
				{Source: verifier.SourceBundle, Manifest: sha('a'), Verified: true, Authorities: []string{"release"}, Signer: release},
				{Source: verifier.SourceTag, Manifest: sha('b'), Verified: false, Reason: `release: invalid signature when validating ASN.1 encoded signature`},
			},
			Attestations: []verifier.Attestation{
				{Source: verifier.SourceBundle, Manifest: sha('c'), Layer: sha('d'), PredicateType: attest.PredicateSLSAProvenanceV1, Verified: true, Authorities: []string{"ci"}, Signer: ci, Predicate: prov},
				{Source: verifier.SourceBundle, Manifest: sha('e'), Layer: sha('f'), PredicateType: "https://cyclonedx.org/bom/v1.6", Verified: true, Authorities: []string{"ci"}, Signer: ci, Predicate: sbom},
				{Source: verifier.SourceTag, Manifest: sha('1'), Layer: sha('2'), PredicateType: attest.PredicateCosignVuln, Verified: true, Authorities: []string{"ci"}, Signer: ci, Predicate: vuln},
				{Source: verifier.SourceTag, Manifest: sha('3'), Layer: sha('4'), PredicateType: "https://example.com/test-result/v1", Verified: true, Authorities: []string{"ci"}, Signer: ci,
					Predicate: &attest.Unknown{PredicateType: "https://example.com/test-result/v1", Raw: json.RawMessage(`{"passed":412,"failed":0}`)}},
				{Source: verifier.SourceTag, Manifest: sha('5'), Layer: sha('6'), PredicateType: attest.PredicateSLSAProvenanceV02, Verified: false, Reason: "ci: no matching signatures"},
			},
		},
		scan: &scanner.Report{
			Digest:    fixtureDigest.String(),
			Scanner:   scanner.ScannerInfo{Name: "trivy", Version: "0.69.0"},
			DB:        scanner.DBInfo{Version: 2, BuiltAt: fixtureNow.Add(-20 * time.Hour), Source: "registry.example.com/security/trivy-db:2@" + sha('7').String(), Digest: sha('7').String()},
			ScannedAt: scannedAt,
			OS:        &scanner.OS{Family: "alpine", Name: "3.20.3"},
			Packages:  3,
			Vulnerabilities: []scanner.Vulnerability{
				{ID: "CVE-2024-6119", Package: "openssl", PkgType: "alpine", PURL: "pkg:apk/alpine/openssl@3.3.2-r0", Target: "alpine 3.20.3", InstalledVersion: "3.3.2-r0", Severity: scanner.SeverityHigh, CVSS: 7.5, DataSource: "alpine", Title: "openssl: Possible denial of service in X.509 name checks"},
				{ID: "CVE-2024-9143", Package: "openssl", PkgType: "alpine", PURL: "pkg:apk/alpine/openssl@3.3.2-r0", Target: "alpine 3.20.3", InstalledVersion: "3.3.2-r0", FixedVersion: "3.3.2-r1", Severity: scanner.SeverityLow, CVSS: 4.3, DataSource: "alpine", Title: "openssl: Low-level invalid GF(2^m) parameters lead to OOB memory access"},
			},
			Counts: map[string]int{"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0},
			Inventory: []scanner.Package{
				{Name: "github.com/acme/app", Version: "v1.4.2", Type: "gobinary", PURL: "pkg:golang/github.com/acme/app@v1.4.2", Target: "app", Licenses: []string{"MIT OR Apache-2.0"}},
				{Name: "openssl", Version: "3.3.2-r0", Type: "alpine", PURL: "pkg:apk/alpine/openssl@3.3.2-r0", Target: "alpine 3.20.3", Licenses: []string{"Apache-2.0"}},
				{Name: "readline", Version: "8.2.13-r0", Type: "alpine", PURL: "pkg:apk/alpine/readline@8.2.13-r0", Target: "alpine 3.20.3", Licenses: []string{"GPL-3.0-or-later"}},
			},
		},
	}
}

func (f *fixture) addScanVuln(v scanner.Vulnerability) {
	f.scan.Vulnerabilities = append(f.scan.Vulnerabilities, v)
	f.scan.Counts[v.Severity]++
}

// scenarios are the fixture inputs of testdata/policy/inputs, by name.
var scenarios = []struct {
	name   string
	change func(f *fixture)
}{
	{"allowed", func(*fixture) {}},
	{"unsigned", func(f *fixture) { f.evidence.Signatures = nil }},
	{"wrong-signer", func(f *fixture) {
		f.evidence.Signatures[0].Authorities = []string{"ci"}
	}},
	{"untrusted-builder", func(f *fixture) {
		p := *f.evidence.Attestations[0].Predicate.(*attest.Provenance)
		p.BuilderID = "https://jenkins.example.com/job/app-build"
		f.evidence.Attestations[0].Predicate = &p
	}},
	{"critical-cve-with-fix", func(f *fixture) {
		f.addScanVuln(scanner.Vulnerability{ID: "CVE-2024-5535", Package: "openssl", PkgType: "alpine", InstalledVersion: "3.3.2-r0", FixedVersion: "3.3.2-r2", Severity: scanner.SeverityCritical, CVSS: 9.1, DataSource: "alpine"})
	}},
	{"cve-allow-listed", func(f *fixture) {
		f.addScanVuln(scanner.Vulnerability{ID: "CVE-2024-45490", Package: "libexpat", PkgType: "alpine", InstalledVersion: "2.6.2-r0", FixedVersion: "2.6.3-r0", Severity: scanner.SeverityCritical, CVSS: 9.8, DataSource: "alpine"})
	}},
	{"allow-list-expired", func(f *fixture) {
		f.addScanVuln(scanner.Vulnerability{ID: "CVE-2023-4911", Package: "musl", PkgType: "alpine", InstalledVersion: "1.2.5-r0", FixedVersion: "1.2.5-r1", Severity: scanner.SeverityHigh, CVSS: 7.8, DataSource: "alpine"})
	}},
	{"banned-license", func(f *fixture) {
		s := *f.evidence.Attestations[1].Predicate.(*attest.SBOM)
		s.Components = append(append([]attest.Component(nil), s.Components...), attest.Component{Name: "ghostscript", Version: "10.03.1-r0", PURL: "pkg:apk/alpine/ghostscript@10.03.1-r0", Licenses: []string{"AGPL-3.0-only"}})
		s.Licenses = append([]string{"AGPL-3.0-only"}, s.Licenses...)
		s.LicenseIDs = append([]string{"AGPL-3.0-only"}, s.LicenseIDs...)
		f.evidence.Attestations[1].Predicate = &s
	}},
	{"sbom-from-scanner", func(f *fixture) {
		f.evidence.Attestations = slices.Delete(f.evidence.Attestations, 1, 2)
		f.scan.Inventory = append(f.scan.Inventory, scanner.Package{Name: "ghostscript", Version: "10.03.1-r0", Type: "alpine", Licenses: []string{"AGPL-3.0-only"}})
	}},
	{"stale-scan", func(f *fixture) {
		f.scan.ScannedAt = fixtureNow.Add(-75 * time.Hour)
		f.scan.DB.BuiltAt = fixtureNow.Add(-160 * time.Hour)
	}},
	{"scan-failed", func(f *fixture) {
		f.scan = nil
		f.opts = append(f.opts, WithCheckError(contract.CheckScan, errScanFixture))
	}},
	{"admit-latest", func(f *fixture) {
		f.action = contract.ActionAdmit
		f.subject.Tag = "latest"
		f.subject.Reference = "registry.example.com/prod/app:latest"
		f.target = contract.Target{Kubernetes: &contract.KubernetesTarget{
			Namespace: "prod", NamespaceLabels: map[string]string{"env": "prod"},
			Workload: contract.Workload{Kind: "Deployment", Name: "app"}, Container: "app",
		}}
		f.request = contract.Actor{
			Identity:       &contract.Identity{Name: "system:serviceaccount:kube-system:deployment-controller", Groups: []string{"system:serviceaccounts"}},
			ServiceAccount: "prod/app", PodLabels: map[string]string{"app": "app"},
		}
	}},
}

var errScanFixture = fixtureError("trivy: vulnerability database is missing: run portcullis db update")

type fixtureError string

func (e fixtureError) Error() string { return string(e) }

package policy

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/scanner"
)

// realisticInput is an input of the size the issue names: 300
// vulnerabilities, 500 SBOM components, 3 attestations (provenance, SBOM,
// vulnerability report), with every library policy configured.
func realisticInput() *contract.Input {
	f := allowedFixture()
	sevs := []string{scanner.SeverityLow, scanner.SeverityMedium, scanner.SeverityHigh, scanner.SeverityUnknown}
	f.scan.Vulnerabilities = nil
	f.scan.Counts = map[string]int{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}
	for i := range 300 {
		v := scanner.Vulnerability{
			ID: fmt.Sprintf("CVE-2024-%05d", i), Package: fmt.Sprintf("pkg-%d", i%120), PkgType: "debian",
			InstalledVersion: "1.0.0", Severity: sevs[i%len(sevs)], CVSS: 5, DataSource: "debian",
			Title: "a vulnerability of moderate length, as titles in the database usually are",
		}
		if v.Severity != scanner.SeverityHigh { // HIGH findings have no fix: onlyFixed lets them pass
			v.FixedVersion = "1.0.1"
		}
		f.addScanVuln(v)
	}
	sbom := *f.evidence.Attestations[1].Predicate.(*attest.SBOM)
	sbom.Components = nil
	lics := []string{"MIT", "Apache-2.0", "BSD-3-Clause", "GPL-2.0-only", "MIT OR Apache-2.0", "ISC"}
	for i := range 500 {
		sbom.Components = append(sbom.Components, attest.Component{
			Name: fmt.Sprintf("component-%d", i), Version: "2.3.4",
			PURL: fmt.Sprintf("pkg:deb/debian/component-%d@2.3.4", i), Licenses: []string{lics[i%len(lics)]},
		})
	}
	sbom.Licenses, sbom.LicenseIDs = licenseSummary(lics)
	f.evidence.Attestations[1].Predicate = &sbom
	// Three attestations: provenance, SBOM, vulnerability report.
	f.evidence.Attestations = slices.Delete(f.evidence.Attestations, 3, len(f.evidence.Attestations))
	return f.input()
}

// BenchmarkEval measures one decision of the full library over a realistic
// input: p50 and p99 latency and allocations per evaluation.
func BenchmarkEval(b *testing.B) {
	e := libraryEngine(b)
	in := realisticInput()
	ctx := context.Background()
	if d, err := e.Eval(ctx, in); err != nil || !d.Allow {
		b.Fatalf("realistic input: decision %+v, err %v; want allow", d, err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		start := time.Now()
		if _, err := e.Eval(ctx, in); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	// On a shared machine wall-clock percentiles include waiting for a
	// core; the process CPU time per decision does not.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(lat)), "cpu-µs/op")
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkLoad measures loading and compiling the library with its data.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	data, err := LoadDir(testdataDir + "/bundle")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		lib, err := Library()
		if err != nil {
			b.Fatal(err)
		}
		merged, err := WithLibrary(lib, data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewEngine(ctx, merged); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEvalSplit splits BenchmarkEval's cost: converting the input to
// OPA's value form, and evaluating the library over it.
func BenchmarkEvalSplit(b *testing.B) {
	in := realisticInput()
	b.Run("convert", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := inputValue(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("evaluate", func(b *testing.B) {
		e := libraryEngine(b)
		v, err := inputValue(in)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.eval(context.Background(), v, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

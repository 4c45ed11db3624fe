package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestOptions configure [RunTests].
type TestOptions struct {
	// Paths are the directories (or files) whose .rego, data.json and
	// data.yaml files are loaded, as `opa test` does, or oci://REF
	// bundles (read through Images, their test files included).
	Paths []string
	// Images reads oci:// paths; nil if none are given.
	Images ImageSource
	// Library adds the built-in library's policies (not its tests), as a
	// policy set does; a loaded package replaces the library's.
	Library bool
	// Coverage reports the lines the tests exercised.
	Coverage bool
	// Verbose lists every test, not only failures.
	Verbose bool
	// Run selects tests by regular expression.
	Run string
	// Timeout bounds each test (default 5s).
	Timeout time.Duration
}

// TestSummary counts test outcomes.
type TestSummary struct {
	Passed, Failed, Skipped int
	// Coverage is the percentage of lines covered, when asked for.
	Coverage float64
}

// OK reports whether tests ran and none failed.
func (s TestSummary) OK() bool { return s.Failed == 0 && s.Passed > 0 }

// RunTests runs the Rego tests (rules named test_*) under o.Paths with OPA's
// tester and writes OPA's report, plus coverage if asked, to out.
func RunTests(ctx context.Context, o TestOptions, out io.Writer) (TestSummary, error) {
	var sum TestSummary
	if len(o.Paths) == 0 {
		return sum, errors.New("policy: tests: no directory given")
	}
	paths := make([]string, 0, len(o.Paths))
	for _, p := range o.Paths {
		if !strings.HasPrefix(p, OCIScheme) {
			paths = append(paths, p)
			continue
		}
		dir, err := os.MkdirTemp("", "portcullis-policy-test-*")
		if err != nil {
			return sum, fmt.Errorf("policy: tests: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := extractOCI(ctx, p, o.Images, dir); err != nil {
			return sum, fmt.Errorf("policy: tests: %w", err)
		}
		paths = append(paths, dir)
	}
	modules, store, err := tester.LoadWithRegoVersion(paths, nil, ast.RegoV1)
	if err != nil {
		return sum, fmt.Errorf("policy: tests: %w", err)
	}
	if o.Library {
		if err := addLibrary(modules); err != nil {
			return sum, err
		}
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return sum, fmt.Errorf("policy: tests: %w", err)
	}
	defer store.Abort(ctx, txn)

	var cov *cover.Cover
	r := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1).WithEnablePrintStatements(true)).
		SetStore(store).
		SetModules(modules).
		CapturePrintOutput(true).
		EnableTracing(o.Verbose).
		SetTimeout(cmpDuration(o.Timeout, 5*time.Second)).
		Filter(o.Run)
	if o.Coverage {
		cov = cover.New()
		r = r.SetCoverageQueryTracer(cov)
	}
	ch, err := r.RunTests(ctx, txn)
	if err != nil {
		return sum, fmt.Errorf("policy: tests: %w", err)
	}
	counted := make(chan *tester.Result)
	go func() {
		defer close(counted)
		for res := range ch {
			switch {
			case res.Skip:
				sum.Skipped++
			case res.Pass():
				sum.Passed++
			default:
				sum.Failed++
			}
			counted <- res
		}
	}()
	if err := (tester.PrettyReporter{Output: out, Verbose: o.Verbose, FailureLine: true}).Report(counted); err != nil {
		return sum, fmt.Errorf("policy: tests: report: %w", err)
	}
	for range counted { // drain if the reporter stopped early
	}
	if cov != nil {
		report := cov.Report(modules)
		sum.Coverage = report.Coverage
		writeCoverage(out, report)
	}
	return sum, nil
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// addLibrary adds the library's policies whose packages modules do not
// declare.
func addLibrary(modules map[string]*ast.Module) error {
	lib, err := Library()
	if err != nil {
		return err
	}
	own := map[string]bool{}
	for _, m := range modules {
		own[m.Package.Path.String()] = true
	}
	for _, m := range lib.Modules {
		mod, err := parseModule(m)
		if err != nil {
			return fmt.Errorf("policy: tests: library: %w", err)
		}
		if !own[mod.Package.Path.String()] {
			modules[m.Path] = mod
		}
	}
	return nil
}

func writeCoverage(out io.Writer, r cover.Report) {
	fmt.Fprintf(out, "\ncoverage: %.1f%% of %d lines\n", r.Coverage, r.CoveredLines+r.NotCoveredLines)
	for _, file := range slices.Sorted(maps.Keys(r.Files)) {
		fr := r.Files[file]
		fmt.Fprintf(out, "  %5.1f%%  %s", fr.Coverage, file)
		for i, rg := range fr.NotCovered {
			sep := ", "
			if i == 0 {
				sep = "  not covered: "
			}
			if rg.Start.Row == rg.End.Row {
				fmt.Fprintf(out, "%s%d", sep, rg.Start.Row)
			} else {
				fmt.Fprintf(out, "%s%d-%d", sep, rg.Start.Row, rg.End.Row)
			}
		}
		fmt.Fprintln(out)
	}
}

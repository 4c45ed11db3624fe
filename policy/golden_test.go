package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/policy and the example in docs/policy-input.md")

const testdataDir = "../testdata/policy"

// libraryEngine compiles the library with testdata/policy/bundle's data.
func libraryEngine(t testing.TB) *Engine {
	t.Helper()
	b, err := LoadDir(filepath.Join(testdataDir, "bundle"))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := Library()
	if err != nil {
		t.Fatal(err)
	}
	if b, err = WithLibrary(lib, b); err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func marshalIndent(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// checkGolden compares got with the file, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policy -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the code produces (if intended, run go test ./policy -run %s -update):\ngot:\n%s", path, t.Name(), got)
	}
}

// TestPolicyLibraryGolden evaluates the library over every fixture input
// and compares the decisions with testdata/policy/golden.
func TestPolicyLibraryGolden(t *testing.T) {
	// What each decision must say, besides matching its golden file: which
	// policies deny, and whether one warns.
	want := map[string]struct {
		deny []string
		warn bool
	}{
		"allowed":               {},
		"unsigned":              {deny: []string{"signatures"}},
		"wrong-signer":          {deny: []string{"signatures"}},
		"untrusted-builder":     {deny: []string{"provenance"}},
		"critical-cve-with-fix": {deny: []string{"vulnerabilities"}},
		"cve-allow-listed":      {warn: true},
		"allow-list-expired":    {deny: []string{"vulnerabilities"}},
		"banned-license":        {deny: []string{"sbom"}},
		"stale-scan":            {deny: []string{"scan"}},
		"sbom-from-scanner":     {deny: []string{"sbom"}},
		"scan-failed":           {deny: []string{"errors", "scan"}},
		"admit-latest":          {deny: []string{"references"}},
	}
	e := libraryEngine(t)
	ctx := context.Background()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := allowedFixture()
			sc.change(f)
			in := f.input()
			inputPath := filepath.Join(testdataDir, "inputs", sc.name+".json")
			checkGolden(t, inputPath, marshalIndent(t, in))

			d, err := e.Eval(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(inputPath)
			if err != nil {
				t.Fatal(err)
			}
			fromFile, err := e.EvalJSON(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d, fromFile) {
				t.Errorf("Eval and EvalJSON of the saved input disagree:\n%+v\n%+v", d, fromFile)
			}
			if d.Revision != e.Revision() {
				t.Errorf("revision %q, want the engine's %q", d.Revision, e.Revision())
			}
			d.Revision = "" // changes with every library edit
			checkGolden(t, filepath.Join(testdataDir, "golden", sc.name+".json"), marshalIndent(t, d))

			w, ok := want[sc.name]
			if !ok {
				t.Fatalf("no expectation for scenario %s", sc.name)
			}
			var policies []string
			for _, m := range d.Deny {
				if p, _ := m.Details["policy"].(string); !slices.Contains(policies, p) {
					policies = append(policies, p)
				}
			}
			slices.Sort(policies)
			if !slices.Equal(policies, w.deny) || d.Allow != (len(w.deny) == 0) {
				t.Errorf("allow=%v, denied by %v; want denied by %v", d.Allow, policies, w.deny)
			}
			if (len(d.Warn) > 0) != w.warn {
				t.Errorf("warnings %v, want some: %v", d.Warn, w.warn)
			}
		})
	}
}

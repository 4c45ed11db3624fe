package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/portcullis-dev/portcullis"

// allowedImports is the one-way import order of ../shared/ARCHITECTURE.md:
// for each top-level folder, the project folders its packages may import
// (a folder may always import its own subpackages). A subpackage listed in
// leafPackages is a row of its own: it imports only what its row allows,
// and a folder (its own included) imports it only if its row names it.
var allowedImports = map[string][]string{
	// policy/contract: the types registry, webhook and the gate share; no
	// engine (policy/contract/depcheck_test.go).
	"policy/contract": {},
	"attest":          {},
	"scanner":         {},
	"rego":            {},
	"testdata":        {},
	"verifier":        {"attest", "scanner", "internal"}, // internal/tracing
	"policy":          {"policy/contract", "rego", "verifier", "attest", "scanner", "internal"},
	"audit":           {"policy/contract", "policy", "internal"},
	// gate also uses attest (it writes VSAs) and scanner's Report type;
	// registry uses policy's Request type in its Gate interface.
	"gate":     {"policy/contract", "verifier", "policy", "audit", "attest", "scanner", "internal"},
	"registry": {"policy/contract", "gate", "verifier", "policy", "internal"},
	"webhook":  {"policy/contract", "gate", "policy"}, // policy: the Request and Target types of gate.Request
	"internal": {},
}

// importableEverywhere are leaf packages of the standard library only, that
// every folder may import: internal/panics turns a panic at a decision
// boundary into a denial (docs/gate.md, I3), in every package that decides;
// internal/yamltypes holds the value types (Duration) of every package's
// serialisable Config.
var importableEverywhere = map[string]bool{
	module + "/internal/panics":    true,
	module + "/internal/yamltypes": true,
}

// leafPackages are the subpackages with a row of their own in allowedImports.
var leafPackages = []string{"policy/contract"}

func topFolder(importPath string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
	for _, leaf := range leafPackages {
		if rest == leaf || strings.HasPrefix(rest, leaf+"/") {
			return leaf
		}
	}
	top, _, _ := strings.Cut(rest, "/")
	return top
}

// TestArchitecture fails when a package imports against the documented order.
func TestArchitecture(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		from := topFolder(pkg)
		if from == "cmd" {
			continue // wiring may import everything
		}
		allowed, ok := allowedImports[from]
		if !ok {
			t.Errorf("package %s is in folder %q, which ARCHITECTURE.md does not list", pkg, from)
			continue
		}
		checked++
		for _, imp := range imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := topFolder(imp)
			if to == from || contains(allowed, to) || importableEverywhere[imp] {
				continue
			}
			t.Errorf("%s imports %s: %s/ may import only %v", pkg, imp, from, allowed)
		}
	}
	if checked == 0 {
		t.Fatal("no packages checked")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

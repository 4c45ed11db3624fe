package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPolicy(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"policy"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

const (
	policyTestdata = "../../testdata/policy"
	libraryDir     = "../../rego"
)

func TestPolicyCmdTest(t *testing.T) {
	failing := t.TempDir()
	if err := os.WriteFile(filepath.Join(failing, "p_test.rego"), []byte("package p_test\n\ntest_fails if {\n\t1 == 2\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "p.rego"), []byte("package p\n\nx := \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"library passes", []string{"test", libraryDir}, 0, "PASS:", ""},
		{"coverage after the directory", []string{"test", libraryDir, "--coverage"}, 0, "coverage: ", ""},
		{"failing test", []string{"test", failing}, 1, "FAIL:", ""},
		{"parse error", []string{"test", broken}, 2, "", "p.rego:4: rego_parse_error"},
		{"no directory", []string{"test"}, 2, "", "want at least 1 argument"},
		{"no tests", []string{"test", filepath.Join(policyTestdata, "bundle")}, 2, "", "no tests found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPolicy(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if code == 2 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("error is not one line: %q", stderr)
			}
		})
	}
}

func TestPolicyCmdEval(t *testing.T) {
	bundle := filepath.Join(policyTestdata, "bundle")
	input := func(name string) string { return filepath.Join(policyTestdata, "inputs", name+".json") }
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "p.rego"), []byte("package portcullis\n\ndeny contains x if {\n\ty == 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"allowed image", []string{"--policy", bundle, "--input", input("allowed")}, 0, []string{"ALLOW (policy revision sha256:"}, ""},
		{"allowed with a warning", []string{"--policy", bundle, "--input", input("cve-allow-listed")}, 0, []string{"ALLOW", "warn: image staging/app@sha256:", "allowed until 2027-01-31"}, ""},
		{"unsigned image", []string{"--policy", bundle, "--input", input("unsigned")}, 1, []string{"DENY", `deny: image staging/app@sha256:8f1c2d3e4b5a69780f1e2d3c4b5a69788f1c2d3e4b5a69780f1e2d3c4b5a6978 has no signature verified by authority "release"; sign it with cosign sign --key cosign-release.key`}, ""},
		{"explain", []string{"--policy", bundle, "--input", input("stale-scan"), "--explain"}, 1, []string{"rules fired:", "data.portcullis.policies.scan.deny (portcullis-library/scan.rego:"}, ""},
		{"library alone has nothing configured", []string{"--input", input("unsigned")}, 0, []string{"ALLOW"}, ""},
		{"without the library nothing decides", []string{"--policy", bundle, "--no-library", "--input", input("allowed")}, 2, nil, "defines no rule data.portcullis.deny"},
		{"compile error", []string{"--policy", broken, "--input", input("allowed")}, 2, nil, "p.rego:3: rego_unsafe_var_error"},
		{"missing input file", []string{"--policy", bundle, "--input", "nope.json"}, 2, nil, "no such file"},
		{"no input flag", []string{"--policy", bundle}, 2, nil, "--input is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPolicy(t, append([]string{"eval"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if code == 2 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("error is not one line: %q", stderr)
			}
		})
	}
}

func TestPolicyCmdEvalJSON(t *testing.T) {
	code, stdout, _ := runPolicy(t, "eval", "--policy", filepath.Join(policyTestdata, "bundle"), "--input", filepath.Join(policyTestdata, "inputs", "banned-license.json"), "--json", "--explain")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var d struct {
		Allow       bool
		Deny        []struct{ Msg string }
		Revision    string
		Explanation struct{ Rules []struct{ Rule string } }
	}
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if d.Allow || len(d.Deny) != 1 || !strings.Contains(d.Deny[0].Msg, `license "AGPL-3.0-only"`) || len(d.Explanation.Rules) == 0 {
		t.Errorf("decision %+v", d)
	}
}

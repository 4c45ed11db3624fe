package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDefaultPolicyKeptAcrossStarts: serve's default bundle is written at
// the first start; an operator's edit of its policy survives the next.
func TestDefaultPolicyKeptAcrossStarts(t *testing.T) {
	t.Parallel()
	cfg := &Config{Data: t.TempDir()}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	pc, err := policyConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(pc.Default.Bundle, "default_signed.rego")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("first start: %v", err)
	}
	edited := []byte("package portcullis.policies.default_signed\n\n# edited by the operator\n")
	if err := os.WriteFile(file, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := policyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != string(edited) {
		t.Fatalf("after a restart the policy is %q, %v; want the operator's edit", b, err)
	}
}

package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/rego"
)

// TestWriteDefaultBundle: the first start writes the shipped policy; an
// operator's edit survives the next start while data.json follows the
// configured authorities; a deleted policy comes back.
func TestWriteDefaultBundle(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "policies", "default-protected")
	policyFile := filepath.Join(dir, DefaultPolicyFile)

	wrote, err := WriteDefaultBundle(dir, []string{"release"})
	if err != nil || !wrote {
		t.Fatalf("first start: wrote %v, %v; want the policy written", wrote, err)
	}
	if got := readFile(t, policyFile); got != rego.DefaultSigned {
		t.Fatalf("written policy differs from rego.DefaultSigned:\n%s", got)
	}
	if got := authoritiesOf(t, dir); strings.Join(got, ",") != "release" {
		t.Fatalf("data.json authorities %v, want [release]", got)
	}

	edited := strings.Replace(rego.DefaultSigned, "has no signature verified", "is not signed by", 1)
	if err := os.WriteFile(policyFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	wrote, err = WriteDefaultBundle(dir, []string{"release", "ci"})
	if err != nil || wrote {
		t.Fatalf("restart: wrote %v, %v; want the edited policy kept", wrote, err)
	}
	if got := readFile(t, policyFile); got != edited {
		t.Fatalf("restart overwrote the operator's policy:\n%s", got)
	}
	if got := authoritiesOf(t, dir); strings.Join(got, ",") != "release,ci" {
		t.Fatalf("data.json authorities %v after the restart, want [release ci]", got)
	}

	if err := os.Remove(policyFile); err != nil {
		t.Fatal(err)
	}
	if wrote, err := WriteDefaultBundle(dir, nil); err != nil || !wrote || readFile(t, policyFile) != rego.DefaultSigned {
		t.Fatalf("after deleting the policy: wrote %v, %v; want the shipped one back", wrote, err)
	}
	if got := authoritiesOf(t, dir); strings.Join(got, ",") != "none configured" {
		t.Fatalf("data.json authorities %v with none configured", got)
	}
}

// TestDefaultBundleDecides: the written bundle, with the library, denies
// an image without a signature from a configured authority and allows one
// with.
func TestDefaultBundleDecides(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := WriteDefaultBundle(dir, []string{"release"}); err != nil {
		t.Fatal(err)
	}
	b, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := Library()
	if err != nil {
		t.Fatal(err)
	}
	merged, err := WithLibrary(lib, b)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(t.Context(), merged)
	if err != nil {
		t.Fatal(err)
	}

	d, err := e.Eval(t.Context(), allowedFixture().input())
	if err != nil || !d.Allow || len(d.Deny) != 0 {
		t.Fatalf("signed by release: %+v, %v; want allowed", d, err)
	}
	f := allowedFixture()
	f.evidence.Signatures = nil
	d, err = e.Eval(t.Context(), f.input())
	if err != nil || d.Allow || len(d.Deny) != 1 || d.Deny[0].Details["policy"] != "default_signed" ||
		!strings.Contains(d.Deny[0].Msg, "no signature verified by a configured authority (release)") {
		t.Fatalf("unsigned: %+v, %v; want one default_signed denial naming release", d, err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func authoritiesOf(t *testing.T, dir string) []string {
	t.Helper()
	var data struct {
		Portcullis struct {
			Config struct {
				DefaultSigned struct {
					Authorities []string `json:"authorities"`
				} `json:"defaultSigned"`
			} `json:"config"`
		} `json:"portcullis"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "data.json"))), &data); err != nil {
		t.Fatal(err)
	}
	return data.Portcullis.Config.DefaultSigned.Authorities
}

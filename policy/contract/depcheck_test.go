package contract_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/portcullis-dev/portcullis"

// engines are the module path prefixes of the decision engines (cosign is
// github.com/sigstore/cosign): a package that links one of them is not a
// leaf.
var engines = []string{
	"github.com/open-policy-agent/",
	"github.com/sigstore/",
	"github.com/aquasecurity/",
}

// TestContractLinksNoEngine: the contract types are what registry and
// webhook share with the gate, so package contract must not depend on OPA,
// sigstore (cosign included) or Trivy, directly or not.
func TestContractLinksNoEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/policy/contract").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, p := range deps {
		for _, e := range engines {
			if strings.HasPrefix(p, e) {
				t.Errorf("package contract depends on %s", p)
			}
		}
	}
}

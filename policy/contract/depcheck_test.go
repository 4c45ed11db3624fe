package contract_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/internal/archcheck"
)

// TestContractLinksNoEngine: the contract types are what registry and
// webhook share with the gate, so package contract must not depend on OPA,
// sigstore (cosign included) or Trivy, directly or not.
func TestContractLinksNoEngine(t *testing.T) {
	t.Parallel()
	archcheck.NeverLinks(t, "policy/contract", "github.com/open-policy-agent/", "github.com/sigstore/", "github.com/aquasecurity/")
}

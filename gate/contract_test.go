package gate_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// TestContractNamesTheRecordsValues: the contract spells the values the
// audit record stores itself (it may not import audit, which the registry
// and the webhook must not link), so the two must agree.
func TestContractNamesTheRecordsValues(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ contract, audit string }{
		{contract.EnforcementWarn, audit.EnforcementWarn},
		{string(contract.ActionDelete), audit.ActionDelete},
		{string(contract.ActionPush), audit.ActionPush},
		{string(contract.ActionPromote), audit.ActionPromote},
		{string(contract.ActionAdmit), audit.ActionAdmit},
	} {
		if c.contract != c.audit {
			t.Errorf("contract says %q, the audit record %q", c.contract, c.audit)
		}
	}
}

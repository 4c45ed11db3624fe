package scanner_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/archcheck"
)

// TestTrivyStaysInScannerTrivy: Trivy triples build time and binary size,
// so only scanner/trivy (and its test helpers, and the final binary) may
// import it; package scanner must not even depend on it.
func TestTrivyStaysInScannerTrivy(t *testing.T) {
	archcheck.NeverLinks(t, "scanner", "github.com/aquasecurity/")
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`, archcheck.Module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		archcheck.Module + "/scanner/trivy":           true,
		archcheck.Module + "/scanner/trivy/trivytest": true,
		archcheck.Module + "/cmd/portcullis":          true,
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/aquasecurity/") && !allowed[fields[0]] {
				t.Errorf("%s imports %s: only scanner/trivy may import Trivy", fields[0], imp)
			}
		}
	}
}

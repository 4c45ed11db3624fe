package scanner_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/portcullis-dev/portcullis"

// TestTrivyStaysInScannerTrivy: Trivy triples build time and binary size,
// so only scanner/trivy (and its test helpers, and the final binary) may
// import it; package scanner must not even depend on it.
func TestTrivyStaysInScannerTrivy(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/scanner").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/aquasecurity/") {
			t.Errorf("package scanner depends on %s", p)
		}
	}
	out, err = exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		module + "/scanner/trivy":           true,
		module + "/scanner/trivy/trivytest": true,
		module + "/cmd/portcullis":          true,
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

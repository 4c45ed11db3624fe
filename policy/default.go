package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/portcullis-dev/portcullis/rego"
)

// DefaultPolicyFile is the default bundle's policy, rego.DefaultSigned.
const DefaultPolicyFile = "default_signed.rego"

// WriteDefaultBundle makes dir the bundle protected namespaces get when
// the configuration has no policies: DefaultPolicyFile, written only when
// it is missing (an operator's edits survive restarts; wrote reports a
// fresh copy), and data.json, rewritten every time from authorities (the
// names of the configured trust authorities) so that it follows the
// configuration. A scan that cannot be made only warns: no vulnerability
// database ships with Portcullis.
func WriteDefaultBundle(dir string, authorities []string) (wrote bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("default policy: %w", err)
	}
	if len(authorities) == 0 {
		authorities = []string{"none configured"}
	}
	data, err := json.MarshalIndent(map[string]any{"portcullis": map[string]any{"config": map[string]any{
		"defaultSigned": map[string]any{"authorities": authorities},
		"errors":        map[string]any{"warnOnly": []string{"scan"}},
	}}}, "", "  ")
	if err != nil {
		return false, fmt.Errorf("default policy: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), append(data, '\n'), 0o644); err != nil {
		return false, fmt.Errorf("default policy: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, DefaultPolicyFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("default policy: %w", err)
	}
	_, err = f.WriteString(rego.DefaultSigned)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A half-written file would be taken for an operator's next time.
		_ = os.Remove(f.Name())
		return false, fmt.Errorf("default policy: %w", err)
	}
	return true, nil
}

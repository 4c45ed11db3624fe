package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/keyfile"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry/store"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// defaultProdPolicy is the policy protected namespaces get when
// portcullis.yaml configures none: at least one signature verified by a
// configured authority. Scans only warn: no vulnerability database ships
// with Portcullis.
const defaultProdPolicy = `# Written by portcullis serve at every start when portcullis.yaml has no
# "policies" section. Configure policies to change it (docs/policies.md).
package portcullis.policies.default_signed

import data.portcullis.lib

authorities := data.portcullis.config.defaultSigned.authorities

deny contains lib.message("default_signed", msg, {}) if {
	count([a | some a, sigs in input.evidence.signatures.byAuthority; count(sigs) > 0]) == 0
	msg := sprintf("image %s has no signature verified by a configured authority (%s); sign it with cosign sign --key cosign.key %s and list cosign.pub under trust.authorities in portcullis.yaml", [lib.image, concat(", ", authorities), lib.image])
}
`

// policyConfig returns the configured policy sets, or the default: the
// library for everything, and defaultProdPolicy for protected namespaces.
func policyConfig(cfg *Config) (policy.Config, error) {
	if len(cfg.Policies.Sets) > 0 || cfg.Policies.Default.Bundle != "" {
		return cfg.Policies, nil
	}
	dir := filepath.Join(cfg.Data, "policies", "default-protected")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return policy.Config{}, fmt.Errorf("default policy: %w", err)
	}
	names := []string{}
	for _, a := range cfg.Trust.Authorities {
		names = append(names, a.Name)
	}
	if len(names) == 0 {
		names = []string{"none configured"}
	}
	data, _ := json.MarshalIndent(map[string]any{"portcullis": map[string]any{"config": map[string]any{
		"defaultSigned": map[string]any{"authorities": names},
		"errors":        map[string]any{"warnOnly": []string{"scan"}},
	}}}, "", "  ")
	for name, content := range map[string][]byte{"default_signed.rego": []byte(defaultProdPolicy), "data.json": data} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return policy.Config{}, fmt.Errorf("default policy: %w", err)
		}
	}
	var prefixes []string
	for _, p := range cfg.Gate.Protected {
		prefixes = append(prefixes, p.Prefix)
	}
	// The same policy decides for admission (the default set covers every
	// Kubernetes namespace): what the registry would not promote does not run.
	return policy.Config{Default: policy.SetConfig{Bundle: dir},
		Sets: []policy.SetConfig{{Name: "protected", Registry: &policy.RegistryMatch{Prefixes: prefixes}, Bundle: dir}}}, nil
}

// newGate builds the gate over the storage core; the registry's API puts
// it in front of the protected namespaces.
func newGate(ctx context.Context, cfg *Config, core *store.Store, v *verifier.Verifier, sc gate.Scanner, rec gate.Recorder, remote func(string) (source.Source, error), images policy.ImageSource, log *slog.Logger) (*gate.Gate, *policy.Set, error) {
	pc, err := policyConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	ps, err := policy.NewSet(ctx, pc, policy.SetOptions{Logger: log, Images: images})
	if err != nil {
		return nil, nil, err
	}
	key, err := keyfile.LoadOrCreate(cfg.Gate.VSAKey, "vsa key")
	if err != nil {
		return nil, nil, err
	}
	g, err := gate.New(cfg.Gate, gate.Options{Store: core, Verifier: v, Policies: ps, Scanner: sc, Recorder: rec, VSAKey: key, Remote: remote, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return g, ps, nil
}

package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/keyfile"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry/store"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// policyConfig returns the configured policy sets, or the default: the
// library for everything, and the default bundle (policy.WriteDefaultBundle)
// for protected namespaces.
func policyConfig(cfg *Config) (policy.Config, error) {
	if len(cfg.Policies.Sets) > 0 || cfg.Policies.Default.Bundle != "" {
		return cfg.Policies, nil
	}
	dir := filepath.Join(cfg.Data, "policies", "default-protected")
	names := []string{}
	for _, a := range cfg.Trust.Authorities {
		names = append(names, a.Name)
	}
	if _, err := policy.WriteDefaultBundle(dir, names); err != nil {
		return policy.Config{}, err
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

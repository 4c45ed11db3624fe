package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

// Config is the "policies" section of portcullis.yaml: which bundle decides
// for which target.
//
//	policies:
//	  default:
//	    bundle: /etc/portcullis/policies/default
//	  sets:
//	  - name: prod
//	    registry: {prefixes: [prod]}
//	    kubernetes:
//	      namespaces: [prod]
//	      namespaceSelector: {matchLabels: {env: prod}}
//	    bundle: oci://registry.example.com/policies/prod:v3
//
// Sets are tried in order; the first that matches the target decides, and
// the default decides for targets no set matches.
type Config struct {
	// Default decides for targets no set matches. Its matchers are ignored.
	Default SetConfig `json:"default"`
	// Sets are tried in order.
	Sets []SetConfig `json:"sets,omitempty"`
}

// SetConfig binds targets to a bundle.
type SetConfig struct {
	// Name identifies the set in decisions, logs and reloads.
	Name string `json:"name,omitempty"`
	// Registry matches registry targets (push, promote).
	Registry *RegistryMatch `json:"registry,omitempty"`
	// Kubernetes matches admission targets.
	Kubernetes *KubernetesMatch `json:"kubernetes,omitempty"`
	// Bundle is a directory, a .tar.gz/.tgz bundle, or oci://REF. Empty:
	// the built-in library alone (whose policies are all off without
	// data.portcullis.config, except errors).
	Bundle string `json:"bundle,omitempty" yamlconf:"path"`
	// Library adds the built-in library to the bundle (default true). A
	// bundle package with the same name as a library package replaces it.
	Library *bool `json:"library,omitempty"`
}

// RegistryMatch matches repositories by path prefix.
type RegistryMatch struct {
	// Prefixes are repository path prefixes: "prod" matches "prod" and
	// "prod/app" but not "production/app".
	Prefixes []string `json:"prefixes"`
}

// KubernetesMatch matches namespaces by name or by labels.
type KubernetesMatch struct {
	Namespaces        []string       `json:"namespaces,omitempty"`
	NamespaceSelector *LabelSelector `json:"namespaceSelector,omitempty"`
}

// LabelSelector matches labels; every matchLabels entry must be present.
type LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

// DefaultSetName names the default set in decisions.
const DefaultSetName = "default"

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]bool{DefaultSetName: true}
	for i, s := range c.Sets {
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("policies.sets[%d]: name is required", i))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("policies.sets[%d]: name %q is used twice (or is reserved)", i, s.Name))
		}
		seen[s.Name] = true
		if s.Registry == nil && s.Kubernetes == nil {
			errs = append(errs, fmt.Errorf("policies.sets[%d] (%s): needs registry or kubernetes to match anything", i, s.Name))
		}
		if s.Registry != nil {
			for _, p := range s.Registry.Prefixes {
				if strings.Trim(p, "/") == "" {
					errs = append(errs, fmt.Errorf("policies.sets[%d] (%s): empty registry prefix (use the default set to match everything)", i, s.Name))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (s *SetConfig) library() bool { return s.Library == nil || *s.Library }

// matches reports whether the set covers t.
func (s *SetConfig) matches(t contract.Target) bool {
	if r := t.Registry; r != nil && s.Registry != nil {
		for _, p := range s.Registry.Prefixes {
			if contract.InNamespace(r.Repository, p) {
				return true
			}
		}
	}
	if k := t.Kubernetes; k != nil && s.Kubernetes != nil {
		for _, ns := range s.Kubernetes.Namespaces {
			if k.Namespace == ns {
				return true
			}
		}
		if sel := s.Kubernetes.NamespaceSelector; sel != nil && len(sel.MatchLabels) > 0 {
			for key, want := range sel.MatchLabels {
				if got, ok := k.NamespaceLabels[key]; !ok || got != want {
					return false
				}
			}
			return true
		}
	}
	return false
}

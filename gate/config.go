package gate

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// Config is the "gate" section of portcullis.yaml (docs/configuration.md),
// the one declaration of it: the server embeds it as it is.
//
//	gate:
//	  staging: [staging]
//	  protected:
//	  - prefix: prod
//	    from: [staging]
//	    mutableTags: false
//	  evidenceTimeout: 10s
type Config struct {
	// Staging are the repository prefixes CI pushes to freely.
	Staging []string `json:"staging,omitempty"`
	// Protected are the namespaces written only through the gate.
	Protected []Protected `json:"protected,omitempty"`
	// EvidenceTimeout bounds evidence collection and scanning for one
	// decision; past it the check counts as failed (default 10s).
	EvidenceTimeout yamltypes.Duration `json:"evidenceTimeout,omitempty"`
	// CacheSize bounds the verified-evidence cache (entries, default 4096).
	CacheSize int `json:"cacheSize,omitempty"`
	// CacheTTL bounds how long verified evidence is reused (default 10m):
	// keyless certificates checked against the current time expire.
	CacheTTL yamltypes.Duration `json:"cacheTTL,omitempty"`
	// VSAMaxAge bounds how old a verification summary may be for an
	// admission to rest on it instead of a full check (default 24h): past
	// it, new vulnerabilities in the scanner's database count again.
	VSAMaxAge yamltypes.Duration `json:"vsaMaxAge,omitempty"`
	// VSAKey is a PEM private key file (ECDSA P-256, PKCS#8) that signs the
	// verification summaries attached on promotion; the server loads it
	// (or creates it, with VSAKey+".pub" beside it) and passes it in
	// [Options].VSAKey. Default <data>/vsa.key ([Config.Defaults]).
	VSAKey string `json:"vsaKey,omitempty" yamlconf:"path"`
}

// Protected is a production namespace.
type Protected struct {
	// Prefix matches repositories: "prod" matches "prod" and "prod/app",
	// not "production/app".
	Prefix string `json:"prefix"`
	// From are the prefixes whose images may be promoted here.
	From []string `json:"from"`
	// MutableTags lets a tag be moved to another digest (default: a
	// production tag, once written, never changes).
	MutableTags bool `json:"mutableTags,omitempty"`
}

// DefaultConfig is what a fresh `portcullis serve` protects: prod/,
// promoted from staging/.
func DefaultConfig() Config {
	return Config{Staging: []string{"staging"}, Protected: []Protected{{Prefix: "prod", From: []string{"staging"}}}}
}

// Defaults fills what portcullis.yaml left unset: the namespaces of
// [DefaultConfig] when neither Staging nor Protected is set, VSAKey under
// the data directory dataDir, and the bounds (as [New] does).
func (c *Config) Defaults(dataDir string) {
	if len(c.Staging) == 0 && len(c.Protected) == 0 {
		d := DefaultConfig()
		c.Staging, c.Protected = d.Staging, d.Protected
	}
	if c.VSAKey == "" && dataDir != "" {
		c.VSAKey = filepath.Join(dataDir, "vsa.key")
	}
	c.bounds()
}

// bounds fills the unset bounds: a zero one is its default.
func (c *Config) bounds() {
	if c.EvidenceTimeout == 0 {
		c.EvidenceTimeout = yamltypes.Duration(10 * time.Second)
	}
	if c.CacheSize == 0 {
		c.CacheSize = 4096
	}
	if c.VSAMaxAge == 0 {
		c.VSAMaxAge = yamltypes.Duration(24 * time.Hour)
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = yamltypes.Duration(10 * time.Minute)
	}
}

// Validate reports every setting that cannot work, each as a
// *yamltypes.FieldError naming it inside the section
// ("protected[0].prefix").
func (c *Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		d    yamltypes.Duration
	}{{"evidenceTimeout", c.EvidenceTimeout}, {"cacheTTL", c.CacheTTL}, {"vsaMaxAge", c.VSAMaxAge}} {
		if d.d < 0 {
			errs = append(errs, yamltypes.Errorf(d.name, "%s: a duration must not be negative", d.d))
		}
	}
	if c.CacheSize < 0 {
		errs = append(errs, yamltypes.Errorf("cacheSize", "%d: must not be negative", c.CacheSize))
	}
	for i, p := range c.Protected {
		if strings.Trim(p.Prefix, "/") == "" {
			errs = append(errs, yamltypes.Errorf(fmt.Sprintf("protected[%d].prefix", i), "a protected namespace needs a prefix"))
		}
		for _, s := range c.Staging {
			if contract.InNamespace(s, p.Prefix) || contract.InNamespace(p.Prefix, s) {
				errs = append(errs, yamltypes.Errorf(fmt.Sprintf("protected[%d].prefix", i), "%q overlaps the staging prefix %q", p.Prefix, s))
			}
		}
	}
	return errors.Join(errs...)
}

// IsProtected reports whether repo is in a protected namespace, i.e.
// written only through the gate.
func (c *Config) IsProtected(repo string) bool { return c.protected(repo) != nil }

// protected returns the protected namespace of repo, if any.
func (c *Config) protected(repo string) *Protected {
	for i := range c.Protected {
		if contract.InNamespace(repo, c.Protected[i].Prefix) {
			return &c.Protected[i]
		}
	}
	return nil
}

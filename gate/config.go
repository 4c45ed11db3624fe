package gate

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the "gate" section of portcullis.yaml.
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
	EvidenceTimeout time.Duration `json:"-"`
	// CacheSize bounds the verified-evidence cache (entries, default 4096).
	CacheSize int `json:"cacheSize,omitempty"`
	// CacheTTL bounds how long verified evidence is reused (default 10m):
	// keyless certificates checked against the current time expire.
	CacheTTL time.Duration `json:"-"`
	// VSAMaxAge bounds how old a verification summary may be for an
	// admission to rest on it instead of a full check (default 24h): past
	// it, new vulnerabilities in the scanner's database count again.
	VSAMaxAge time.Duration `json:"-"`
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

func (c *Config) defaults() error {
	if c.EvidenceTimeout <= 0 {
		c.EvidenceTimeout = 10 * time.Second
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 4096
	}
	if c.VSAMaxAge <= 0 {
		c.VSAMaxAge = 24 * time.Hour
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = 10 * time.Minute
	}
	var errs []error
	for i, p := range c.Protected {
		if strings.Trim(p.Prefix, "/") == "" {
			errs = append(errs, fmt.Errorf("gate.protected[%d]: prefix is required", i))
		}
		for _, s := range c.Staging {
			if hasPrefix(s, p.Prefix) || hasPrefix(p.Prefix, s) {
				errs = append(errs, fmt.Errorf("gate.protected[%d]: %q overlaps the staging prefix %q", i, p.Prefix, s))
			}
		}
	}
	return errors.Join(errs...)
}

// hasPrefix reports whether repo is prefix or below it.
func hasPrefix(repo, prefix string) bool {
	prefix = strings.Trim(prefix, "/")
	return repo == prefix || strings.HasPrefix(repo, prefix+"/")
}

// IsProtected reports whether repo is in a protected namespace, i.e.
// written only through the gate.
func (c *Config) IsProtected(repo string) bool { return c.protected(repo) != nil }

// protected returns the protected namespace of repo, if any.
func (c *Config) protected(repo string) *Protected {
	for i := range c.Protected {
		if hasPrefix(repo, c.Protected[i].Prefix) {
			return &c.Protected[i]
		}
	}
	return nil
}

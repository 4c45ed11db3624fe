package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/auth"
	"github.com/portcullis-dev/portcullis/webhook"
)

// AuthConfig is the "auth" section of portcullis.yaml
// (docs/access-control.md).
type AuthConfig struct {
	// Htpasswd is a file of user:bcrypt-hash lines (htpasswd -B),
	// reloaded when it changes.
	Htpasswd string `json:"htpasswd,omitempty" yamlconf:"path"`
	// Groups maps group names to htpasswd users.
	Groups map[string][]string `json:"groups,omitempty"`
	// Grants give roles on namespaces to users, robots and groups.
	Grants []auth.Grant `json:"grants,omitempty"`
	// AnonymousPull lists the namespaces anyone may pull without credentials.
	AnonymousPull []string `json:"anonymousPull,omitempty"`
	// OIDC exchanges ID tokens of a configured issuer for registry access.
	OIDC *auth.OIDCConfig `json:"oidc,omitempty"`
	// Service names the registry in tokens (default "portcullis"); Realm
	// overrides the token endpoint URL in challenges (default: the
	// request's scheme and host + /portcullis/v1/token).
	Service string `json:"service,omitempty"`
	Realm   string `json:"realm,omitempty"`
	// TokenTTL is how long registry tokens live (default 5m).
	TokenTTL Duration `json:"tokenTTL,omitempty"`
	// RateLimit limits requests (token buckets; rate 0 = no limit).
	RateLimit RateLimitConfig `json:"rateLimit,omitempty"`
	// MaxConcurrentUploads bounds the upload requests in flight per
	// identity (default 32; 0 = no limit).
	MaxConcurrentUploads *int `json:"maxConcurrentUploads,omitempty"`
}

// RateLimitConfig are the token buckets.
type RateLimitConfig struct {
	// PerIdentity and PerAddress: requests per second and burst (default off).
	PerIdentity auth.Rate `json:"perIdentity,omitzero"`
	PerAddress  auth.Rate `json:"perAddress,omitzero"`
	// FailedAuth: failed authentications per client address (default 1/s, burst 10).
	FailedAuth *auth.Rate `json:"failedAuth,omitempty"`
}

// TLSConfig is the "tls" section: the registry listener's certificate.
type TLSConfig struct {
	// CertFile and KeyFile (PEM) are reloaded when they change.
	CertFile string `json:"certFile,omitempty" yamlconf:"path"`
	KeyFile  string `json:"keyFile,omitempty" yamlconf:"path"`
	// AllowPlainHTTP serves plain HTTP on a non-loopback address (behind
	// a TLS-terminating proxy). Loopback addresses always may.
	AllowPlainHTTP bool `json:"allowPlainHTTP,omitempty"`
}

// configured reports whether the configuration asks for authentication.
func (a *AuthConfig) configured() bool {
	return a.Htpasswd != "" || a.OIDC != nil || len(a.Grants) > 0 || len(a.AnonymousPull) > 0
}

// isLoopback reports whether a listen address only accepts local
// connections (":5000" and "0.0.0.0:5000" do not).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// accessControl builds the authentication and authorization in front of
// every handler of the server. open says authentication is off.
func accessControl(ctx context.Context, cfg *Config, insecureNoAuth bool, g interface{ Protected(string) bool }, log *slog.Logger) (svc *auth.Service, closeFn func(), err error) {
	ac := cfg.Auth
	robots, err := openRobots(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	closeRobots := func() { _ = robots.Close() }
	defer func() {
		if err != nil {
			closeRobots()
		}
	}()
	active, err := robots.ActiveCount(ctx)
	if err != nil {
		return nil, nil, err
	}
	limits := auth.Limits{PerIdentity: ac.RateLimit.PerIdentity, PerAddress: ac.RateLimit.PerAddress, FailedAuth: auth.Rate{Rate: 1, Burst: 10}, UploadsPerIdentity: 32}
	if ac.RateLimit.FailedAuth != nil {
		limits.FailedAuth = *ac.RateLimit.FailedAuth
	}
	if ac.MaxConcurrentUploads != nil {
		limits.UploadsPerIdentity = *ac.MaxConcurrentUploads
	}
	if !ac.configured() && active == 0 {
		switch {
		case isLoopback(cfg.Addr):
			log.Warn("AUTHENTICATION IS OFF: no users, robots or grants are configured, so anyone who can reach " + cfg.Addr + " may pull, push and delete. This is for local development only; see docs/access-control.md")
		case insecureNoAuth:
			log.Warn("AUTHENTICATION IS OFF (--insecure-no-auth) on " + cfg.Addr + ": anyone who can reach it may pull, push and delete")
		default:
			return nil, nil, fmt.Errorf("refusing to serve %s without authentication: configure auth (docs/access-control.md), or pass --insecure-no-auth", cfg.Addr)
		}
		svc, err := auth.New(auth.Options{Open: true, Limits: limits, Logger: log})
		return svc, closeRobots, err
	}
	pol, err := auth.NewAuthorizer(auth.Policy{Grants: ac.Grants, AnonymousPull: ac.AnonymousPull, Groups: ac.Groups})
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	o := auth.Options{Service: ac.Service, Realm: ac.Realm, TokenTTL: time.Duration(ac.TokenTTL), Robots: robots,
		Authorizer: pol, Protected: g.Protected, Limits: limits, Logger: log}
	if ac.Htpasswd != "" {
		if o.Users, err = auth.LoadHtpasswd(ac.Htpasswd); err != nil {
			return nil, nil, fmt.Errorf("config: auth.htpasswd: %w", err)
		}
	}
	if ac.OIDC != nil {
		if o.OIDC, err = auth.NewOIDC(*ac.OIDC); err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
	}
	if o.Key, err = auth.LoadOrCreateTokenKey(filepath.Join(cfg.Data, auth.TokenKeyFile)); err != nil {
		return nil, nil, err
	}
	users := 0
	if o.Users != nil {
		users = o.Users.Len()
	}
	log.Info("access control on", "users", users, "robots", active, "grants", len(ac.Grants), "anonymousPull", ac.AnonymousPull, "oidc", ac.OIDC != nil)
	svc, err = auth.New(o)
	return svc, closeRobots, err
}

// listen opens the registry listener: TLS when a certificate is
// configured, plain HTTP on loopback or when explicitly allowed.
func listen(cfg *Config) (net.Listener, error) {
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		return nil, errors.New("config: tls.certFile and tls.keyFile go together")
	}
	if cfg.TLS.CertFile == "" && !cfg.TLS.AllowPlainHTTP && !isLoopback(cfg.Addr) {
		return nil, fmt.Errorf("refusing plain HTTP on %s: configure tls.certFile and tls.keyFile, or set tls.allowPlainHTTP behind a TLS proxy (docs/access-control.md)", cfg.Addr)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if cfg.TLS.CertFile == "" {
		return ln, nil
	}
	rl, err := webhook.NewCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("config: tls: %w", err)
	}
	tc := rl.TLSConfig()
	tc.NextProtos = []string{"h2", "http/1.1"}
	return tls.NewListener(ln, tc), nil
}

// callerName names the registry caller of req, "" if none.
func callerName(req *http.Request) string {
	if id := registry.CallerFrom(req.Context()); id != nil && id.Identity() != nil {
		return id.Identity().Name
	}
	return ""
}

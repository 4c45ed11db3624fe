package webhook

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
)

// AuthConfig says who may call the webhook (I5: the webhook serves the
// API server only). Give ClientCAFile (mutual TLS, the way kube-apiserver
// authenticates to webhooks through its --admission-control-config-file
// kubeconfig), TokenFile (a bearer token, where mTLS is impossible), or
// both: either then suffices. InsecureUnauthenticated is for local
// experiments only and cannot be combined with the others.
type AuthConfig struct {
	// ClientCAFile is a PEM bundle of the CAs that issue the API server's
	// client certificate, reloaded when it changes. Use a CA that issues
	// only that certificate, or set ClientNames: any certificate the CA
	// issued is otherwise accepted.
	ClientCAFile string `json:"clientCAFile,omitempty" yamlconf:"path"`
	// ClientNames, if set, are the only client certificate names accepted
	// (the subject's common name or a DNS name).
	ClientNames []string `json:"clientNames,omitempty"`
	// TokenFile holds the accepted bearer tokens, one per line (two during
	// a rotation), reloaded when it changes.
	TokenFile string `json:"tokenFile,omitempty" yamlconf:"path"`
	// InsecureUnauthenticated answers anyone. The review's userInfo is
	// then a claim nobody vouches for: it is dropped (policy, the decision
	// history and break glass see no user, so break glass is refused).
	InsecureUnauthenticated bool `json:"insecureUnauthenticated,omitempty"`
}

// Caller is who sent a review.
type Caller struct {
	// Name identifies the caller in logs ("client certificate CN=...",
	// "bearer token", "unauthenticated").
	Name string
	// Trusted says the caller is the API server, so the review's userInfo
	// is believed. It is false only without authentication.
	Trusted bool
}

// An Authenticator decides who sent a request; an error is answered 401
// with nothing else.
type Authenticator interface {
	Authenticate(r *http.Request) (Caller, error)
}

// errUnauthenticated is the one answer an unauthenticated caller gets.
var errUnauthenticated = errors.New("unauthenticated")

// Auth authenticates callers as AuthConfig says. It is safe for
// concurrent use.
type Auth struct {
	cfg    AuthConfig
	caFile *watched[*x509.CertPool]
	tokens *watched[[][sha256.Size]byte]
}

// NewAuth loads the files cfg names; they must be valid now. A cfg that
// names no way to authenticate and is not InsecureUnauthenticated is an
// error: the webhook does not answer anyone by default.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	a := &Auth{cfg: cfg}
	switch {
	case cfg.InsecureUnauthenticated && (cfg.ClientCAFile != "" || cfg.TokenFile != "" || len(cfg.ClientNames) > 0):
		return nil, errors.New("webhook.auth: insecureUnauthenticated cannot be combined with clientCAFile, clientNames or tokenFile")
	case cfg.InsecureUnauthenticated:
		return a, nil
	case cfg.ClientCAFile == "" && cfg.TokenFile == "":
		return nil, errors.New("webhook.auth: the webhook needs authentication: set webhook.auth.clientCAFile (mutual TLS with the API server) or webhook.auth.tokenFile (bearer token); for local use only, webhook.auth.insecureUnauthenticated or --webhook-insecure-no-auth")
	case len(cfg.ClientNames) > 0 && cfg.ClientCAFile == "":
		return nil, errors.New("webhook.auth: clientNames needs clientCAFile")
	}
	if cfg.ClientCAFile != "" {
		a.caFile = &watched[*x509.CertPool]{path: cfg.ClientCAFile, parse: parseCAs}
		if _, err := a.caFile.get(); err != nil {
			return nil, fmt.Errorf("webhook.auth.clientCAFile: %w", err)
		}
	}
	if cfg.TokenFile != "" {
		a.tokens = &watched[[][sha256.Size]byte]{path: cfg.TokenFile, parse: parseTokens}
		if _, err := a.tokens.get(); err != nil {
			return nil, fmt.Errorf("webhook.auth.tokenFile: %w", err)
		}
	}
	return a, nil
}

// Unauthenticated says whether a answers anyone.
func (a *Auth) Unauthenticated() bool { return a.cfg.InsecureUnauthenticated }

// TLSConfig is the server configuration: it serves the certificate that
// getCert gives and, with a client CA, asks for a client certificate and
// verifies it against the CA file's current contents. A certificate is
// not required at the TLS layer (a token may stand in for it); one that
// does not verify fails the handshake.
func (a *Auth) TLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert}
	if a.caFile == nil {
		return base
	}
	base.ClientAuth = tls.VerifyClientCertIfGiven
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool, err := a.caFile.get()
		if err != nil {
			return nil, fmt.Errorf("webhook: client CA: %w", err)
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = pool
		return c, nil
	}
	return base
}

// Authenticate is the [Authenticator] method.
func (a *Auth) Authenticate(r *http.Request) (Caller, error) {
	if a.cfg.InsecureUnauthenticated {
		return Caller{Name: "unauthenticated"}, nil
	}
	if a.caFile != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		if len(a.cfg.ClientNames) == 0 || slices.Contains(a.cfg.ClientNames, leaf.Subject.CommonName) ||
			slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return slices.Contains(a.cfg.ClientNames, n) }) {
			return Caller{Name: "client certificate " + leaf.Subject.String(), Trusted: true}, nil
		}
	}
	if a.tokens != nil {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
			known, err := a.tokens.get()
			if err != nil {
				return Caller{}, err
			}
			h := sha256.Sum256([]byte(tok))
			match := 0
			for _, k := range known {
				match |= subtle.ConstantTimeCompare(h[:], k[:])
			}
			if match == 1 {
				return Caller{Name: "bearer token", Trusted: true}, nil
			}
		}
	}
	return Caller{}, errUnauthenticated
}

func parseCAs(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no PEM certificate")
	}
	return pool, nil
}

// minTokenLen is the shortest bearer token accepted: a shorter one (or a
// half-written file) could be guessed.
const minTokenLen = 16

func parseTokens(b []byte) ([][sha256.Size]byte, error) {
	var out [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			if len(t) < minTokenLen {
				return nil, fmt.Errorf("a token of %d characters: at least %d are needed", len(t), minTokenLen)
			}
			out = append(out, sha256.Sum256([]byte(t)))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no token")
	}
	return out, nil
}

// watched is a file parsed into T, parsed again when it changes (checked
// with a stat on every get). A change that fails to parse keeps the
// previous value in service, as CertReloader does.
type watched[T any] struct {
	path  string
	parse func([]byte) (T, error)

	mu      sync.Mutex
	ok      bool
	val     T
	version fileVersion
}

func (w *watched[T]) get() (T, error) {
	v, err := version(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || (w.ok && v == w.version) {
		if w.ok {
			return w.val, nil
		}
		return w.val, err
	}
	b, err := os.ReadFile(w.path)
	if err == nil {
		var val T
		if val, err = w.parse(b); err == nil {
			w.val, w.version, w.ok = val, v, true
		}
	}
	if err != nil && !w.ok {
		return w.val, fmt.Errorf("%s: %w", w.path, err)
	}
	return w.val, nil
}

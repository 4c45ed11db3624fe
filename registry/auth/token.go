package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/keyfile"
)

// TokenKeyFile is the token signing key under the data directory.
const TokenKeyFile = "auth-token.key"

// signingAlg is the only algorithm tokens are signed and accepted with:
// "none", HMAC with the public key, RSA and every other are refused.
const signingAlg = "ES256"

// LoadOrCreateTokenKey reads an ECDSA P-256 private key (PKCS#8 PEM) from
// path, or creates one there (0600, with its public key in path.pub).
func LoadOrCreateTokenKey(path string) (*ecdsa.PrivateKey, error) {
	k, err := keyfile.LoadOrCreate(path, "token key")
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token key %s: want an ECDSA P-256 key", path)
	}
	return ek, nil
}

// Access is one entry of a token's "access" claim, as the Docker token
// specification writes it.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// ParseScope parses a Docker scope: "repository:staging/app:pull,push",
// "registry:catalog:*". Repository names hold no colon, so the type ends
// at the first colon and the actions start after the last.
func ParseScope(s string) (Access, error) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i < 0 || typ == "" {
		return Access{}, fmt.Errorf("scope %q: want TYPE:NAME:ACTIONS", s)
	}
	a := Access{Type: typ, Name: rest[:i]}
	for _, act := range strings.Split(rest[i+1:], ",") {
		if act = strings.TrimSpace(act); act != "" {
			a.Actions = append(a.Actions, act)
		}
	}
	if a.Name == "" || len(a.Actions) == 0 {
		return Access{}, fmt.Errorf("scope %q: want TYPE:NAME:ACTIONS", s)
	}
	return a, nil
}

// accessKey is one (type, name, action) a token grants.
type accessKey struct{ typ, name, action string }

type accessSet map[accessKey]bool

func newAccessSet(l []Access) *accessSet {
	s := accessSet{}
	for _, a := range l {
		for _, act := range a.Actions {
			s[accessKey{a.Type, a.Name, act}] = true
		}
	}
	return &s
}

func (s *accessSet) has(k accessKey) bool { return (*s)[k] }

// claims are a registry token's claims.
type claims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access"`
	Kind   Kind     `json:"kind,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Robot is the robot's id, checked on every use so that revoking the
	// robot ends its tokens at once.
	Robot string `json:"robot,omitempty"`

	// access is Access as a set, built once per verified token.
	access *accessSet
}

// TokenService issues and verifies the registry's bearer tokens.
type TokenService struct {
	key     *ecdsa.PrivateKey
	kid     string
	issuer  string
	service string
	ttl     time.Duration
	parser  *jwt.Parser

	mu    sync.RWMutex
	cache map[string]*claims // verified tokens
}

// maxCachedTokens bounds the verified-token cache; past it, it is emptied.
const maxCachedTokens = 10000

// NewTokenService signs with key for service (the JWT audience) as
// issuer; tokens live ttl.
func NewTokenService(key *ecdsa.PrivateKey, issuer, service string, ttl time.Duration) *TokenService {
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(pub)
	return &TokenService{
		key: key, kid: hex.EncodeToString(sum[:12]), issuer: issuer, service: service, ttl: ttl,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{signingAlg}),
			jwt.WithAudience(service),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(30*time.Second),
		),
		cache: map[string]*claims{},
	}
}

// Service is the service name tokens are issued for.
func (t *TokenService) Service() string { return t.service }

// Issue signs a token for p granting access.
func (t *TokenService) Issue(p *Principal, access []Access) (token string, issued time.Time, err error) {
	now := time.Now().Truncate(time.Second)
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   p.display(),
			Audience:  jwt.ClaimStrings{t.service},
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(id),
		},
		Access: access,
		Kind:   p.Kind,
		Groups: p.Groups,
	}
	if c.Access == nil {
		c.Access = []Access{}
	}
	if p.robot != nil {
		c.Robot = p.robot.ID
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = t.kid
	s, err := tok.SignedString(t.key)
	return s, now, err
}

// TTL is how long issued tokens live.
func (t *TokenService) TTL() time.Duration { return t.ttl }

// verify checks a token's signature (ES256 with this service's key
// only), issuer, audience and validity period.
func (t *TokenService) verify(s string) (*claims, error) {
	t.mu.RLock()
	c, ok := t.cache[s]
	t.mu.RUnlock()
	if ok {
		if time.Now().After(c.ExpiresAt.Add(30 * time.Second)) {
			return nil, errors.New("token is expired")
		}
		return c, nil
	}
	c = &claims{}
	_, err := t.parser.ParseWithClaims(s, c, func(tok *jwt.Token) (any, error) {
		if kid, ok := tok.Header["kid"].(string); ok && kid != t.kid {
			return nil, fmt.Errorf("token signed by unknown key %q", kid)
		}
		return &t.key.PublicKey, nil
	})
	if err != nil {
		return nil, err
	}
	c.access = newAccessSet(c.Access)
	if c.Subject == "" || (c.Kind != KindUser && c.Kind != KindRobot && c.Kind != KindOIDC && c.Kind != KindAnonymous) {
		return nil, errors.New("token names no known subject")
	}
	t.mu.Lock()
	if len(t.cache) >= maxCachedTokens {
		clear(t.cache)
	}
	t.cache[s] = c
	t.mu.Unlock()
	return c, nil
}

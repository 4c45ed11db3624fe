package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OIDCConfig configures the exchange of OIDC ID tokens (from a CI
// system's identity provider) for registry access.
type OIDCConfig struct {
	// Issuer is the "iss" every ID token must carry.
	Issuer string `json:"issuer"`
	// Audience is the "aud" every ID token must carry (the client id).
	Audience string `json:"audience"`
	// JWKSFile is the issuer's keys (its jwks_uri document), read from a
	// local file: the registry fetches nothing.
	JWKSFile string `json:"jwksFile" yamlconf:"path"`
	// UsernameClaim names the identity (default "sub"); GroupsClaim the
	// groups (default "groups", a list of strings).
	UsernameClaim string `json:"usernameClaim,omitempty"`
	GroupsClaim   string `json:"groupsClaim,omitempty"`
	// UsernamePrefix is put before every name, so that an OIDC identity is
	// never taken for an htpasswd user (default "oidc:").
	UsernamePrefix *string `json:"usernamePrefix,omitempty"`
}

// OIDC verifies ID tokens against an issuer's keys from a file.
type OIDC struct {
	cfg    OIDCConfig
	prefix string
	keys   map[string]any // kid -> *rsa.PublicKey | *ecdsa.PublicKey
	parser *jwt.Parser
}

// oidcAlgs are the ID token algorithms accepted.
var oidcAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}

// NewOIDC reads the key set and checks the configuration.
func NewOIDC(c OIDCConfig) (*OIDC, error) {
	if c.Issuer == "" || c.Audience == "" || c.JWKSFile == "" {
		return nil, errors.New("auth.oidc: issuer, audience and jwksFile are required")
	}
	b, err := os.ReadFile(c.JWKSFile)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: %w", err)
	}
	keys, err := ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: %s: %w", c.JWKSFile, err)
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = "sub"
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	prefix := "oidc:"
	if c.UsernamePrefix != nil {
		prefix = *c.UsernamePrefix
	}
	return &OIDC{cfg: c, prefix: prefix, keys: keys, parser: jwt.NewParser(
		jwt.WithValidMethods(oidcAlgs),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(time.Minute),
	)}, nil
}

// Verify checks an ID token and returns the identity and groups it names.
func (o *OIDC) Verify(raw string) (string, []string, error) {
	c := jwt.MapClaims{}
	_, err := o.parser.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := o.keys[kid]; ok {
			return k, nil
		}
		if kid == "" && len(o.keys) == 1 {
			for _, k := range o.keys {
				return k, nil
			}
		}
		return nil, fmt.Errorf("ID token signed by unknown key %q", kid)
	})
	if err != nil {
		return "", nil, fmt.Errorf("OIDC ID token: %w", err)
	}
	name, _ := c[o.cfg.UsernameClaim].(string)
	if name == "" {
		return "", nil, fmt.Errorf("OIDC ID token: no %q claim", o.cfg.UsernameClaim)
	}
	var groups []string
	if l, ok := c[o.cfg.GroupsClaim].([]any); ok {
		for _, g := range l {
			if s, ok := g.(string); ok {
				groups = append(groups, s)
			}
		}
	}
	return o.prefix + name, groups, nil
}

// ParseJWKS parses a JSON Web Key Set of RSA and EC (P-256, P-384)
// public keys, by kid.
func ParseJWKS(b []byte) (map[string]any, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Crv, N, E, X, Y, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	dec := func(s string) (*big.Int, error) {
		v, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, err
		}
		return new(big.Int).SetBytes(v), nil
	}
	keys := map[string]any{}
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := dec(k.N)
			e, err2 := dec(k.E)
			if err := errors.Join(err1, err2); err != nil || !e.IsInt64() {
				return nil, fmt.Errorf("key %d: bad RSA key", i)
			}
			keys[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			default:
				return nil, fmt.Errorf("key %d: curve %q not supported", i, k.Crv)
			}
			x, err1 := dec(k.X)
			y, err2 := dec(k.Y)
			if err := errors.Join(err1, err2); err != nil || !curve.IsOnCurve(x, y) {
				return nil, fmt.Errorf("key %d: bad EC key", i)
			}
			keys[k.Kid] = &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no RSA or EC signing keys")
	}
	return keys, nil
}

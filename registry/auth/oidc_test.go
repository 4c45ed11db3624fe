package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/registry"
)

func TestOIDCExchange(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","x":%q,"y":%q}]}`, b64(key.X.FillBytes(make([]byte, 32))), b64(key.Y.FillBytes(make([]byte, 32))))
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, []byte(jwks), 0o644); err != nil {
		t.Fatal(err)
	}
	const issuer = "https://ci.example.com"
	o, err := NewOIDC(OIDCConfig{Issuer: issuer, Audience: "portcullis", JWKSFile: jwksFile})
	if err != nil {
		t.Fatal(err)
	}
	pol := Policy{Grants: []Grant{
		{Namespace: "ci", Roles: []registry.Action{registry.ActionPush}, Users: []string{"oidc:repo:acme/app"}},
		{Namespace: "shared", Roles: []registry.Action{registry.ActionPull}, Groups: []string{"builders"}},
	}}
	e := newEnv(t, envOptions{policy: pol, oidc: o})
	idToken := func(mod func(jwt.MapClaims), m jwt.SigningMethod, k any) string {
		c := jwt.MapClaims{"iss": issuer, "aud": "portcullis", "sub": "repo:acme/app", "groups": []string{"builders"},
			"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix()}
		if mod != nil {
			mod(c)
		}
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := idToken(nil, jwt.SigningMethodES256, key)
	tok, r := e.token(basic(OIDCUser, good), "repository:ci/app:pull,push", "repository:shared/x:pull,push")
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	c, err := e.svc.tokens.verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "oidc:repo:acme/app" || len(c.Access) != 2 || len(c.Access[1].Actions) != 1 {
		t.Fatalf("exchanged token: %s %+v", c.Subject, c.Access)
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", "Bearer "+tok, nil); r.status != http.StatusAccepted {
		t.Fatalf("push with the exchanged token: %d %s", r.status, r.body)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, bad := range map[string]string{
		"another audience": idToken(func(c jwt.MapClaims) { c["aud"] = "someone-else" }, jwt.SigningMethodES256, key),
		"another issuer":   idToken(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" }, jwt.SigningMethodES256, key),
		"expired":          idToken(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, jwt.SigningMethodES256, key),
		"another key":      idToken(nil, jwt.SigningMethodES256, other),
		"HMAC":             idToken(nil, jwt.SigningMethodHS256, []byte("secret")),
		"alg none":         idToken(nil, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
	} {
		if _, r := e.token(basic(OIDCUser, bad), "repository:ci/app:pull"); r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, r.status)
		}
	}
}

package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestBasicAndTokenFlow(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests}, "alice", "bob")
	alice := basic("alice", testPassword)

	// The ping challenges anonymous clients with the token realm.
	r := e.do(http.MethodGet, "/v2/", "", nil)
	if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="`+e.url+TokenPath+`",service="portcullis"`) {
		t.Fatalf("GET /v2/ anonymously: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	// A request names the scope it needs.
	r = e.do(http.MethodGet, "/v2/staging/app/tags/list", "", nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `scope="repository:staging/app:pull"`) || r.code() != "UNAUTHORIZED" {
		t.Fatalf("anonymous tags list: %d %q %s", r.status, r.header.Get("WWW-Authenticate"), r.body)
	}
	// Basic auth on the request itself.
	e.pushImage("staging/app", "1", alice)
	if r := e.do(http.MethodGet, "/v2/staging/app/manifests/1", alice, nil); r.status != http.StatusOK {
		t.Fatalf("basic GET manifest: %d %s", r.status, r.body)
	}
	// Wrong password.
	if r := e.do(http.MethodGet, "/v2/staging/app/manifests/1", basic("alice", "nope"), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", r.status)
	}
	// Authenticated but not allowed: 403 DENIED, saying who and what.
	r = e.do(http.MethodGet, "/v2/staging/app/manifests/1", basic("bob", testPassword), nil)
	if r.status != http.StatusForbidden || r.code() != "DENIED" || !strings.Contains(string(r.body), "bob may not pull staging/app") {
		t.Fatalf("bob pulls staging: %d %s", r.status, r.body)
	}

	// The token flow: the token carries the scopes alice holds, not others.
	tok, tr := e.token(alice, "repository:staging/app:pull,push,delete", "repository:other/x:pull")
	if tr.status != http.StatusOK || tok == "" {
		t.Fatalf("token: %d %s", tr.status, tr.body)
	}
	c, err := e.svc.tokens.verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Access) != 1 || c.Access[0].Name != "staging/app" || strings.Join(c.Access[0].Actions, ",") != "pull,push" {
		t.Fatalf("granted access %+v, want staging/app pull,push only", c.Access)
	}
	bearer := "Bearer " + tok
	if r := e.do(http.MethodGet, "/v2/staging/app/manifests/1", bearer, nil); r.status != http.StatusOK {
		t.Fatalf("bearer GET manifest: %d %s", r.status, r.body)
	}
	// Wrong scope: alice may pull staging/other, but this token does not
	// say so: 401 insufficient_scope, so that the client asks again.
	r = e.do(http.MethodGet, "/v2/staging/other/tags/list", bearer, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("bearer for another repository: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	// A scope alice does not hold is refused for good.
	if r := e.do(http.MethodDelete, "/v2/staging/app/manifests/1", bearer, nil); r.status != http.StatusForbidden {
		t.Fatalf("bearer delete: %d %s", r.status, r.body)
	}
	// Bad credentials at the token endpoint.
	if _, r := e.token(basic("alice", "wrong"), "repository:staging/app:pull"); r.status != http.StatusUnauthorized {
		t.Fatalf("token with a wrong password: %d", r.status)
	}
	// The OAuth2 form (POST, password grant).
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {testPassword}, "service": {"portcullis"}, "scope": {"repository:staging/app:pull"}, "client_id": {"test"}}
	res, err := http.PostForm(e.url+TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	var otr tokenResponse
	_ = json.NewDecoder(res.Body).Decode(&otr)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || otr.AccessToken == "" || otr.Scope != "repository:staging/app:pull" {
		t.Fatalf("POST token: %d %+v", res.StatusCode, otr)
	}
	// Anonymous tokens carry the anonymous grants only.
	anonTok, _ := e.token("", "repository:public/app:pull,push", "repository:staging/app:pull")
	c, err = e.svc.tokens.verify(anonTok)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Access) != 1 || c.Access[0].Name != "public/app" || strings.Join(c.Access[0].Actions, ",") != "pull" {
		t.Fatalf("anonymous token access %+v, want public/app pull", c.Access)
	}
}

// signWith signs claims with alg and key, for forged tokens.
func signWith(t *testing.T, m jwt.SigningMethod, c jwt.Claims, key any, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadTokensRefused(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests}, "alice")
	alice := basic("alice", testPassword)
	e.pushImage("staging/app", "1", alice)
	const path = "/v2/staging/app/manifests/1"
	good, _ := e.token(alice, "repository:staging/app:pull")
	if r := e.do(http.MethodGet, path, "Bearer "+good, nil); r.status != http.StatusOK {
		t.Fatalf("a good token: %d %s", r.status, r.body)
	}
	kid := e.svc.tokens.kid
	valid := func() claims {
		now := time.Now()
		return claims{
			RegisteredClaims: jwt.RegisteredClaims{Issuer: "portcullis", Subject: "alice", Audience: jwt.ClaimStrings{"portcullis"},
				ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now)},
			Kind:   KindUser,
			Access: []Access{{Type: "repository", Name: "staging/app", Actions: []string{"pull"}}},
		}
	}
	// The same claims signed properly work: the refusals below are about
	// what each case changes.
	if r := e.do(http.MethodGet, path, "Bearer "+signWith(t, jwt.SigningMethodES256, valid(), e.key, kid), nil); r.status != http.StatusOK {
		t.Fatalf("a hand-made valid token: %d %s", r.status, r.body)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	expired := valid()
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Minute))
	expired.IssuedAt = jwt.NewNumericDate(time.Now().Add(-10 * time.Minute))
	otherService := valid()
	otherService.Audience = jwt.ClaimStrings{"another-registry"}
	otherIssuer := valid()
	otherIssuer.Issuer = "someone-else"
	noExpiry := valid()
	noExpiry.ExpiresAt = nil
	future := valid()
	future.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
	wrongScope := valid()
	wrongScope.Access = []Access{{Type: "repository", Name: "staging/other", Actions: []string{"pull"}}}
	pubDER := elliptic.MarshalCompressed(elliptic.P256(), e.key.X, e.key.Y)

	goodParts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(goodParts[1])
	tamperedPayload := bytes.Replace(payload, []byte(`"pull"`), []byte(`"push"`), 1)
	tampered := goodParts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + goodParts[2]
	noneTok := signWith(t, jwt.SigningMethodNone, valid(), jwt.UnsafeAllowNoneSignatureType, kid)

	for _, tc := range []struct{ name, token string }{
		{"expired", signWith(t, jwt.SigningMethodES256, expired, e.key, kid)},
		{"another service", signWith(t, jwt.SigningMethodES256, otherService, e.key, kid)},
		{"another issuer", signWith(t, jwt.SigningMethodES256, otherIssuer, e.key, kid)},
		{"no expiry", signWith(t, jwt.SigningMethodES256, noExpiry, e.key, kid)},
		{"not yet valid", signWith(t, jwt.SigningMethodES256, future, e.key, kid)},
		{"another key", signWith(t, jwt.SigningMethodES256, valid(), otherKey, kid)},
		{"another key, no kid", signWith(t, jwt.SigningMethodES256, valid(), otherKey, "")},
		{"alg none", noneTok},
		{"alg none, no signature", strings.TrimSuffix(noneTok, ".")},
		{"HS256 with the public key", signWith(t, jwt.SigningMethodHS256, valid(), pubDER, kid)},
		{"tampered payload", tampered},
		{"tampered signature", good[:len(good)-4] + "AAAA"},
		{"garbage", "not-a-jwt"},
		{"wrong scope", signWith(t, jwt.SigningMethodES256, wrongScope, e.key, kid)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodGet, path, "Bearer "+tc.token, nil)
			if r.status != http.StatusUnauthorized || r.code() != "UNAUTHORIZED" {
				t.Fatalf("status %d %s, want 401 UNAUTHORIZED", r.status, r.body)
			}
		})
	}
}

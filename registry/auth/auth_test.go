package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/store"
)

// env is a registry behind access control, served over loopback HTTP.
type env struct {
	t      testing.TB
	url    string
	svc    *Service
	robots *Robots
	key    *ecdsa.PrivateKey
	reg    *registry.Registry
	dir    string
	meta   *sqlite.Store
}

const testPassword = "s3cret-password"

// testHtpasswd writes an htpasswd file with the users, all with
// testPassword (bcrypt at the minimum cost: tests need no slowness).
func testHtpasswd(t testing.TB, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type envOptions struct {
	policy Policy
	limits Limits
	quotas []QuotaRule
	oidc   *OIDC
	open   bool
}

func newEnv(t testing.TB, o envOptions, users ...string) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	meta, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	var opts []registry.Option
	if o.quotas != nil {
		q, err := NewQuotas(o.quotas, meta)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, registry.WithQuota(q))
	}
	reg := registry.New(store.New(meta, blobstore.New(inmemory.New()), nil), opts...)
	robots, err := OpenRobots(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { robots.Close() })
	key, err := LoadOrCreateTokenKey(filepath.Join(dir, TokenKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	authz, err := NewAuthorizer(o.policy)
	if err != nil {
		t.Fatal(err)
	}
	htp, err := LoadHtpasswd(testHtpasswd(t, users...))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Open: o.open, Key: key, Users: htp, Robots: robots, OIDC: o.oidc, Authorizer: authz, Limits: o.limits,
		Protected: func(repo string) bool { return inNamespace(repo, "prod") }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Middleware(reg))
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL, svc: svc, robots: robots, key: key, reg: reg, dir: dir, meta: meta}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) code() string {
	var e struct {
		Errors []struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.body, &e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// do sends a request with the Authorization header auth ("" for none).
func (e *env) do(method, path, auth string, body []byte) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if strings.Contains(path, "/manifests/") && method == http.MethodPut {
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// token asks the token endpoint for scopes with credentials auth.
func (e *env) token(auth string, scopes ...string) (string, resp) {
	e.t.Helper()
	q := url.Values{"service": {"portcullis"}, "scope": scopes}
	r := e.do(http.MethodGet, TokenPath+"?"+q.Encode(), auth, nil)
	var tr tokenResponse
	_ = json.Unmarshal(r.body, &tr)
	return tr.Token, r
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushImage stores a one-blob image in repo:tag as the caller auth.
func (e *env) pushImage(repo, tag, auth string) (manifest []byte, blob string) {
	e.t.Helper()
	cfg := []byte(`{"n":"` + repo + tag + `"}`)
	d := digestOf(cfg)
	if r := e.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, auth, cfg); r.status != http.StatusCreated {
		e.t.Fatalf("push blob to %s: %d %s", repo, r.status, r.body)
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, d, len(cfg)))
	if r := e.do(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, auth, m); r.status != http.StatusCreated {
		e.t.Fatalf("push manifest to %s:%s: %d %s", repo, tag, r.status, r.body)
	}
	return m, d
}

var grantsForTests = Policy{
	Grants: []Grant{
		{Namespace: "staging", Roles: []registry.Action{registry.ActionPush}, Users: []string{"alice"}, Groups: []string{"devs"}},
		{Namespace: "team", Roles: []registry.Action{registry.ActionPull}, Users: []string{"alice"}},
		{Namespace: "other", Roles: []registry.Action{registry.ActionPush}, Users: []string{"bob"}},
		{Namespace: "prod", Roles: []registry.Action{registry.ActionPromote}, Robots: []string{"release"}},
		{Namespace: "*", Roles: []registry.Action{registry.ActionAuditRead}, Users: []string{"auditor"}},
	},
	AnonymousPull: []string{"public"},
	Groups:        map[string][]string{"devs": {"carol"}},
}

func TestAuthorizer(t *testing.T) {
	a, err := NewAuthorizer(grantsForTests)
	if err != nil {
		t.Fatal(err)
	}
	user := func(n string) *Principal { return &Principal{Name: n, Kind: KindUser, Groups: a.GroupsOf(n), authz: a} }
	robot := &Principal{Name: RobotPrefix + "release", Kind: KindRobot, authz: a}
	ownScopes := &Principal{Name: RobotPrefix + "ci", Kind: KindRobot, authz: a, robot: &Robot{Name: "ci", Scopes: []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPush}}}}}
	anon := &Principal{Kind: KindAnonymous, authz: a}
	// A user named like a robot is not the robot.
	impostor := user("release")
	tests := []struct {
		name   string
		p      *Principal
		repo   string
		action registry.Action
		want   bool
	}{
		{"push covers the namespace", user("alice"), "staging", registry.ActionPush, true},
		{"push covers below", user("alice"), "staging/app/x", registry.ActionPush, true},
		{"push includes pull", user("alice"), "staging/app", registry.ActionPull, true},
		{"prefix is a path segment", user("alice"), "stagingx/app", registry.ActionPull, false},
		{"pull is not push", user("alice"), "team/app", registry.ActionPush, false},
		{"push is not delete", user("alice"), "staging/app", registry.ActionDelete, false},
		{"push is not promote", user("alice"), "staging/app", registry.ActionPromote, false},
		{"group member", user("carol"), "staging/app", registry.ActionPush, true},
		{"no grant", user("dave"), "staging/app", registry.ActionPull, false},
		{"robot grant", robot, "prod/app", registry.ActionPromote, true},
		{"promote includes pull", robot, "prod/app", registry.ActionPull, true},
		{"user named like a robot", impostor, "prod/app", registry.ActionPromote, false},
		{"robot's own scope", ownScopes, "ci/app", registry.ActionPush, true},
		{"robot's own scope only", ownScopes, "staging/app", registry.ActionPull, false},
		{"anonymous pull", anon, "public/app", registry.ActionPull, true},
		{"anonymous push", anon, "public/app", registry.ActionPush, false},
		{"anonymous elsewhere", anon, "staging/app", registry.ActionPull, false},
		{"anyone pulls public", user("dave"), "public/x", registry.ActionPull, true},
		{"registry-wide role", user("auditor"), "", registry.ActionAuditRead, true},
		{"registry-wide role not given", user("alice"), "", registry.ActionAuditRead, false},
		{"repository roles are not registry-wide", user("alice"), "", registry.ActionPull, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Allowed(tc.p, tc.repo, tc.action); got != tc.want {
				t.Errorf("Allowed(%s, %q, %s) = %v, want %v", tc.p.display(), tc.repo, tc.action, got, tc.want)
			}
		})
	}
}

func TestAuthorizerRejectsBadGrants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grant Grant
		want  string
	}{
		{"unknown role", Grant{Namespace: "a", Roles: []registry.Action{"admin"}, Users: []string{"x"}}, "unknown role"},
		{"registry-wide on a namespace", Grant{Namespace: "a", Roles: []registry.Action{registry.ActionAuditRead}, Users: []string{"x"}}, "registry-wide"},
		{"nobody", Grant{Namespace: "a", Roles: []registry.Action{registry.ActionPull}}, "no users"},
		{"no namespace", Grant{Roles: []registry.Action{registry.ActionPull}, Users: []string{"x"}}, "namespace is required"},
		{"bad namespace", Grant{Namespace: "A B", Roles: []registry.Action{registry.ActionPull}, Users: []string{"x"}}, "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAuthorizer(Policy{Grants: []Grant{tc.grant}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewAuthorizer: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestHtpasswdRefusesWeakHashes(t *testing.T) {
	for _, line := range []string{"alice:$apr1$abc$def", "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "alice:plain", "robot$x:$2y$05$abcdefghijklmnopqrstuu5H0pJ1aYhE1z6Q3m9c8kqC3o7V8yXKa"} {
		if _, err := ParseHtpasswd([]byte(line + "\n")); err == nil {
			t.Errorf("ParseHtpasswd(%q) accepted it", line)
		}
	}
}

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

func TestRobots(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests}, "alice")
	ctx := context.Background()
	tok, rb, err := e.robots.Create(ctx, "ci", []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPush}}}, time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.robots.Create(ctx, "ci", []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPull}}}, 0, ""); err == nil {
		t.Fatal("a second active robot named ci was created")
	}
	// Only a hash is stored.
	for _, f := range []string{DBFile, DBFile + "-wal"} {
		raw, _ := os.ReadFile(filepath.Join(e.dir, f))
		if secret := tok[len(tok)-20:]; bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("the robot token is stored in clear in %s", f)
		}
	}
	for _, user := range []string{"robot$ci", "ci", ""} {
		if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic(user, tok), nil); r.status != http.StatusAccepted {
			t.Fatalf("robot (user %q) starts an upload in its scope: %d %s", user, r.status, r.body)
		}
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic("alice", tok), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("robot token under another user name: %d", r.status)
	}
	if r := e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/", basic("robot$ci", tok), nil); r.status != http.StatusForbidden {
		t.Fatalf("robot outside its scope: %d %s", r.status, r.body)
	}
	bearer, tr := e.token(basic("robot$ci", tok), "repository:ci/app:pull,push")
	if tr.status != http.StatusOK {
		t.Fatalf("robot token: %d %s", tr.status, tr.body)
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", "Bearer "+bearer, nil); r.status != http.StatusAccepted {
		t.Fatalf("robot bearer: %d %s", r.status, r.body)
	}
	wrong := tok[:len(tok)-2] + "xx"
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic("robot$ci", wrong), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong robot secret: %d", r.status)
	}

	// Revoked: the robot token and the registry tokens issued to it stop
	// working at once.
	if err := e.robots.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic("robot$ci", tok), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked robot, basic: %d", r.status)
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", "Bearer "+bearer, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked robot, bearer: %d", r.status)
	}
	if _, r := e.token(basic("robot$ci", tok), "repository:ci/app:pull"); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked robot at the token endpoint: %d", r.status)
	}
	l, err := e.robots.List(ctx)
	if err != nil || len(l) != 1 || l[0].ID != rb.ID || l[0].RevokedAt.IsZero() {
		t.Fatalf("List after revoke: %+v, %v", l, err)
	}

	// Expired.
	old, nightly, err := e.robots.Create(ctx, "nightly", []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPull}}}, time.Nanosecond, "")
	if err != nil {
		t.Fatal(err)
	}
	// Its expiry has passed on the wall clock, which the store reads
	// (Round(0) drops the monotonic reading): a wait of a nanosecond or so.
	for expires := nightly.ExpiresAt.Round(0); !time.Now().After(expires); {
		runtime.Gosched()
	}
	if r := e.do(http.MethodGet, "/v2/ci/app/tags/list", basic("robot$nightly", old), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("expired robot: %d", r.status)
	}
}

func TestBruteForceIsRateLimited(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests, limits: Limits{FailedAuth: Rate{Rate: 0.2, Burst: 3}}}, "alice")
	for i := range 3 {
		if r := e.do(http.MethodGet, "/v2/staging/app/tags/list", basic("alice", fmt.Sprintf("guess-%d", i)), nil); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, r.status)
		}
	}
	start := time.Now()
	for _, path := range []string{"/v2/staging/app/tags/list", TokenPath + "?scope=repository:staging/app:pull"} {
		r := e.do(http.MethodGet, path, basic("alice", "guess-4"), nil)
		if r.status != http.StatusTooManyRequests || r.code() != "TOOMANYREQUESTS" || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s after the burst of failures: %d %q %s", path, r.status, r.header.Get("Retry-After"), r.body)
		}
		// Even the right password waits: the limiter answers before any check.
		if r := e.do(http.MethodGet, path, basic("alice", testPassword), nil); r.status != http.StatusTooManyRequests {
			t.Fatalf("%s: right password while limited: %d", path, r.status)
		}
	}
	if time.Since(start) > time.Second {
		t.Fatalf("refusals took %v: the limiter must answer without checking passwords", time.Since(start))
	}
	// Requests without credentials are not slowed by others' failures.
	if r := e.do(http.MethodGet, "/v2/public/x/tags/list", "", nil); r.status == http.StatusTooManyRequests {
		t.Fatalf("anonymous request limited: %d", r.status)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests, limits: Limits{PerIdentity: Rate{Rate: 0.5, Burst: 2}, PerAddress: Rate{Rate: 1, Burst: 4}}}, "alice")
	alice := basic("alice", testPassword)
	for i := range 2 {
		if r := e.do(http.MethodGet, "/v2/", alice, nil); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.do(http.MethodGet, "/v2/", alice, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "alice") {
		t.Fatalf("third request of alice: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// The address still had tokens for one more request (anonymous), then none.
	if r := e.do(http.MethodGet, "/v2/", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous request: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/v2/", "", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("request over the address limit: %d", r.status)
	}
	// Health probes reach the handler (here the bare registry, which has
	// no such route: 404) without credentials, however limited the
	// address is: never 401, never 429.
	for _, p := range []string{"/healthz", "/readyz"} {
		for range 10 {
			if r := e.do(http.MethodGet, p, "", nil); r.status != http.StatusNotFound {
				t.Fatalf("%s over the address limit, without credentials: %d %s", p, r.status, r.body)
			}
		}
	}
	if r := e.do(http.MethodGet, "/metrics", "", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("/metrics over the address limit: %d, want 429 (only probes are exempt)", r.status)
	}
}

func TestConcurrentUploadLimit(t *testing.T) {
	authz, err := NewAuthorizer(grantsForTests)
	if err != nil {
		t.Fatal(err)
	}
	htp, err := LoadHtpasswd(testHtpasswd(t, "alice", "carol"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadOrCreateTokenKey(filepath.Join(t.TempDir(), TokenKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Key: key, Users: htp, Authorizer: authz, Limits: Limits{UploadsPerIdentity: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// A registry stand-in whose PATCH holds until released.
	entered, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPatch {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusAccepted)
	})))
	defer srv.Close()
	e := &env{t: t, url: srv.URL}
	alice, carol := basic("alice", testPassword), basic("carol", testPassword)
	const upload = "/v2/staging/app/blobs/uploads/"
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, srv.URL+upload+"some-id", strings.NewReader("bytes"))
		req.Header.Set("Authorization", alice)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	<-entered
	r := e.do(http.MethodPost, upload, alice, nil)
	if r.status != http.StatusTooManyRequests || r.code() != "TOOMANYREQUESTS" || r.header.Get("Retry-After") == "" {
		t.Fatalf("a second upload of alice: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Reads are not uploads; other identities have their own limit.
	if r := e.do(http.MethodGet, "/v2/staging/app/tags/list", alice, nil); r.status != http.StatusAccepted {
		t.Fatalf("a read while uploading: %d", r.status)
	}
	if r := e.do(http.MethodPost, upload, carol, nil); r.status != http.StatusAccepted {
		t.Fatalf("carol's upload: %d", r.status)
	}
	close(release)
	if s := <-done; s != http.StatusAccepted {
		t.Fatalf("first PATCH: %d", s)
	}
	if r := e.do(http.MethodPost, upload, alice, nil); r.status != http.StatusAccepted {
		t.Fatalf("upload after the first finished: %d", r.status)
	}
}

func TestCatalogAndMountHideWhatCallerCannotRead(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests}, "alice", "bob")
	alice, bob := basic("alice", testPassword), basic("bob", testPassword)
	_, blob := e.pushImage("staging/app", "1", alice)
	e.pushImage("other/app", "1", bob)
	catalog := func(auth string) string {
		r := e.do(http.MethodGet, "/v2/_catalog", auth, nil)
		if r.status != http.StatusOK {
			t.Fatalf("catalog: %d %s", r.status, r.body)
		}
		var c struct{ Repositories []string }
		_ = json.Unmarshal(r.body, &c)
		return strings.Join(c.Repositories, ",")
	}
	if got := catalog(alice); got != "staging/app" {
		t.Fatalf("alice's catalog: %q", got)
	}
	if got := catalog(bob); got != "other/app" {
		t.Fatalf("bob's catalog: %q", got)
	}
	// With a bearer token for the catalog only, the listing is still what
	// alice may pull.
	tok, _ := e.token(alice, "registry:catalog:*")
	if got := catalog("Bearer " + tok); got != "staging/app" {
		t.Fatalf("alice's catalog with a token: %q", got)
	}
	if r := e.do(http.MethodGet, "/v2/_catalog", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous catalog: %d", r.status)
	}
	// Pagination counts only what is shown.
	e.pushImage("staging/app2", "1", alice)
	if r := e.do(http.MethodGet, "/v2/_catalog?n=1", alice, nil); !strings.Contains(string(r.body), `"staging/app"`) || !strings.Contains(r.header.Get("Link"), "last=staging%2Fapp") {
		t.Fatalf("first page: %s %q", r.body, r.header.Get("Link"))
	}

	// bob may push to other/ but not read staging/: mounting from staging
	// answers as if the blob were not there (a new upload, 202).
	r := e.do(http.MethodPost, "/v2/other/app/blobs/uploads/?mount="+blob+"&from=staging/app", bob, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("bob mounts from staging: %d %s", r.status, r.body)
	}
	// ...exactly as for a repository that does not exist.
	r2 := e.do(http.MethodPost, "/v2/other/app/blobs/uploads/?mount="+blob+"&from=nothing/here", bob, nil)
	if r2.status != r.status {
		t.Fatalf("mount from a missing repository: %d, from an unreadable one: %d", r2.status, r.status)
	}
	if r := e.do(http.MethodHead, "/v2/other/app/blobs/"+blob, bob, nil); r.status != http.StatusNotFound {
		t.Fatalf("the blob was linked into other/app: %d", r.status)
	}
	// alice may read staging: her mount works.
	e2 := e.do(http.MethodPost, "/v2/staging/copy/blobs/uploads/?mount="+blob+"&from=staging/app", alice, nil)
	if e2.status != http.StatusCreated {
		t.Fatalf("alice mounts: %d %s", e2.status, e2.body)
	}
}

func TestQuotaExceededLeavesNothing(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests, quotas: []QuotaRule{{Namespace: "staging", Limit: 4096}}}, "alice")
	alice := basic("alice", testPassword)
	small := bytes.Repeat([]byte("a"), 1000)
	big := bytes.Repeat([]byte("b"), 5000)
	if r := e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/?digest="+digestOf(small), alice, small); r.status != http.StatusCreated {
		t.Fatalf("small blob: %d %s", r.status, r.body)
	}
	// Monolithic upload over the quota.
	r := e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/?digest="+digestOf(big), alice, big)
	if r.status != http.StatusForbidden || r.code() != "DENIED" || !strings.Contains(string(r.body), "quota of 4.0 KiB") {
		t.Fatalf("big blob: %d %s", r.status, r.body)
	}
	// Chunked upload: the last PUT is refused and the session is gone.
	r = e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/", alice, nil)
	loc := r.header.Get("Location")
	if r := e.do(http.MethodPatch, loc, alice, big); r.status != http.StatusAccepted {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPut, loc+"?digest="+digestOf(big), alice, nil)
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "staging is over its storage quota") {
		t.Fatalf("closing the upload: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodGet, loc, alice, nil); r.status != http.StatusNotFound {
		t.Fatalf("the refused upload session: %d, want 404", r.status)
	}
	if r := e.do(http.MethodHead, "/v2/staging/app/blobs/"+digestOf(big), alice, nil); r.status != http.StatusNotFound {
		t.Fatalf("the refused blob is linked: %d", r.status)
	}
	// The same small blob again is free; other namespaces have no quota.
	if r := e.do(http.MethodPost, "/v2/staging/other/blobs/uploads/?digest="+digestOf(small), alice, small); r.status != http.StatusCreated {
		t.Fatalf("small blob again: %d %s", r.status, r.body)
	}
	q, _ := NewQuotas([]QuotaRule{{Namespace: "staging", Limit: 4096}}, e.meta)
	u, err := q.Report(context.Background(), []string{"team"})
	if err != nil || len(u) != 2 || u[0].Namespace != "staging" || u[0].Used != 1000 || u[0].Limit != 4096 || u[1].Used != 0 {
		t.Fatalf("usage report: %+v, %v", u, err)
	}
}

func TestOpenModePassesEverything(t *testing.T) {
	e := newEnv(t, envOptions{policy: Policy{}, open: true})
	e.pushImage("anything/app", "1", "")
	if r := e.do(http.MethodGet, "/v2/_catalog", "", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "anything/app") {
		t.Fatalf("open catalog: %d %s", r.status, r.body)
	}
}

package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
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
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/quota"
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
	quotas []quota.Rule
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
		q, err := quota.New(o.quotas, meta)
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

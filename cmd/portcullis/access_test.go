package main

// Access control end to end against a real `portcullis serve`: the access
// matrix (every role x every endpoint, with basic auth and with the token
// flow), real clients logging in, robots and quotas through the CLI, the
// refusal to serve without authentication, TLS with certificate reload.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const accessPassword = "correct horse battery staple"

// writeHtpasswd writes users with accessPassword (bcrypt, minimum cost).
func writeHtpasswd(t testing.TB, path string, users ...string) {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(accessPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	writeFile(t, path, []byte(b.String()))
}

// authTransport sends requests as a user: with basic auth on every
// request, or through the token flow as registry clients do (on a 401
// challenge, fetch a token for the challenge's scope from its realm, and
// retry with it). user "" is anonymous (anonymous tokens in bearer mode).
type authTransport struct {
	user, pass string
	bearer     bool
	base       http.RoundTripper
}

var challengeParamRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	send := func(auth string) (*http.Response, error) {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return a.base.RoundTrip(r)
	}
	if !a.bearer {
		auth := ""
		if a.user != "" {
			r := &http.Request{Header: http.Header{}}
			r.SetBasicAuth(a.user, a.pass)
			auth = r.Header.Get("Authorization")
		}
		return send(auth)
	}
	resp, err := send("")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ch := resp.Header.Get("WWW-Authenticate")
	if strings.HasPrefix(ch, "Basic ") {
		if a.user == "" {
			return resp, nil
		}
		// A browser's answer to a basic challenge.
		resp.Body.Close()
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(a.user, a.pass)
		return send(r.Header.Get("Authorization"))
	}
	params := map[string]string{}
	for _, m := range challengeParamRE.FindAllStringSubmatch(ch, -1) {
		params[m[1]] = m[2]
	}
	if params["realm"] == "" {
		return resp, nil
	}
	resp.Body.Close()
	q := url.Values{"service": {params["service"]}}
	if params["scope"] != "" {
		q.Set("scope", params["scope"])
	}
	treq, _ := http.NewRequest(http.MethodGet, params["realm"]+"?"+q.Encode(), nil)
	if a.user != "" {
		treq.SetBasicAuth(a.user, a.pass)
	}
	tresp, err := a.base.RoundTrip(treq)
	if err != nil {
		return nil, err
	}
	defer tresp.Body.Close()
	var tok struct{ Token string }
	if tresp.StatusCode != http.StatusOK || json.NewDecoder(tresp.Body).Decode(&tok) != nil {
		return nil, fmt.Errorf("token endpoint: %s", tresp.Status)
	}
	return send("Bearer " + tok.Token)
}

// clientAs returns an HTTP client sending requests as user.
func clientAs(t testing.TB, user string, bearer bool) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	pass := accessPassword
	if user == "" {
		pass = ""
	}
	return &http.Client{Transport: &authTransport{user: user, pass: pass, bearer: bearer, base: base}, Timeout: time.Minute}
}

// matrixConfig grants one role on everything to one user each; outsider
// may push to other/ only; nobody has no grant; public/ is anonymous.
const matrixConfig = `auth:
  htpasswd: htpasswd
  grants:
    - {namespace: "*", roles: [pull], users: [puller]}
    - {namespace: "*", roles: [push], users: [pusher]}
    - {namespace: "*", roles: [promote], users: [promoter]}
    - {namespace: "*", roles: [delete], users: [deleter]}
    - {namespace: "*", roles: [audit-read], users: [auditor]}
    - {namespace: "*", roles: [policy-admin], users: [admin]}
    - {namespace: other, roles: [push], users: [outsider]}
  anonymousPull: [public]
`

var matrixUsers = []string{"", "nobody", "puller", "pusher", "promoter", "deleter", "auditor", "admin", "outsider"}

// startAuthServer starts a server with config (htpasswd users given) in
// a fresh directory and returns it and the directory of its config.
func startAuthServer(t *testing.T, config string, users ...string) (*server, string, string) {
	t.Helper()
	dir, data := t.TempDir(), t.TempDir()
	writeHtpasswd(t, filepath.Join(dir, "htpasswd"), users...)
	writeFile(t, filepath.Join(dir, "portcullis.yaml"), []byte(config))
	return startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml")), dir, data
}

func TestAccessMatrix(t *testing.T) {
	s, _, _ := startAuthServer(t, matrixConfig, matrixUsers[1:]...)
	img := newTestImage(t, map[string][]byte{"app/bin": randomBytes(2048)})
	pusher := clientAs(t, "pusher", false)
	for _, repo := range []string{"staging/app", "public/app"} {
		pushBlob(t, pusher, s, repo, img.Config)
		pushBlob(t, pusher, s, repo, img.Layer)
		putManifest(t, pusher, s, repo, "1", mediaTypeOCIManifest, img.Manifest)
	}
	layer := sha256Digest(img.Layer)
	missing := sha256Digest([]byte("not stored anywhere"))
	const bogusUpload = "00000000-0000-0000-0000-000000000000"
	promotion := []byte(`{"source":"staging/app:absent","target":"prod/app:9"}`)
	readers := []string{"puller", "pusher", "promoter"}
	everyone := append([]string{}, matrixUsers...)
	authenticated := matrixUsers[1:]

	// Allowed means access control let the request through: any answer
	// but 401 and 403 (requests that pass are made to fail later, with 400
	// or 404, so that they change nothing). Denied is 401 (anonymous, or
	// a token without the scope) or 403 (an identity without the role).
	cases := []struct {
		name, method, path string
		body               []byte
		allowed            []string
	}{
		{"base", "GET", "/v2/", nil, authenticated},
		{"blob GET", "GET", "/v2/staging/app/blobs/" + layer, nil, readers},
		{"blob HEAD", "HEAD", "/v2/staging/app/blobs/" + layer, nil, readers},
		{"blob GET, anonymous namespace", "GET", "/v2/public/app/blobs/" + layer, nil, everyone},
		{"blob DELETE", "DELETE", "/v2/staging/app/blobs/" + missing, nil, []string{"deleter"}},
		{"blob DELETE, anonymous namespace", "DELETE", "/v2/public/app/blobs/" + missing, nil, []string{"deleter"}},
		{"upload start", "POST", "/v2/staging/app/blobs/uploads/?digest=" + missing, []byte("x"), []string{"pusher"}},
		{"upload start, protected", "POST", "/v2/prod/app/blobs/uploads/", nil, []string{"promoter"}},
		{"upload start, anonymous namespace", "POST", "/v2/public/app/blobs/uploads/?digest=" + missing, []byte("x"), []string{"pusher"}},
		{"upload status", "GET", "/v2/staging/app/blobs/uploads/" + bogusUpload, nil, []string{"pusher"}},
		{"upload chunk", "PATCH", "/v2/staging/app/blobs/uploads/" + bogusUpload, []byte("x"), []string{"pusher"}},
		{"upload finish, protected", "PUT", "/v2/prod/app/blobs/uploads/" + bogusUpload + "?digest=" + missing, nil, []string{"promoter"}},
		{"upload cancel", "DELETE", "/v2/staging/app/blobs/uploads/" + bogusUpload, nil, []string{"pusher"}},
		{"mount", "POST", "/v2/staging/copy/blobs/uploads/?mount=" + missing + "&from=staging/app", nil, []string{"pusher"}},
		{"manifest GET", "GET", "/v2/staging/app/manifests/1", nil, readers},
		{"manifest HEAD", "HEAD", "/v2/staging/app/manifests/1", nil, readers},
		{"manifest GET, anonymous namespace", "GET", "/v2/public/app/manifests/1", nil, everyone},
		{"manifest PUT", "PUT", "/v2/staging/app/manifests/2", []byte("{}"), []string{"pusher"}},
		{"manifest PUT, protected", "PUT", "/v2/prod/app/manifests/2", []byte("{}"), []string{"promoter"}},
		{"manifest DELETE", "DELETE", "/v2/staging/app/manifests/" + missing, nil, []string{"deleter"}},
		{"tags", "GET", "/v2/staging/app/tags/list", nil, readers},
		{"tags, anonymous namespace", "GET", "/v2/public/app/tags/list", nil, everyone},
		{"referrers", "GET", "/v2/staging/app/referrers/" + img.Digest, nil, readers},
		{"catalog", "GET", "/v2/_catalog", nil, authenticated},
		{"promotion", "POST", "/portcullis/v1/promotions", promotion, []string{"promoter"}},
		{"decisions", "GET", "/portcullis/v1/decisions", nil, []string{"auditor"}},
		{"decision", "GET", "/portcullis/v1/decisions/0", nil, []string{"auditor"}},
		{"checkpoints", "GET", "/portcullis/v1/checkpoints", nil, []string{"auditor"}},
		{"running", "GET", "/portcullis/v1/running", nil, []string{"auditor"}},
		{"decisions UI", "GET", "/ui/decisions", nil, []string{"auditor"}},
		{"policies", "GET", "/portcullis/v1/policies", nil, []string{"admin"}},
		{"policies reload", "POST", "/portcullis/v1/policies/reload", nil, []string{"admin"}},
		{"unknown path", "GET", "/elsewhere", nil, authenticated},
		{"promotion, unreadable body", "POST", "/portcullis/v1/promotions", []byte("{"), authenticated},
	}
	// An anonymous token (what a client gets from the realm without
	// credentials) opens the ping and the catalog, which shows only the
	// anonymous namespaces.
	anonymousToken := map[string]bool{"base": true, "catalog": true}
	for _, mode := range []string{"basic", "token"} {
		for _, user := range matrixUsers {
			c := clientAs(t, user, mode == "token")
			who := user
			if who == "" {
				who = "anonymous"
			}
			for _, tc := range cases {
				t.Run(mode+"/"+who+"/"+tc.name, func(t *testing.T) {
					var body io.Reader
					if tc.body != nil {
						body = bytes.NewReader(tc.body)
					}
					req, _ := http.NewRequest(tc.method, s.URL(tc.path), body)
					req.Header.Set("Accept", mediaTypeOCIManifest)
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					denied := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
					want := slices.Contains(tc.allowed, user) || (mode == "token" && user == "" && anonymousToken[tc.name])
					if want == denied {
						t.Fatalf("%s %s as %s: %d %s; want allowed=%v", tc.method, tc.path, who, resp.StatusCode, b, want)
					}
					if denied && user == "" && resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("anonymous refused with %d, want 401 and a challenge", resp.StatusCode)
					}
					if denied && user != "" && mode == "basic" && resp.StatusCode != http.StatusForbidden {
						t.Fatalf("%s refused with %d, want 403 DENIED", who, resp.StatusCode)
					}
					wantChallenge := "Bearer realm="
					if strings.HasPrefix(tc.path, "/ui/") {
						wantChallenge = "Basic realm="
					}
					if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), wantChallenge) {
						t.Fatalf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
					}
				})
			}
		}
	}

	// The catalog shows only what each caller may pull.
	for user, want := range map[string][]string{
		"puller":   {"public/app", "staging/app"},
		"nobody":   {"public/app"},
		"outsider": {"public/app"},
		"":         {"public/app"},
	} {
		resp := mustDo(t, clientAs(t, user, true), http.StatusOK, "GET", s.URL("/v2/_catalog"), nil, nil)
		var cat struct{ Repositories []string }
		unmarshal(t, "catalog", resp.Body, &cat)
		if !slices.Equal(cat.Repositories, want) {
			t.Errorf("catalog of %s: %q, want %q", user, cat.Repositories, want)
		}
	}
	// A mount from a repository the caller may not read answers as if the
	// blob were absent: 202, a new upload, nothing linked.
	outsider := clientAs(t, "outsider", true)
	resp := mustDo(t, outsider, http.StatusAccepted, "POST", s.URL("/v2/other/app/blobs/uploads/?mount="+layer+"&from=staging/app"), nil, nil)
	_ = resp
	mustDo(t, outsider, http.StatusNotFound, "HEAD", s.URL("/v2/other/app/blobs/"+layer), nil, nil)
	mustDo(t, pusher, http.StatusCreated, "POST", s.URL("/v2/other/app/blobs/uploads/?mount="+layer+"&from=staging/app"), nil, nil)

	// The gate's record carries the authenticated actor: promoter pushes
	// the (unsigned) image to prod/, the gate denies it, and the decision
	// names promoter.
	promoter := clientAs(t, "promoter", true)
	r := mustDo(t, promoter, http.StatusForbidden, "PUT", s.URL("/v2/prod/app/manifests/1"), http.Header{"Content-Type": {mediaTypeOCIManifest}}, img.Manifest)
	if !strings.Contains(string(r.Body), "signature") {
		t.Fatalf("the gate's denial: %s", r.Body)
	}
	r = mustDo(t, clientAs(t, "auditor", true), http.StatusOK, "GET", s.URL("/portcullis/v1/decisions?actor=promoter"), nil, nil)
	if !regexp.MustCompile(`"identity":\s*"promoter"`).Match(r.Body) {
		t.Fatalf("no decision with actor promoter: %s", r.Body)
	}
}

package main

// Access control end to end against a real `portcullis serve`: the access
// matrix (every role x every endpoint, with basic auth and with the token
// flow), real clients logging in, robots and quotas through the CLI, the
// refusal to serve without authentication, TLS with certificate reload.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry/auth"
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

// dockerConfigEnv is an environment whose docker config (used by crane,
// cosign, oras with --registry-config, ...) lives in dir.
func dockerConfigEnv(dir string) []string {
	return []string{"DOCKER_CONFIG=" + filepath.Join(dir, "docker"), "HOME=" + dir}
}

// TestAuthRealClients: crane, skopeo, oras and cosign log in and push
// where their user may, and are refused where not; a robot created with
// the CLI pushes until it is revoked.
func TestAuthRealClients(t *testing.T) {
	for _, tool := range []string{"crane", "skopeo", "oras", "cosign3"} {
		requireTool(t, tool)
	}
	config := `auth:
  htpasswd: htpasswd
  grants:
    - {namespace: staging, roles: [push], users: [alice]}
    - {namespace: staging, roles: [pull], users: [bob]}
`
	s, dir, data := startAuthServer(t, config, "alice", "bob")
	home := func(user string) string {
		d := filepath.Join(dir, "home-"+user)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	aliceEnv, bobEnv := dockerConfigEnv(home("alice")), dockerConfigEnv(home("bob"))
	layer := filepath.Join(dir, "layer.tar")
	writeFile(t, layer, tarOf(t, map[string][]byte{"data/random.bin": randomBytes(64 << 10)}))
	refused := func(what string, err error, stderr string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: succeeded, want it refused", what)
		}
		if !strings.Contains(err.Error(), "DENIED") && !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "denied") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
			t.Fatalf("%s: failed without saying it was refused: %v", what, err)
		}
	}

	// crane auth login writes the docker config; crane uses the token flow.
	runTool(t, dir, aliceEnv, "crane", "auth", "login", s.Addr, "-u", "alice", "-p", accessPassword)
	runTool(t, dir, bobEnv, "crane", "auth", "login", s.Addr, "-u", "bob", "-p", accessPassword)
	out, _ := runTool(t, dir, aliceEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/crane:1")
	img := strings.TrimSpace(out)
	_, stderr, err := tryTool(t, dir, bobEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/crane:2")
	refused("crane push as bob (pull only)", err, stderr)
	_, stderr, err = tryTool(t, dir, aliceEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/team/crane:1")
	refused("crane push as alice outside staging", err, stderr)
	runTool(t, dir, bobEnv, "crane", "manifest", img) // bob may pull
	_, stderr, err = tryTool(t, dir, dockerConfigEnv(home("nobody")), "crane", "manifest", img)
	refused("crane pull without logging in", err, stderr)
	mallory := dockerConfigEnv(home("mallory"))
	runTool(t, dir, mallory, "crane", "auth", "login", s.Addr, "-u", "alice", "-p", "wrong") // only writes the config
	_, stderr, err = tryTool(t, dir, mallory, "crane", "manifest", img)
	refused("crane pull with a wrong password", err, stderr)

	// portcullis promote sends the credentials of the docker config: alice
	// is authenticated, and refused (she may not promote), with the reason:
	// a refusal of access control, not a policy denial, so exit 2.
	t.Setenv("DOCKER_CONFIG", filepath.Join(home("alice"), "docker"))
	var pout, perr bytes.Buffer
	if code := run(context.Background(), []string{"promote", img, s.Addr + "/prod/crane:1"}, &pout, &perr); code != exitFailed || !strings.Contains(perr.String(), "refused (access)") || !strings.Contains(perr.String(), "alice may not promote") {
		t.Fatalf("portcullis promote as alice: exit %d\n%s%s", code, pout.String(), perr.String())
	}

	// skopeo --creds / --dest-creds.
	policy := filepath.Join(dir, "policy.json")
	writeFile(t, policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
	layout := newTestImage(t, map[string][]byte{"skopeo/payload.bin": randomBytes(32 << 10)})
	layout.writeLayout(t, filepath.Join(dir, "layout"), "v1")
	skopeoEnv := []string{"HOME=" + home("skopeo"), "REGISTRY_AUTH_FILE=" + filepath.Join(home("skopeo"), "auth.json")}
	copyAs := func(creds, dst string) (string, string, error) {
		return tryTool(t, dir, skopeoEnv, "skopeo", "--policy", policy, "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:layout:v1", "docker://"+s.Addr+"/"+dst)
	}
	if _, _, err := copyAs("alice:"+accessPassword, "staging/skopeo:v1"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = copyAs("bob:"+accessPassword, "staging/skopeo:v2")
	refused("skopeo copy as bob", err, stderr)
	_, stderr, err = copyAs("alice:"+accessPassword, "team/skopeo:v1")
	refused("skopeo copy as alice outside staging", err, stderr)
	out, _ = runTool(t, dir, skopeoEnv, "skopeo", "inspect", "--tls-verify=false", "--creds", "bob:"+accessPassword, "--raw", "docker://"+s.Addr+"/staging/skopeo:v1")
	equalStrings(t, "digest skopeo read as bob", sha256Digest([]byte(out)), layout.Digest)
	_, stderr, err = tryTool(t, dir, skopeoEnv, "skopeo", "inspect", "--tls-verify=false", "--creds", "bob:wrong", "--raw", "docker://"+s.Addr+"/staging/skopeo:v1")
	refused("skopeo inspect with a wrong password", err, stderr)

	// oras login (its own registry config file).
	writeFile(t, filepath.Join(dir, "artifact.txt"), []byte("artifact "+uniqueName("")))
	orasAs := func(user string, args ...string) (string, string, error) {
		cfgFile := filepath.Join(home(user), "oras.json")
		return tryTool(t, dir, []string{"HOME=" + home(user)}, "oras", append(args, "--plain-http", "--registry-config", cfgFile)...)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, _, err := orasAs(u, "login", s.Addr, "-u", u, "-p", accessPassword); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := orasAs("alice", "push", s.Addr+"/staging/oras:v1", "artifact.txt"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = orasAs("bob", "push", s.Addr+"/staging/oras:v2", "artifact.txt")
	refused("oras push as bob", err, stderr)
	_, stderr, err = orasAs("alice", "push", s.Addr+"/team/oras:v1", "artifact.txt")
	refused("oras push as alice outside staging", err, stderr)
	if _, _, err := orasAs("bob", "pull", "-o", filepath.Join(dir, "pulled"), s.Addr+"/staging/oras:v1"); err != nil {
		t.Fatal(err)
	}

	// cosign with the docker config crane wrote: alice may sign (a push
	// into staging), bob may not.
	keys := home("keys")
	runTool(t, keys, cosignEnv(keys), "cosign3", "generate-key-pair")
	cosignAs := func(env []string) (string, string, error) {
		return tryTool(t, keys, append(cosignEnv(keys), env[0]), "cosign3", "sign", "--key", filepath.Join(keys, "cosign.key"), "--yes", "--tlog-upload=false", "--use-signing-config=false", img)
	}
	if _, _, err := cosignAs(aliceEnv); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = cosignAs(bobEnv)
	refused("cosign sign as bob", err, stderr)

	// A robot created with the CLI (the server reads it within seconds)
	// pushes in its scope only, until it is revoked.
	var robotOut, robotErr bytes.Buffer
	if code := run(context.Background(), []string{"robot", "create", "--data", data, "--name", "ci", "--scope", "staging=push", "--expires", "1h"}, &robotOut, &robotErr); code != 0 {
		t.Fatalf("robot create: %d %s", code, robotErr.String())
	}
	token := strings.TrimSpace(robotOut.String())
	ciEnv := dockerConfigEnv(home("ci"))
	runTool(t, dir, ciEnv, "crane", "auth", "login", s.Addr, "-u", "robot$ci", "-p", token)
	runTool(t, dir, ciEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/robot:1")
	_, stderr, err = tryTool(t, dir, ciEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/team/robot:1")
	refused("robot push outside its scope", err, stderr)
	robotOut.Reset()
	if code := run(context.Background(), []string{"robot", "list", "--data", data}, &robotOut, &robotErr); code != 0 || !strings.Contains(robotOut.String(), "robot$ci") || !strings.Contains(robotOut.String(), "staging=push") || strings.Contains(robotOut.String(), token) {
		t.Fatalf("robot list: %d\n%s", code, robotOut.String())
	}
	if code := run(context.Background(), []string{"robot", "revoke", "--data", data, "ci"}, &robotOut, &robotErr); code != 0 {
		t.Fatalf("robot revoke: %d %s", code, robotErr.String())
	}
	time.Sleep(2500 * time.Millisecond) // the server's view of robots is at most 2s old
	_, stderr, err = tryTool(t, dir, ciEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/robot:2")
	refused("revoked robot", err, stderr)
	robotErr.Reset()
	if code := run(context.Background(), []string{"robot", "revoke", "--data", data, "ci"}, &robotOut, &robotErr); code == 0 || strings.Count(strings.TrimSpace(robotErr.String()), "\n") != 0 {
		t.Fatalf("revoking twice: %d %q, want one error line", code, robotErr.String())
	}
}

// TestQuotaMidPush: crane pushes an image whose layer does not fit in
// the namespace's quota: the push fails with DENIED and the quota in the
// message, and nothing of it is visible; `portcullis quota` shows usage.
func TestQuotaMidPush(t *testing.T) {
	requireTool(t, "crane")
	config := `auth:
  htpasswd: htpasswd
  grants:
    - {namespace: small, roles: [push], users: [alice]}
    - {namespace: big, roles: [push], users: [alice]}
quotas:
  - {namespace: small, size: 200KiB}
`
	s, dir, data := startAuthServer(t, config, "alice")
	env := dockerConfigEnv(dir)
	runTool(t, dir, env, "crane", "auth", "login", s.Addr, "-u", "alice", "-p", accessPassword)
	writeFile(t, filepath.Join(dir, "small.tar"), tarOf(t, map[string][]byte{"small.bin": randomBytes(50 << 10)}))
	writeFile(t, filepath.Join(dir, "large.tar"), tarOf(t, map[string][]byte{"large.bin": randomBytes(400 << 10)}))
	runTool(t, dir, env, "crane", "append", "-f", "small.tar", "-t", s.Addr+"/small/app:1")
	_, stderr, err := tryTool(t, dir, env, "crane", "append", "-f", "large.tar", "-t", s.Addr+"/small/app:2")
	if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "quota of 200.0 KiB") {
		t.Fatalf("push over the quota: %v %s", err, stderr)
	}
	out, _ := runTool(t, dir, env, "crane", "ls", s.Addr+"/small/app")
	equalStrings(t, "tags after the refused push", strings.TrimSpace(out), "1")
	// A refused first push into a new repository leaves nothing in the
	// catalog (its small config blob may be accepted before the layer is
	// refused). Upload sessions the client abandons when it gives up are
	// gc's (gc.uploadMaxAge).
	if _, stderr, err := tryTool(t, dir, env, "crane", "append", "-f", "large.tar", "-t", s.Addr+"/small/new:1"); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("first push over the quota: %v %s", err, stderr)
	}
	out, _ = runTool(t, dir, env, "crane", "catalog", s.Addr)
	equalStrings(t, "catalog after the refused push", strings.Join(strings.Fields(out), " "), "small/app")
	runTool(t, dir, env, "crane", "append", "-f", "large.tar", "-t", s.Addr+"/big/app:1") // no quota there

	var stdout, errb bytes.Buffer
	if code := run(context.Background(), []string{"quota", "--data", data, "--config", filepath.Join(dir, "portcullis.yaml"), "--output", "json"}, &stdout, &errb); code != 0 {
		t.Fatalf("portcullis quota: %d %s", code, errb.String())
	}
	var usage []struct {
		Namespace   string
		Used, Limit int64
	}
	unmarshal(t, "quota output", stdout.Bytes(), &usage)
	byNS := map[string][2]int64{}
	for _, u := range usage {
		byNS[u.Namespace] = [2]int64{u.Used, u.Limit}
	}
	if u := byNS["small"]; u[1] != 200<<10 || u[0] <= 0 || u[0] > 100<<10 {
		t.Fatalf("usage of small: %v (want some, under 100 KiB: the large layer is not counted)", u)
	}
	if u := byNS["big"]; u[1] != 0 || u[0] < 400<<10 {
		t.Fatalf("usage of big: %v", u)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"quota", "--data", data, "--config", filepath.Join(dir, "portcullis.yaml")}, &stdout, &errb); code != 0 || !regexp.MustCompile(`small\s+\S+ KiB\s+200.0 KiB\s+\d+%`).MatchString(stdout.String()) {
		t.Fatalf("portcullis quota: %d\n%s", code, stdout.String())
	}
}

// runServe runs `portcullis serve` as a process and returns its exit
// error and output once it exits (or kills it after a timeout).
func runServeUntilExit(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestServeRefusesNonLoopbackWithoutAuth(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := fmt.Sprintf("0.0.0.0:%d", port)
	out, err := runServeUntilExit(t, time.Minute, "--addr", addr, "--data", t.TempDir())
	if err == nil || !strings.Contains(out, "refusing to serve "+addr+" without authentication") {
		t.Fatalf("serve on %s without auth: %v\n%s", addr, err, out)
	}
	// With authentication but plain HTTP on a non-loopback address: refused too.
	dir := t.TempDir()
	writeHtpasswd(t, filepath.Join(dir, "htpasswd"), "alice")
	writeFile(t, filepath.Join(dir, "portcullis.yaml"), []byte("auth:\n  htpasswd: htpasswd\n"))
	out, err = runServeUntilExit(t, time.Minute, "--addr", addr, "--data", t.TempDir(), "--config", filepath.Join(dir, "portcullis.yaml"))
	if err == nil || !strings.Contains(out, "refusing plain HTTP on "+addr) {
		t.Fatalf("serve plain HTTP on %s: %v\n%s", addr, err, out)
	}
	// --insecure-no-auth with plain HTTP explicitly allowed: it serves, open,
	// and says so.
	writeFile(t, filepath.Join(dir, "plain.yaml"), []byte("tls:\n  allowPlainHTTP: true\n"))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd := exec.Command(exe, "serve", "--addr", addr, "--data", t.TempDir(), "--insecure-no-auth", "--config", filepath.Join(dir, "plain.yaml"))
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v2/", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("open registry: %s", resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve --insecure-no-auth on %s did not answer: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "AUTHENTICATION IS OFF (--insecure-no-auth)") {
		t.Fatalf("no loud warning in the log:\n%s", logs.String())
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 named cn.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	// Write both, then rename: the server must never see half a pair.
	writeFile(t, keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	writeFile(t, certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err := os.Rename(keyFile+".tmp", keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(certFile+".tmp", certFile); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestRegistryTLS serves the registry over TLS from certificate files and
// picks up a new certificate without a restart.
func TestRegistryTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile, "first")
	writeFile(t, filepath.Join(dir, "portcullis.yaml"), []byte("tls:\n  certFile: tls.crt\n  keyFile: tls.key\n"))
	pool := x509.NewCertPool()
	pool.AddCert(first)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var s *server
	var err error
	for range 3 {
		if s, err = tryStartServerWith(t, client, t.TempDir(), "--config", filepath.Join(dir, "portcullis.yaml")); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	img := newTestImage(t, map[string][]byte{"tls.txt": []byte("over TLS")})
	pushBlob(t, client, s, "staging/tls", img.Config)
	pushBlob(t, client, s, "staging/tls", img.Layer)
	putManifest(t, client, s, "staging/tls", "1", mediaTypeOCIManifest, img.Manifest)
	mustDo(t, client, http.StatusOK, "GET", s.URL("/v2/staging/tls/manifests/1"), manifestAccept, nil)
	// Plain HTTP to the TLS port is not served.
	if resp, err := http.Get("http://" + s.Addr + "/v2/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}
	// Rotate: new connections get the new certificate.
	time.Sleep(10 * time.Millisecond) // a different modification time
	second := writeCert(t, certFile, keyFile, "second")
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	got := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if got.Subject.CommonName != "second" || !got.Equal(second) {
		t.Fatalf("after rotation the server presents %q, want the new certificate", got.Subject.CommonName)
	}
}

// TestPoliciesPath: the policies API is served where access control asks
// for policy-admin.
func TestPoliciesPath(t *testing.T) {
	t.Parallel()
	if policy.HandlerPath != auth.PoliciesPath {
		t.Fatalf("policy.HandlerPath %q, auth.PoliciesPath %q", policy.HandlerPath, auth.PoliciesPath)
	}
}

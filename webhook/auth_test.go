package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/webhook/webhooktest"
)

// authServer serves a handler deciding with d over HTTPS, authenticating
// with cfg, and returns its URL and the CA that signed its certificate.
func authServer(t *testing.T, cfg AuthConfig, d Decider, hc Config) (url string, serverCA *x509.CertPool) {
	t.Helper()
	files, err := SelfSigned(t.TempDir(), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := NewCertReloader(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := NewAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc.Authenticator = auth
	srv := httptest.NewUnstartedServer(newHandler(t, hc, d, &fakeResolver{}))
	srv.Listener = tls.NewListener(srv.Listener, auth.TLSConfig(certs.GetCertificate))
	srv.Start()
	t.Cleanup(srv.Close)
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	serverCA = x509.NewCertPool()
	serverCA.AppendCertsFromPEM(pem)
	return strings.Replace(srv.URL, "http://", "https://", 1), serverCA
}

// call POSTs the pod fixture to url+path as a client with cert (if any)
// and token (if any), on a new connection.
func call(t *testing.T, url, path string, roots *x509.CertPool, cert *tls.Certificate, token string) (int, string, error) {
	t.Helper()
	tc := &tls.Config{RootCAs: roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(fixture(t, "pod.json")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestAuth: only the API server's client certificate (from the client CA,
// with an accepted name) or a configured bearer token gets an answer;
// everyone else gets 401 and learns nothing, on every path (I5).
func TestAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	apiserver := webhooktest.NewClientPKI(t, dir, "kube-apiserver")
	// The right name from another CA; a wrong name from the right CA.
	stranger := webhooktest.NewClientPKI(t, t.TempDir(), "kube-apiserver")
	sameCA := sameCAClient(t, dir, "mallory")
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, "s3cret-0123456789-1\n")
	d := newFakeDecider()
	url, roots := authServer(t, AuthConfig{ClientCAFile: apiserver.CAFile, ClientNames: []string{"kube-apiserver"}, TokenFile: tokenFile}, d, Config{})

	for _, path := range []string{"/validate", "/mutate", "/", "/metrics", "/validate?x=1"} {
		for name, c := range map[string]struct {
			cert  *tls.Certificate
			token string
		}{
			"anonymous":               {},
			"wrong token":             {token: "s3cret-0123456789-2"},
			"certificate, wrong name": {cert: &sameCA},
			"token prefix":            {token: "s3cret-0123456789"},
		} {
			code, body, err := call(t, url, path, roots, c.cert, c.token)
			if err != nil {
				t.Fatalf("%s %s: %v", name, path, err)
			}
			if code != http.StatusUnauthorized || body != "Unauthorized\n" {
				t.Errorf("%s %s: %d %q, want 401 and nothing else", name, path, code, body)
			}
		}
	}
	if n := d.calls.Load(); n != 0 {
		t.Fatalf("unauthenticated requests reached the decider %d times", n)
	}
	// A certificate from another CA fails the handshake.
	if _, _, err := call(t, url, "/validate", roots, &stranger.Cert, ""); err == nil {
		t.Errorf("a client certificate from another CA was accepted")
	}
	for name, c := range map[string]struct {
		cert  *tls.Certificate
		token string
	}{
		"API server certificate": {cert: &apiserver.Cert},
		"token":                  {token: "s3cret-0123456789-1"},
	} {
		code, body, err := call(t, url, "/validate", roots, c.cert, c.token)
		if err != nil || code != http.StatusOK || !strings.Contains(body, `"uid":"705ab4f5`) {
			t.Errorf("%s: %d %s %v, want the review answered", name, code, body, err)
		}
	}

	// Rotation: a new token file takes effect at once, the old token stops.
	writeFile(t, tokenFile, "s3cret-0123456789-2\n")
	bumpMtime(t, tokenFile)
	if code, _, _ := call(t, url, "/validate", roots, nil, "s3cret-0123456789-1"); code != http.StatusUnauthorized {
		t.Errorf("the rotated-out token got %d", code)
	}
	if code, _, _ := call(t, url, "/validate", roots, nil, "s3cret-0123456789-2"); code != http.StatusOK {
		t.Errorf("the new token got %d", code)
	}
	// A new client CA takes effect at once too.
	rotated := webhooktest.NewClientPKI(t, t.TempDir(), "kube-apiserver")
	writeFile(t, apiserver.CAFile, string(readTestFile(t, rotated.CAFile)))
	bumpMtime(t, apiserver.CAFile)
	if _, _, err := call(t, url, "/validate", roots, &apiserver.Cert, ""); err == nil {
		t.Error("a certificate of the rotated-out CA was accepted")
	}
	if code, _, err := call(t, url, "/validate", roots, &rotated.Cert, ""); err != nil || code != http.StatusOK {
		t.Errorf("a certificate of the new CA: %d %v", code, err)
	}
}

// TestUnauthenticatedDropsUser: without authentication the review's user
// is a claim: the decider never sees it and break glass is refused.
func TestUnauthenticatedDropsUser(t *testing.T) {
	t.Parallel()
	d := newFakeDecider()
	recorded := 0
	url, roots := authServer(t, AuthConfig{InsecureUnauthenticated: true}, d, Config{
		BreakGlass:   []BreakGlassWindow{{"shop", time.Now().Add(time.Hour)}},
		OnBreakGlass: func(context.Context, BreakGlass) error { recorded++; return nil },
	})
	code, body, err := call(t, url, "/validate", roots, nil, "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%d %s %v", code, body, err)
	}
	for _, r := range d.requests() {
		if r.Actor.Identity != nil {
			t.Fatalf("the decider saw the claimed user %+v", r.Actor.Identity)
		}
	}
	h := newHandler(t, Config{Authenticator: mustAuth(t, AuthConfig{InsecureUnauthenticated: true}),
		BreakGlass:   []BreakGlassWindow{{"shop", time.Now().Add(time.Hour)}},
		OnBreakGlass: func(context.Context, BreakGlass) error { recorded++; return nil }}, newFakeDecider(), &fakeResolver{})
	_, resp := post(t, h, "/validate", breakGlassPod(t))
	if resp.Allowed || !strings.Contains(message(resp), "Break glass refused: the request names no user") || recorded != 0 {
		t.Fatalf("allowed=%v recorded=%d: %s", resp.Allowed, recorded, message(resp))
	}
}

// TestBreakGlassNeedsItsRecord: a break glass whose record cannot be
// written is refused, with the reason (I6); one that is recorded is
// recorded before it is admitted.
func TestBreakGlassNeedsItsRecord(t *testing.T) {
	t.Parallel()
	windows := []BreakGlassWindow{{"shop", time.Now().Add(time.Hour)}}
	failing := newHandler(t, Config{BreakGlass: windows, OnBreakGlass: func(context.Context, BreakGlass) error {
		return errors.New("audit append: database is locked")
	}}, newFakeDecider(), &fakeResolver{})
	_, resp := post(t, failing, "/validate", breakGlassPod(t))
	if resp.Allowed || !strings.Contains(message(resp), "Break glass refused: its audit record could not be written (audit append: database is locked)") {
		t.Fatalf("allowed=%v: %s", resp.Allowed, message(resp))
	}
	panicking := newHandler(t, Config{BreakGlass: windows, OnBreakGlass: func(context.Context, BreakGlass) error { panic("boom") }},
		newFakeDecider(), &fakeResolver{})
	if _, resp := post(t, panicking, "/validate", breakGlassPod(t)); resp.Allowed {
		t.Fatal("a break glass whose recording panicked was admitted")
	}
	if _, err := New(Config{BreakGlass: windows, Authenticator: apiServer{}}, newFakeDecider(), &fakeResolver{}); err == nil {
		t.Fatal("break glass without a recorder was accepted")
	}
}

func TestNewAuthRefusesNoAuth(t *testing.T) {
	t.Parallel()
	ca := webhooktest.NewClientPKI(t, t.TempDir(), "kube-apiserver").CAFile
	for _, c := range []AuthConfig{
		{},
		{ClientNames: []string{"kube-apiserver"}},
		{InsecureUnauthenticated: true, ClientCAFile: ca},
		{ClientCAFile: filepath.Join(t.TempDir(), "missing.crt")},
		{TokenFile: writeFile(t, filepath.Join(t.TempDir(), "empty"), "\n")},
		{TokenFile: writeFile(t, filepath.Join(t.TempDir(), "short"), "0123456789abcde\n")},
	} {
		if _, err := NewAuth(c); err == nil {
			t.Errorf("NewAuth(%+v) accepted", c)
		}
	}
	if _, err := New(Config{}, newFakeDecider(), &fakeResolver{}); err == nil {
		t.Error("a handler without an authenticator was built")
	}
}

func mustAuth(t *testing.T, c AuthConfig) *Auth {
	t.Helper()
	a, err := NewAuth(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// breakGlassPod is the pod fixture (which has a denied image) with the
// break-glass annotation.
func breakGlassPod(t *testing.T) []byte {
	return editFixture(t, "pod.json", func(req map[string]any) {
		req["object"].(map[string]any)["metadata"].(map[string]any)["annotations"] = map[string]any{BreakGlassAnnotation: "INC-9"}
	})
}

// sameCAClient issues a client certificate named cn from the CA that
// NewClientPKI wrote into dir.
func sameCAClient(t *testing.T, dir, cn string) tls.Certificate {
	t.Helper()
	c, err := webhooktest.IssueClient(filepath.Join(dir, "client-ca.crt"), filepath.Join(dir, "client-ca.key"), cn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bumpMtime moves a file's modification time forward, so that a rewrite
// within the file system's timestamp granularity is still seen.
func bumpMtime(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	next := fi.ModTime().Add(2 * time.Second)
	if err := os.Chtimes(path, next, next); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
	"github.com/portcullis-dev/portcullis/webhook/webhooktest"
)

// apiServerPKI is a client CA and the API server's client certificate
// (CN kube-apiserver) in a directory of its own.
func apiServerPKI(t *testing.T) webhooktest.ClientPKI {
	t.Helper()
	return webhooktest.NewClientPKI(t, t.TempDir(), "kube-apiserver")
}

// webhookAuthYAML is the webhook.auth section accepting pki's client
// certificate, for a portcullis.yaml whose webhook section it ends.
func webhookAuthYAML(pki webhooktest.ClientPKI) string {
	return "  auth:\n    clientCAFile: " + pki.CAFile + "\n    clientNames: [kube-apiserver]\n"
}

// webhookClient trusts the self-signed webhook CA in data and presents
// cert, if any, as the API server does.
func webhookClient(t *testing.T, data string, cert *tls.Certificate) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(data, "webhook", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tc := &tls.Config{RootCAs: pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// podReview is an AdmissionReview of a Pod "web" in ns running image,
// asked for by user, with annotations.
func podReview(ns, user, image string, annotations map[string]string) []byte {
	return namedPodReview("web", ns, user, image, annotations)
}

// namedPodReview is podReview for a Pod called name.
func namedPodReview(name, ns, user, image string, annotations map[string]string) []byte {
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns, "annotations": annotations},
		"spec":     map[string]any{"containers": []map[string]string{{"name": "app", "image": image}}}})
	body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "u-" + name, "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
		"resource": map[string]string{"group": "", "version": "v1", "resource": "pods"}, "name": name, "namespace": ns,
		"operation": "CREATE", "userInfo": map[string]any{"username": user, "groups": []string{"system:masters"}}, "object": json.RawMessage(pod)}})
	return body
}

// writeTrustedKey makes a signing key and writes its public half to path
// as PEM, for a trust authority's keys.
func writeTrustedKey(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	key := vt.NewKey(t)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return key
}

func postReview(t *testing.T, c *http.Client, url string, body []byte, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWebhookServesTheAPIServerOnly: finding 7 of issue 17 against a real
// `portcullis serve`. An anonymous caller gets 401 and nothing else from
// /mutate (which would otherwise tell it a staging image's digest) and
// /validate (policy reasons); the API server's client certificate and the
// configured bearer token are answered, and the admission is recorded
// under the user the review names.
func TestWebhookServesTheAPIServerOnly(t *testing.T) {
	t.Parallel()
	dir, data := t.TempDir(), t.TempDir()
	pki := apiServerPKI(t)
	mustWrite(t, filepath.Join(dir, "token"), "tok-0123456789-"+uniqueName("t")+"\n")
	token := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "token"))))
	mustWrite(t, filepath.Join(dir, "portcullis.yaml"), "webhook:\n"+webhookAuthYAML(pki)+"    tokenFile: token\n")
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml"), "--webhook-addr", hookAddr)
	img := vt.Registry{Host: srv.Addr}.PushImage(t, "staging/secret", "1")
	review := podReview("shop", "alice", srv.Addr+"/staging/secret:1", nil)

	anonymous := webhookClient(t, data, nil)
	for _, path := range []string{"/mutate", "/validate"} {
		for _, tok := range []string{"", "wrong", token + "x"} {
			code, body := postReview(t, anonymous, "https://"+hookAddr+path, review, tok)
			if code != http.StatusUnauthorized || strings.Contains(body, img.Encoded()) || strings.Contains(body, "signature") {
				t.Errorf("anonymous %s (token %q): %d %s, want 401 and nothing else", path, tok, code, body)
			}
		}
	}
	// Not even "OPTIONS *", which net/http would answer itself.
	conn, err := tls.Dial("tcp", hookAddr, anonymous.Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "OPTIONS * HTTP/1.1\r\nHost: "+hookAddr+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if status, _ := io.ReadAll(conn); !strings.HasPrefix(string(status), "HTTP/1.1 401 ") {
		t.Errorf("anonymous OPTIONS *: %q, want 401", status)
	}
	// Nothing reached the gate: no decision names the image.
	if code, out, _ := run2(t, "audit", "query", "--data", data, "--digest", img.String(), "--output", "json"); code != 0 || strings.Contains(out, img.String()) {
		t.Fatalf("an unauthenticated review was decided and recorded: exit %d %s", code, out)
	}

	for name, c := range map[string]struct {
		client *http.Client
		token  string
	}{"client certificate": {webhookClient(t, data, &pki.Cert), ""}, "bearer token": {anonymous, token}} {
		code, body := postReview(t, c.client, "https://"+hookAddr+"/mutate", review, c.token)
		if code != http.StatusOK || !strings.Contains(body, `"uid":"u-web"`) || !strings.Contains(body, `"patch"`) {
			t.Errorf("%s: /mutate %d %s", name, code, body)
		}
	}
	if code, body := postReview(t, webhookClient(t, data, &pki.Cert), "https://"+hookAddr+"/validate", review, ""); code != http.StatusOK || !strings.Contains(body, "has no signature verified") {
		t.Fatalf("/validate as the API server: %d %s", code, body)
	}
	code, out, errOut := run2(t, "audit", "query", "--data", data, "--action", "admit", "--digest", img.String(), "--output", "json")
	if code != 0 || !strings.Contains(out, `"kubernetesUser": "alice"`) {
		t.Fatalf("audit query exit %d: want the authenticated review's decision recorded as alice's:\n%s%s", code, out, errOut)
	}
}

// TestWebhookNeedsAuth: a webhook without authentication does not start;
// --webhook-insecure-no-auth starts it, says so loudly, and then ignores
// the user a review claims: the decision records none, and break glass,
// which must name who asked, is refused.
func TestWebhookNeedsAuth(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run2(t, "serve", "--data", data, "--addr", addr, "--webhook-addr", hookAddr)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code == 0 || !strings.HasPrefix(lines[len(lines)-1], "portcullis serve: webhook.auth: the webhook needs authentication") {
		t.Fatalf("serve without webhook authentication: exit %d, %q", code, errOut)
	}

	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "portcullis.yaml"), "webhook:\n  breakGlass:\n    - {namespace: ops, until: \""+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+"\"}\n")
	srv := startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml"), "--webhook-addr", hookAddr, "--webhook-insecure-no-auth")
	if !strings.Contains(srv.stderr.String(), "WEBHOOK IS UNAUTHENTICATED") {
		t.Fatalf("no loud warning in the log:\n%s", srv.stderr.String())
	}
	unsigned := vt.Registry{Host: srv.Addr}.PushImage(t, "staging/web", "1")
	client := webhookClient(t, data, nil)
	code, body := postReview(t, client, "https://"+hookAddr+"/validate", podReview("ops", "admin", srv.Addr+"/staging/web@"+unsigned.String(),
		map[string]string{"portcullis.dev/break-glass": "INC-1"}), "")
	if code != http.StatusOK || !strings.Contains(body, `"allowed":false`) || !strings.Contains(body, "Break glass refused: the request names no user") {
		t.Fatalf("break glass through an unauthenticated webhook: %d %s", code, body)
	}
	c, out, errOut := run2(t, "audit", "query", "--data", data, "--digest", unsigned.String(), "--output", "json")
	if c != 0 || !strings.Contains(out, `"action": "admit"`) || strings.Contains(out, "admin") || strings.Contains(out, "break-glass\"") {
		t.Fatalf("audit query exit %d: want the denial recorded with no user and no break glass:\n%s%s", c, out, errOut)
	}
}

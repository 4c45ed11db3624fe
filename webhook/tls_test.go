package webhook

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// tlsClient trusts only the CA in caFile and opens a new connection per
// request (so that every request sees the certificate in service).
func tlsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

func TestHTTPSWithReload(t *testing.T) {
	dir := t.TempDir()
	files, err := SelfSigned(dir, []string{"127.0.0.1", "portcullis-webhook.portcullis.svc"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := SelfSigned(dir, []string{"127.0.0.1"}, time.Now()); err != nil || again != files {
		t.Fatalf("second call: %v %v", again, err)
	}
	oldCA, _ := os.ReadFile(files.CA)
	reloader, err := NewCertReloader(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(newHandler(t, Config{}, newFakeDecider(), &fakeResolver{}))
	// As a server would: a TLS listener whose only certificate source is
	// the reloader (httptest's StartTLS would add its own certificate).
	srv.Listener = tls.NewListener(srv.Listener, reloader.TLSConfig())
	srv.Start()
	t.Cleanup(srv.Close)
	url := strings.Replace(srv.URL, "http://", "https://", 1)

	admit := func(c *http.Client) (*admissionv1.AdmissionResponse, error) {
		resp, err := c.Post(url+"/validate", "application/json", bytes.NewReader(fixture(t, "pod.json")))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var rev admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&rev); err != nil {
			return nil, err
		}
		return rev.Response, nil
	}
	oldClient := tlsClient(t, files.CA)
	if r, err := admit(oldClient); err != nil || r.Allowed || !strings.Contains(message(r), unsigned) {
		t.Fatalf("over HTTPS: %+v, %v", r, err)
	}

	// Rotate: a new CA and certificate in the same files.
	for _, p := range []string{files.CA, files.Cert, files.Key} {
		os.Remove(p)
	}
	if _, err := SelfSigned(dir, []string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if newCA, _ := os.ReadFile(files.CA); bytes.Equal(newCA, oldCA) {
		t.Fatal("the CA did not change")
	}
	if _, err := admit(tlsClient(t, files.CA)); err != nil {
		t.Fatalf("the new certificate is not served: %v", err)
	}
	if _, err := admit(oldClient); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("the old certificate is still served: %v", err)
	}

	// A broken rotation keeps the last good pair in service.
	if err := os.WriteFile(files.Cert, []byte("half a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := admit(tlsClient(t, filepath.Join(dir, "ca.crt"))); err != nil {
		t.Fatalf("after a broken rotation: %v", err)
	}
	if reloader.Err() == nil {
		t.Error("the failed reload is not reported")
	}
}

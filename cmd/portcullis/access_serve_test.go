package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry/auth"
)

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

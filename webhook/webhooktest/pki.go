// Package webhooktest makes what tests of the admission webhook need to
// call it as the API server does: a client CA and client certificates.
package webhooktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ClientPKI is a CA and one client certificate it issued, as files (for
// portcullis.yaml and a kubeconfig) and loaded (for a Go client).
type ClientPKI struct {
	// CAFile is the CA certificate (webhook.auth.clientCAFile); its key is
	// beside it, in CAKeyFile.
	CAFile, CAKeyFile string
	// CertFile and KeyFile are the client's certificate and key (a
	// kubeconfig's client-certificate and client-key).
	CertFile, KeyFile string
	// Cert is the client certificate, for tls.Config.Certificates.
	Cert tls.Certificate
}

// NewClientPKI writes a fresh CA (client-ca.crt, client-ca.key) and a
// client certificate with the given common name (client.crt, client.key)
// into dir.
func NewClientPKI(tb testing.TB, dir, commonName string) ClientPKI {
	tb.Helper()
	p := ClientPKI{
		CAFile: filepath.Join(dir, "client-ca.crt"), CAKeyFile: filepath.Join(dir, "client-ca.key"),
		CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		tb.Fatal(err)
	}
	if err := writePEM(p.CAFile, "CERTIFICATE", caDER); err != nil {
		tb.Fatal(err)
	}
	if err := writeKey(p.CAKeyFile, caKey); err != nil {
		tb.Fatal(err)
	}
	if p.Cert, err = issue(p.CAFile, p.CAKeyFile, commonName, p.CertFile, p.KeyFile); err != nil {
		tb.Fatal(err)
	}
	return p
}

// IssueClient issues another client certificate named commonName from
// the CA in caFile and caKeyFile (as NewClientPKI wrote them).
func IssueClient(caFile, caKeyFile, commonName string) (tls.Certificate, error) {
	dir, err := os.MkdirTemp("", "webhooktest")
	if err != nil {
		return tls.Certificate{}, err
	}
	defer os.RemoveAll(dir)
	return issue(caFile, caKeyFile, commonName, filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))
}

func issue(caFile, caKeyFile, commonName, certFile, keyFile string) (tls.Certificate, error) {
	ca, err := tls.LoadX509KeyPair(caFile, caKeyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: commonName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Leaf, key.Public(), ca.PrivateKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := errors.Join(writePEM(certFile, "CERTIFICATE", der), writeKey(keyFile, key)); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certFile, keyFile)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

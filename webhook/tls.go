package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CertReloader serves a certificate and key from files and reloads them
// when either file changes (checked on every TLS handshake with a stat, so
// a rotated Secret is picked up without a restart). A pair that fails to
// load keeps the previous one in service.
type CertReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	version [2]fileVersion
	lastErr error
}

type fileVersion struct {
	mod  time.Time
	size int64
}

// NewCertReloader loads certFile and keyFile; they must be valid now.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.GetCertificate(nil); err != nil {
		return nil, err
	}
	return r, nil
}

func version(path string) (fileVersion, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileVersion{}, err
	}
	return fileVersion{fi.ModTime(), fi.Size()}, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cv, cerr := version(r.certFile)
	kv, kerr := version(r.keyFile)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := errors.Join(cerr, kerr); err != nil {
		if r.cert != nil {
			r.lastErr = err
			return r.cert, nil
		}
		return nil, fmt.Errorf("webhook: TLS certificate: %w", err)
	}
	if r.cert != nil && r.version == [2]fileVersion{cv, kv} {
		return r.cert, nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			// Likely a rotation half-way through: keep serving the old pair
			// and try again on the next handshake.
			r.lastErr = err
			return r.cert, nil
		}
		return nil, fmt.Errorf("webhook: TLS certificate: %w", err)
	}
	r.cert, r.version, r.lastErr = &c, [2]fileVersion{cv, kv}, nil
	return r.cert, nil
}

// Err is the last reload error, if the files in service are stale.
func (r *CertReloader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// TLSConfig is a server configuration serving r's certificate.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// SelfSignedFiles are the files SelfSigned writes into its directory.
type SelfSignedFiles struct {
	CA, Cert, Key string
}

// SelfSigned writes, for local use, a CA (ca.crt, to give the API server
// as the webhook's caBundle) and a serving certificate for hosts signed by
// it (tls.crt, tls.key) into dir, unless they are already there and
// still valid for a day.
func SelfSigned(dir string, hosts []string, now time.Time) (SelfSignedFiles, error) {
	f := SelfSignedFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key")}
	if c, err := tls.LoadX509KeyPair(f.Cert, f.Key); err == nil && now.Add(24*time.Hour).Before(c.Leaf.NotAfter) {
		if _, err := os.Stat(f.CA); err == nil {
			return f, nil
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return f, fmt.Errorf("webhook: existing self-signed certificate: %w", err)
	}
	if len(hosts) == 0 {
		return f, errors.New("webhook: a self-signed certificate needs at least one host")
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "portcullis webhook local CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return f, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return f, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return f, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, err
	}
	// The key first, the certificate last: a reloader sees a new pair only
	// once both are written (and keeps the old one if it sees half).
	for _, w := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{{f.Key, "PRIVATE KEY", keyDER, 0o600}, {f.CA, "CERTIFICATE", caDER, 0o644}, {f.Cert, "CERTIFICATE", der, 0o644}} {
		if err := writeAtomic(w.path, pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der}), w.mode); err != nil {
			return f, err
		}
	}
	return f, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Package s3test gives tests a real S3-compatible server: versitygw's POSIX
// gateway (github.com/versity/versitygw, which .ci/tools.sh installs),
// serving buckets from a temporary directory on a free loopback port for
// the test's lifetime.
//
// Without versitygw on PATH a test is skipped, except under CI=true, where
// it fails.
package s3test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Server is a running gateway. Each directory under Root is a bucket.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT, path-style addressing
	AccessKey string
	SecretKey string
	Root      string
}

// Start serves the named (empty) buckets until t ends; the gateway's output
// is logged if t fails.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("versitygw is not on PATH (.ci/tools.sh installs it)")
		}
		t.Skip("versitygw is not on PATH (.ci/tools.sh installs it)")
	}
	s := &Server{AccessKey: "portcullis", SecretKey: "portcullis-secret", Root: t.TempDir()}
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(s.Root, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "posix", s.Root)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("versitygw:\n%s", out)
		}
	})
	s.Endpoint = "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

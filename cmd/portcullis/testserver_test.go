package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
)

// mainEnv makes the test binary run as the portcullis CLI, so tests start
// `portcullis serve` as a real separate process without building it first.
const mainEnv = "PORTCULLIS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		exitWithParent()
		main() // exits
	}
	os.Exit(pgtest.Main(m))
}

// exitWithParent ends a server the test process started once that process
// is gone (a test binary killed by its -timeout panic does not run
// cleanups), so no server outlives the test run.
func exitWithParent() {
	parent := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != parent {
				os.Exit(3)
			}
		}
	}()
}

// server is a `portcullis serve` process.
type server struct {
	// Addr is host:port.
	Addr string
	// Scheme is http, or https for a server started with a certificate
	// (startServerTLS); client then trusts it.
	Scheme string
	client *http.Client

	t      testing.TB
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed when the process has been waited for
	err    error         // the exit error, valid after exited is closed
	signal sync.Once
}

// URL returns the server's base URL followed by path.
func (s *server) URL(path string) string { return s.Scheme + "://" + s.Addr + path }

// startServer runs `portcullis serve` on a free loopback port with its data
// in dataDir, waits until GET /v2/ answers 200, and stops it (SIGTERM) when
// the test ends, logging its stderr if the test failed.
func startServer(t testing.TB, dataDir string, extra ...string) *server {
	t.Helper()
	var lastErr error
	for range 3 { // another process may take the port between probe and listen
		s, err := tryStartServer(t, dataDir, extra...)
		if err == nil {
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("start portcullis serve: %v", lastErr)
	return nil
}

func tryStartServer(t testing.TB, dataDir string, extra ...string) (*server, error) {
	return tryStartServerWith(t, nil, dataDir, extra...)
}

// tryStartServerWith starts the server; with tlsClient it serves HTTPS and
// tlsClient (trusting its certificate) checks that it is ready.
func tryStartServerWith(t testing.TB, tlsClient *http.Client, dataDir string, extra ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return tryStartServerAt(t, tlsClient, addr, dataDir, extra...)
}

// tryStartServerAt starts the server on addr (e.g. again where one that
// was stopped listened).
func tryStartServerAt(t testing.TB, tlsClient *http.Client, addr, dataDir string, extra ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &server{Addr: addr, Scheme: "http", t: t, stderr: &syncBuffer{}, exited: make(chan struct{}), client: &http.Client{Timeout: time.Second}}
	if tlsClient != nil {
		s.Scheme, s.client = "https", tlsClient
	}
	s.cmd = exec.Command(exe, append([]string{"serve", "--addr", addr, "--data", dataDir}, extra...)...)
	s.cmd.Env = append(os.Environ(), mainEnv+"=1")
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("portcullis serve --addr %s --data %s: %v\n%s", addr, dataDir, s.err, s.stderr.String())
		}
	})
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Kill()
		return nil, fmt.Errorf("%w\n%s", err, s.stderr.String())
	}
	return s, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func (s *server) waitReady(timeout time.Duration) error {
	client := s.client
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before answering: %v", s.err)
		default:
		}
		resp, err := client.Get(s.URL("/v2/"))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// 401: access control is on, the registry answers.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *server) Kill() {
	s.signal.Do(func() { _ = s.cmd.Process.Kill() })
	<-s.exited
}

// Stop asks the server to shut down with SIGTERM and waits for it; a
// graceful shutdown must exit 0. It kills the server after a minute.
func (s *server) Stop() {
	sent := false
	s.signal.Do(func() {
		sent = true
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = s.cmd.Process.Kill()
		}
	})
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		s.t.Errorf("portcullis serve on %s did not stop within a minute of SIGTERM: killing it", s.Addr)
		_ = s.cmd.Process.Kill()
		<-s.exited
		return
	}
	if sent && s.err != nil {
		s.t.Errorf("portcullis serve on %s: shutdown after SIGTERM: %v", s.Addr, s.err)
	}
}

// syncBuffer is a bytes.Buffer safe for the process's output copier and
// the test reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// inCI reports whether the environment says this is a CI run (CI=true),
// where every external tool must be installed.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// unavailable ends a test that needs something the machine lacks: a
// failure in CI, which must provide it, a skip elsewhere. It is the only
// place tests skip.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI=true: CI must provide it)", msg)
	}
	t.Skip(msg)
}

// requireTool returns the path of an external tool, ending the test through
// unavailable if it is not on PATH.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, "%s is not installed (not on PATH)", name)
	}
	return p
}

// runTool runs an external tool and returns its standard output and
// standard error; a non-zero exit fails the test with both.
func runTool(t testing.TB, dir string, env []string, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := tryTool(t, dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// tryTool runs an external tool in dir (if not empty) with env added to the
// test's environment. The error of a failed run includes the tool's output.
func tryTool(t testing.TB, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	start := time.Now()
	err = cmd.Run()
	line := name + " " + strings.Join(args, " ")
	t.Logf("%s (%v)", line, time.Since(start).Round(time.Millisecond))
	if err != nil {
		err = fmt.Errorf("%s: %w\nstdout:\n%s\nstderr:\n%s", line, err, outBuf.String(), errBuf.String())
	}
	return outBuf.String(), errBuf.String(), err
}

// uniqueName returns prefix followed by random hex, usable in repository
// names, tags and image names.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newClient returns an HTTP client for one test, closed when it ends.
func newClient(t testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	c := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// response is a completed HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request and reads the whole response.
func do(c *http.Client, method, url string, header http.Header, body []byte) (*response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading body: %w", method, url, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// mustDo is do, failing the test unless the answer has status want.
func mustDo(t testing.TB, c *http.Client, want int, method, url string, header http.Header, body []byte) *response {
	t.Helper()
	resp, err := do(c, method, url, header, body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.Status, want, resp.Body)
	}
	return resp
}

// manifestAccept is the Accept header of a client that takes any manifest.
var manifestAccept = http.Header{"Accept": {strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")}}

// headManifest returns the Docker-Content-Digest the registry answers to
// HEAD /v2/<repo>/manifests/<ref>.
func headManifest(t testing.TB, s *server, repo, ref string) string {
	t.Helper()
	resp := mustDo(t, newClient(t), http.StatusOK, http.MethodHead, s.URL("/v2/"+repo+"/manifests/"+ref), manifestAccept, nil)
	d := resp.Header.Get("Docker-Content-Digest")
	if d == "" {
		t.Fatalf("HEAD %s:%s: no Docker-Content-Digest", repo, ref)
	}
	return d
}

// errorCode returns the first OCI error code of an error response body.
func errorCode(body []byte) string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// sha256Digest returns the sha256 digest of b as "sha256:<hex>".
func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushBlob uploads b to repo in one POST (?digest=) and returns its digest.
func pushBlob(t testing.TB, c *http.Client, s *server, repo string, b []byte) string {
	t.Helper()
	d := sha256Digest(b)
	resp := mustDo(t, c, http.StatusCreated, http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+d),
		http.Header{"Content-Type": {"application/octet-stream"}}, b)
	if got := resp.Header.Get("Docker-Content-Digest"); got != d {
		t.Fatalf("blob upload to %s: Docker-Content-Digest %q, want %s", repo, got, d)
	}
	return d
}

// putManifest stores a manifest under ref and returns its digest.
func putManifest(t testing.TB, c *http.Client, s *server, repo, ref, mediaType string, body []byte) string {
	t.Helper()
	d := sha256Digest(body)
	resp := mustDo(t, c, http.StatusCreated, http.MethodPut, s.URL("/v2/"+repo+"/manifests/"+ref),
		http.Header{"Content-Type": {mediaType}}, body)
	if got := resp.Header.Get("Docker-Content-Digest"); got != d {
		t.Fatalf("manifest put %s:%s: Docker-Content-Digest %q, want %s", repo, ref, got, d)
	}
	return d
}

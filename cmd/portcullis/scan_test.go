package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/scanner/trivy"
	"github.com/portcullis-dev/portcullis/scanner/trivy/trivytest"
)

// runCLI runs the portcullis CLI in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func pushImage(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pushDB pushes a fixture database with oras, as an operator mirroring
// Trivy's DB would, and returns the reference.
func pushDB(t *testing.T, s *server, builtAt time.Time, advs ...trivytest.Advisory) string {
	t.Helper()
	oras := requireTool(t, "oras")
	src := filepath.Join(t.TempDir(), "db")
	trivytest.WriteDB(t, src, builtAt, advs...)
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "db.tar.gz"), trivytest.DBArchive(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := s.Addr + "/mirror/trivy-db:2"
	runTool(t, work, nil, oras, "push", "--plain-http", ref,
		"--config", "config.json:"+trivy.MediaTypeDBConfig,
		"db.tar.gz:"+trivy.MediaTypeDBLayer)
	return ref
}

// TestDBFromRegistryAndScan: the DB pushed with oras into the registry,
// imported from there, then `portcullis scan` against the same registry.
func TestDBFromRegistryAndScan(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	ref := pushDB(t, s, time.Now().Add(-2*time.Hour), trivytest.Fixtures...)

	cli := t.TempDir() // the CLI's own data dir
	code, out, errs := runCLI(t, "db", "import", "--data", cli, ref)
	if code != 0 {
		t.Fatalf("db import: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "mirror/trivy-db@sha256:") || !strings.Contains(out, "version:    2") {
		t.Errorf("db import output does not show the source and version:\n%s", out)
	}
	code, out, errs = runCLI(t, "db", "status", "--data", cli)
	if code != 0 || !regexp.MustCompile(`age:\s+2h0m\d+s \(ok\)`).MatchString(out) {
		t.Errorf("db status: exit %d\n%s%s", code, out, errs)
	}

	vuln := trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2", "busybox": "1.36.1-r29"}))
	pushImage(t, s.Addr+"/staging/app:1", vuln)
	code, out, errs = runCLI(t, "scan", "--data", cli, s.Addr+"/staging/app:1")
	if code != 0 {
		t.Fatalf("scan: exit %d\n%s%s", code, out, errs)
	}
	row := regexp.MustCompile(`(?m)^CVE-2025-26519\s+musl\s+1\.2\.4-r2\s+1\.2\.5-r1\s+HIGH\s+8\.1$`)
	if !row.MatchString(out) {
		t.Errorf("scan table lacks the musl finding:\n%s", out)
	}

	sbom := filepath.Join(t.TempDir(), "sbom.json")
	code, out, errs = runCLI(t, "scan", "--data", cli, "--output", "json", "--sbom", sbom, s.Addr+"/staging/app:1")
	if code != 0 {
		t.Fatalf("scan --output json: exit %d\n%s", code, errs)
	}
	var r scanner.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	if len(r.Vulnerabilities) != 1 || r.Vulnerabilities[0].ID != "CVE-2025-26519" || r.Packages != 2 || !strings.Contains(r.DB.Source, "mirror/trivy-db@sha256:") {
		t.Errorf("report = %+v", r)
	}
	b, err := os.ReadFile(sbom)
	if err != nil {
		t.Fatal(err)
	}
	if gen, err := scanner.IsGenerated(b); err != nil || !gen || !bytes.Contains(b, []byte("musl")) {
		t.Errorf("SBOM: generated=%v err=%v\n%s", gen, err, b)
	}

	fixed := trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.5-r1"}))
	pushImage(t, s.Addr+"/staging/app:2", fixed)
	code, out, _ = runCLI(t, "scan", "--data", cli, s.Addr+"/staging/app:2")
	if code != 0 || !strings.Contains(out, "no known vulnerabilities") {
		t.Errorf("scan of the fixed image: exit %d\n%s", code, out)
	}
}

func TestScanFailures(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	img := trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"}))
	pushImage(t, s.Addr+"/staging/app:1", img)

	old := t.TempDir()
	trivytest.WriteDB(t, filepath.Join(old, "trivy", "db"), time.Now().Add(-30*24*time.Hour), trivytest.Fixtures...)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no database", []string{"scan", "--data", t.TempDir(), s.Addr + "/staging/app:1"}, "no vulnerability database"},
		{"database too old", []string{"scan", "--data", old, s.Addr + "/staging/app:1"}, "too old"},
		{"no such image", []string{"scan", "--data", old, "--max-age", "1000h", s.Addr + "/staging/nothing:1"}, "MANIFEST_UNKNOWN"},
		{"bad output", []string{"scan", "--output", "xml", "x"}, "--output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != 2 || out != "" {
				t.Fatalf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			if !strings.Contains(errs, tt.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Fatalf("stderr %q: want one line mentioning %q", errs, tt.want)
			}
		})
	}
}

// metric reads one sample of the server's /metrics.
func metric(t *testing.T, s *server, sample string) float64 {
	t.Helper()
	resp, err := http.Get(s.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScanOnPush: pushes to staging/ are scanned in the background with the
// DB imported while the server runs; a second push of the same image is
// not scanned again; other namespaces are not scanned; shutdown is clean
// and leaves no Trivy temporary directory.
func TestScanOnPush(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	ref := pushDB(t, s, time.Now(), trivytest.Fixtures...)
	if code, out, errs := runCLI(t, "db", "import", "--data", data, ref); code != 0 {
		t.Fatalf("db import into the server's data dir: exit %d\n%s%s", code, out, errs)
	}

	img := trivytest.Image(t, trivytest.Debian(map[string]string{"openssl": "3.0.11-1~deb12u1"}))
	d := pushImage(t, s.Addr+"/staging/web:1", img)
	ok := `portcullis_scans_total{result="ok"}`
	waitFor(t, "the background scan", func() bool { return metric(t, s, ok) >= 1 })
	if !strings.Contains(s.stderr.String(), "scan finished") || !strings.Contains(s.stderr.String(), d.String()) {
		t.Errorf("no progress log for %s:\n%s", d, s.stderr.String())
	}

	pushImage(t, s.Addr+"/staging/web:again", img)                                                                             // same digest
	pushImage(t, s.Addr+"/team/web:1", trivytest.Image(t, trivytest.Debian(map[string]string{"openssl": "3.0.15-1~deb12u1"}))) // not staging
	// The push hook runs before the manifest PUT is answered, so once the
	// pushes have returned every enqueue they caused is counted: the
	// duplicate one, and none for the push outside staging.
	if n := metric(t, s, `portcullis_scan_enqueue_total{outcome="cached"}`) + metric(t, s, `portcullis_scan_enqueue_total{outcome="duplicate"}`); n != 1 {
		t.Fatalf("%v duplicate enqueues after a duplicate push, want 1\n%s", n, s.stderr.String())
	}
	if n := metric(t, s, `portcullis_scan_enqueue_total{outcome="queued"}`); n != 1 {
		t.Fatalf("%v scans queued after a duplicate push and a push outside staging, want 1\n%s", n, s.stderr.String())
	}
	if n := metric(t, s, ok) + metric(t, s, `portcullis_scans_total{result="error"}`); n != 1 {
		t.Fatalf("%v scans after a duplicate push and a push outside staging, want 1\n%s", n, s.stderr.String())
	}

	pid := s.cmd.Process.Pid
	s.Stop()
	if s.err != nil {
		t.Fatalf("serve exit: %v", s.err)
	}
	if _, err := os.Stat(filepath.Join(os.TempDir(), fmt.Sprintf("trivy-%d", pid))); err == nil {
		t.Errorf("$TMPDIR/trivy-%d left behind", pid)
	}
}

// TestScanOnPushWithoutDB: scans fail (logged, counted) but pushes work.
func TestScanOnPushWithoutDB(t *testing.T) {
	s := startServer(t, t.TempDir())
	pushImage(t, s.Addr+"/staging/app:1", trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"})))
	waitFor(t, "the failed scan", func() bool { return metric(t, s, `portcullis_scans_total{result="error"}`) >= 1 })
	if !strings.Contains(s.stderr.String(), "no vulnerability database") {
		t.Errorf("the log does not say why:\n%s", s.stderr.String())
	}
}

func TestScannerConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c scanner.Config)
	}{
		{name: "defaults", check: func(t *testing.T, c scanner.Config) {
			if c.DB != filepath.Join("portcullis-data", "trivy", "db") || time.Duration(c.MaxAge) != 168*time.Hour ||
				c.Workers != 2 || c.QueueSize != 100 || len(*c.ScanOnPush) != 1 || (*c.ScanOnPush)[0] != "staging/" {
				t.Fatalf("defaults = %+v", c)
			}
		}},
		{name: "values", yaml: "scanner: {db: /srv/db, maxAge: 24h, workers: 4, queueSize: 10, scanOnPush: []}\n", check: func(t *testing.T, c scanner.Config) {
			if c.DB != "/srv/db" || time.Duration(c.MaxAge) != 24*time.Hour || c.Workers != 4 || c.QueueSize != 10 || len(*c.ScanOnPush) != 0 {
				t.Fatalf("config = %+v", c)
			}
		}},
		{name: "negative workers", yaml: "scanner: {workers: -1}\n", wantErr: "scanner.workers"},
		{name: "negative max age", yaml: "scanner: {maxAge: -1h}\n", wantErr: "scanner.maxAge"},
		{name: "unknown field", yaml: "scanner: {maxAgeHours: 1}\n", wantErr: "maxAgeHours"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "portcullis.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := loadConfig(path)
			if err == nil {
				err = c.defaults()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.Scanner)
		})
	}
}

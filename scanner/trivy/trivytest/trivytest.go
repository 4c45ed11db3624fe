// Package trivytest builds what scanner tests need: a small Trivy
// vulnerability database written with trivy-db's API, images made with
// go-containerregistry from maps of files, and the DB as Trivy's
// db.tar.gz.
package trivytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	tdb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/scanner/trivy"
)

// Advisory is one fixture advisory: package Pkg in Bucket is vulnerable
// to ID below Fixed.
type Advisory struct {
	ID     string
	Bucket string // e.g. "alpine 3.20", "debian 12", "go::GitHub Security Advisory Go"
	Source dbtypes.DataSource
	Pkg    string
	// Fixed is the first fixed version. OS buckets store it as
	// FixedVersion; language buckets as "<Fixed" vulnerable, Fixed patched.
	Fixed          string
	Title          string
	VendorSeverity dbtypes.VendorSeverity
	CVSS           dbtypes.VendorCVSS
}

// The fixture advisories. Versions below Fixed are vulnerable.
var (
	AlpineMusl = Advisory{
		ID: "CVE-2025-26519", Bucket: "alpine 3.20", Pkg: "musl", Fixed: "1.2.5-r1",
		Source:         dbtypes.DataSource{ID: "alpine", Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/"},
		Title:          "musl: iconv out-of-bounds write",
		VendorSeverity: dbtypes.VendorSeverity{"nvd": dbtypes.SeverityHigh},
		CVSS:           dbtypes.VendorCVSS{"nvd": {V3Score: 8.1, V3Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
	}
	DebianOpenSSL = Advisory{
		ID: "CVE-2024-5535", Bucket: "debian 12", Pkg: "openssl", Fixed: "3.0.15-1~deb12u1",
		Source: dbtypes.DataSource{ID: "debian", Name: "Debian Security Tracker", URL: "https://salsa.debian.org/security-tracker-team/security-tracker"},
		Title:  "openssl: SSL_select_next_proto buffer overread",
		// Debian's own rating wins over NVD's for a Debian package.
		VendorSeverity: dbtypes.VendorSeverity{"debian": dbtypes.SeverityLow, "nvd": dbtypes.SeverityCritical},
		CVSS:           dbtypes.VendorCVSS{"nvd": {V3Score: 9.1}},
	}
	GoText = Advisory{
		ID: "GHSA-69ch-w2m2-3vjp", Bucket: "go::GitHub Security Advisory Go", Pkg: "golang.org/x/text", Fixed: "0.38.0",
		Source:         dbtypes.DataSource{ID: "ghsa", Name: "GitHub Security Advisory Go", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Ago"},
		Title:          "golang.org/x/text/language: fixture denial of service",
		VendorSeverity: dbtypes.VendorSeverity{"ghsa": dbtypes.SeverityMedium},
		CVSS:           dbtypes.VendorCVSS{"ghsa": {V3Score: 5.3}},
	}
	Fixtures = []Advisory{AlpineMusl, DebianOpenSSL, GoText}
)

// WriteDB writes a database holding advs into dir, built at builtAt.
func WriteDB(t testing.TB, dir string, builtAt time.Time, advs ...Advisory) {
	t.Helper()
	err := trivy.BuildDB(dir, metadata.Metadata{UpdatedAt: builtAt, NextUpdate: builtAt.Add(6 * time.Hour)}, func(dbc tdb.Config, tx *bolt.Tx) error {
		for _, a := range advs {
			if err := dbc.PutDataSource(tx, a.Bucket, a.Source); err != nil {
				return err
			}
			var adv dbtypes.Advisory
			if strings.Contains(a.Bucket, "::") {
				adv = dbtypes.Advisory{VulnerableVersions: []string{"<" + a.Fixed}, PatchedVersions: []string{a.Fixed}}
			} else {
				adv = dbtypes.Advisory{FixedVersion: a.Fixed}
			}
			if err := dbc.PutAdvisoryDetail(tx, a.ID, a.Pkg, []string{a.Bucket}, adv); err != nil {
				return err
			}
			if err := dbc.SaveAdvisoryDetails(tx, a.ID); err != nil {
				return err
			}
			if err := dbc.PutVulnerability(tx, a.ID, dbtypes.Vulnerability{Title: a.Title, VendorSeverity: a.VendorSeverity, CVSS: a.CVSS}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// DBArchive returns dir's trivy.db and metadata.json as Trivy's
// db.tar.gz.
func DBArchive(t testing.TB, dir string) []byte {
	t.Helper()
	files := map[string][]byte{}
	for _, n := range []string{"trivy.db", "metadata.json"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	return TarGz(t, files)
}

// TarGz returns a gzipped tar of files (name -> content), sorted by name,
// with directories implied.
func TarGz(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTar(zw, files); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTar(w io.Writer, files map[string][]byte) error {
	tw := tar.NewWriter(w)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := filepath.Dir(n); d != "." && d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dl := make([]string, 0, len(dirs))
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	for _, d := range dl {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
			return err
		}
	}
	for _, n := range names {
		mode := int64(0o644)
		if strings.Contains(n, "bin/") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(files[n]))}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Image returns an image with one layer per file map.
func Image(t testing.TB, layers ...map[string][]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, files := range layers {
		// Compressed once here, so that reading the layer costs what
		// reading a pushed layer does.
		b := TarGz(t, files)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Alpine returns the files of an Alpine 3.20 image with the given apk
// packages (name -> version).
func Alpine(pkgs map[string]string) map[string][]byte {
	var db strings.Builder
	for _, n := range sortedKeys(pkgs) {
		fmt.Fprintf(&db, "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:%s\nV:%s\nA:x86_64\nS:1000\nI:2000\nT:%s package\nL:MIT\no:%s\n\n", n, pkgs[n], n, n)
	}
	return map[string][]byte{
		"etc/alpine-release":   []byte("3.20.3\n"),
		"etc/os-release":       []byte("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n"),
		"lib/apk/db/installed": []byte(db.String()),
	}
}

// Debian returns the files of a Debian 12 image with the given dpkg
// packages (name -> version).
func Debian(pkgs map[string]string) map[string][]byte {
	var st strings.Builder
	for _, n := range sortedKeys(pkgs) {
		fmt.Fprintf(&st, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: Fixture <fixture@example.com>\nArchitecture: amd64\nSource: %s\nVersion: %s\nDescription: %s fixture\n\n", n, n, pkgs[n], n)
	}
	return map[string][]byte{
		"etc/debian_version":  []byte("12.7\n"),
		"etc/os-release":      []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n"),
		"var/lib/dpkg/status": []byte(st.String()),
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// GoBinary builds a small Go program that depends on golang.org/x/text at
// version (e.g. "v0.32.0") and returns the executable: its embedded build
// information is what Trivy reads. It works offline from the module
// cache and skips the test when the version is not in it.
func GoBinary(t testing.TB, version string) []byte {
	t.Helper()
	dir := t.TempDir()
	gomod := "module example.com/vulnapp\n\ngo 1.26\n\nrequire golang.org/x/text " + version + "\n"
	main := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/text/language\"\n)\n\nfunc main() { fmt.Println(language.English) }\n"
	for n, c := range map[string]string{"go.mod": gomod, "main.go": main} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	out := filepath.Join(dir, "vulnapp")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir, cmd.Env = dir, env
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "module lookup disabled") || strings.Contains(string(b), "cannot find module") {
			if os.Getenv("CI") == "true" {
				t.Fatalf("golang.org/x/text %s is not in the module cache (CI=true: not skipping): %s", version, b)
			}
			t.Skipf("golang.org/x/text %s is not in the module cache: %s", version, b)
		}
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package trivy_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/scanner/trivy"
	"github.com/portcullis-dev/portcullis/scanner/trivy/trivytest"
)

func TestMain(m *testing.M) {
	// Trivy's buffering default handler must not stay in place.
	trivy.InstallLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	code := m.Run()
	_ = trivy.Close()
	if err := trivy.Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "trivy cleanup:", err)
		code = 1
	}
	if _, err := os.Stat(filepath.Join(os.TempDir(), fmt.Sprintf("trivy-%d", os.Getpid()))); err == nil {
		fmt.Fprintln(os.Stderr, "Trivy's temporary directory was left behind")
		code = 1
	}
	os.Exit(code)
}

// fixtureDB writes the fixture advisories, built now, and returns the dir.
func fixtureDB(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	trivytest.WriteDB(t, dir, time.Now().Add(-time.Hour), trivytest.Fixtures...)
	return dir
}

func newScanner(t testing.TB, dir string) *trivy.Scanner {
	t.Helper()
	s, err := trivy.New(trivy.Options{DBDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scan(t testing.TB, s *trivy.Scanner, img v1.Image) (*scanner.Report, error) {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return s.Scan(context.Background(), digest.Digest(d.String()), img)
}

func find(r *scanner.Report, id, pkg string) *scanner.Vulnerability {
	for i := range r.Vulnerabilities {
		if r.Vulnerabilities[i].ID == id && r.Vulnerabilities[i].Package == pkg {
			return &r.Vulnerabilities[i]
		}
	}
	return nil
}

func TestScanFindings(t *testing.T) {
	s := newScanner(t, fixtureDB(t))
	tests := []struct {
		name     string
		files    map[string][]byte
		os       string // family name
		packages int
		want     *trivytest.Advisory
		// what the finding must say
		installed, severity, pkgType string
		cvss                         float64
	}{
		{
			name: "alpine vulnerable", files: trivytest.Alpine(map[string]string{"musl": "1.2.4-r2", "busybox": "1.36.1-r29"}),
			os: "alpine 3.20.3", packages: 2, want: &trivytest.AlpineMusl,
			installed: "1.2.4-r2", severity: scanner.SeverityHigh, pkgType: "alpine", cvss: 8.1,
		},
		{
			name: "alpine fixed", files: trivytest.Alpine(map[string]string{"musl": "1.2.5-r1", "busybox": "1.36.1-r29"}),
			os: "alpine 3.20.3", packages: 2,
		},
		{
			name: "debian vulnerable", files: trivytest.Debian(map[string]string{"openssl": "3.0.11-1~deb12u1", "zlib1g": "1:1.2.13.dfsg-1"}),
			os: "debian 12.7", packages: 2, want: &trivytest.DebianOpenSSL,
			// Debian rates it LOW; NVD's CRITICAL must not win.
			installed: "3.0.11-1~deb12u1", severity: scanner.SeverityLow, pkgType: "debian", cvss: 9.1,
		},
		{
			name: "debian fixed", files: trivytest.Debian(map[string]string{"openssl": "3.0.15-1~deb12u1"}),
			os: "debian 12.7", packages: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := scan(t, s, trivytest.Image(t, tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if r.OS == nil || r.OS.Family+" "+r.OS.Name != tt.os {
				t.Errorf("OS = %+v, want %s", r.OS, tt.os)
			}
			if r.Packages != tt.packages || len(r.Inventory) != tt.packages {
				t.Errorf("packages = %d (inventory %d), want %d", r.Packages, len(r.Inventory), tt.packages)
			}
			if r.DB.Version != 2 || r.DB.Digest == "" || r.DB.BuiltAt.IsZero() {
				t.Errorf("DB = %+v, want version 2 with digest and build time", r.DB)
			}
			if tt.want == nil {
				if len(r.Vulnerabilities) != 0 {
					t.Fatalf("findings on a fixed image: %+v", r.Vulnerabilities)
				}
				return
			}
			if len(r.Vulnerabilities) != 1 {
				t.Fatalf("%d findings, want 1: %+v", len(r.Vulnerabilities), r.Vulnerabilities)
			}
			v := find(r, tt.want.ID, tt.want.Pkg)
			if v == nil {
				t.Fatalf("no %s in %s: %+v", tt.want.ID, tt.want.Pkg, r.Vulnerabilities)
			}
			if v.InstalledVersion != tt.installed || v.FixedVersion != tt.want.Fixed || v.Severity != tt.severity ||
				v.PkgType != tt.pkgType || v.CVSS != tt.cvss || v.DataSource != string(tt.want.Source.ID) || v.Title != tt.want.Title {
				t.Errorf("finding = %+v\nwant installed %s, fixed %s, severity %s, type %s, cvss %v, source %s",
					v, tt.installed, tt.want.Fixed, tt.severity, tt.pkgType, tt.cvss, tt.want.Source.ID)
			}
			if r.Counts[tt.severity] != 1 || len(r.Counts) != 5 {
				t.Errorf("counts = %v", r.Counts)
			}
		})
	}
}

func TestScanGoBinary(t *testing.T) {
	s := newScanner(t, fixtureDB(t))
	for _, tt := range []struct {
		version string
		vuln    bool
	}{{"v0.32.0", true}, {"v0.38.0", false}} {
		t.Run(tt.version, func(t *testing.T) {
			bin := trivytest.GoBinary(t, tt.version)
			img := trivytest.Image(t, map[string][]byte{"usr/local/bin/vulnapp": bin})
			r, err := scan(t, s, img)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range r.Inventory {
				if p.Name == "golang.org/x/text" && p.Version == tt.version && p.Type == "gobinary" {
					found = true
				}
			}
			if !found {
				t.Fatalf("golang.org/x/text %s not in the inventory: %+v", tt.version, r.Inventory)
			}
			v := find(r, trivytest.GoText.ID, "golang.org/x/text")
			if !tt.vuln {
				if v != nil {
					t.Fatalf("finding on the fixed version: %+v", v)
				}
				return
			}
			if v == nil {
				t.Fatalf("no %s: %+v", trivytest.GoText.ID, r.Vulnerabilities)
			}
			if v.InstalledVersion != tt.version || v.FixedVersion != trivytest.GoText.Fixed || v.Severity != scanner.SeverityMedium ||
				v.PkgType != "gobinary" || v.CVSS != 5.3 || v.Target != "usr/local/bin/vulnapp" || !strings.HasPrefix(v.PURL, "pkg:golang/golang.org/x/text@") {
				t.Errorf("finding = %+v", v)
			}
			// The generated SBOM lists the module.
			sbom, err := scanner.CycloneDX(r, "test")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(sbom, []byte(`"pkg:golang/golang.org/x/text@`+tt.version+`"`)) {
				t.Errorf("SBOM lacks the module's purl:\n%s", sbom)
			}
		})
	}
}

func TestDBFailures(t *testing.T) {
	img := trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"}))
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		maxAge  time.Duration
		want    error
		wantMsg string
	}{
		{name: "missing", setup: func(t *testing.T, dir string) {}, want: scanner.ErrNoDB, wantMsg: "db import"},
		{
			name: "corrupt file",
			setup: func(t *testing.T, dir string) {
				trivytest.WriteDB(t, dir, time.Now(), trivytest.Fixtures...)
				garbage := bytes.Repeat([]byte("not a bolt database "), 4096)
				if err := os.WriteFile(filepath.Join(dir, "trivy.db"), garbage, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: scanner.ErrDBCorrupt, wantMsg: "trivy.db",
		},
		{
			name: "truncated file",
			setup: func(t *testing.T, dir string) {
				trivytest.WriteDB(t, dir, time.Now(), trivytest.Fixtures...)
				if err := os.Truncate(filepath.Join(dir, "trivy.db"), 100); err != nil {
					t.Fatal(err)
				}
			},
			want: scanner.ErrDBCorrupt,
		},
		{
			name: "no metadata",
			setup: func(t *testing.T, dir string) {
				trivytest.WriteDB(t, dir, time.Now(), trivytest.Fixtures...)
				if err := os.Remove(filepath.Join(dir, "metadata.json")); err != nil {
					t.Fatal(err)
				}
			},
			want: scanner.ErrDBCorrupt, wantMsg: "metadata.json",
		},
		{
			name: "metadata not JSON",
			setup: func(t *testing.T, dir string) {
				trivytest.WriteDB(t, dir, time.Now(), trivytest.Fixtures...)
				if err := os.WriteFile(filepath.Join(dir, "metadata.json"), []byte("{"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: scanner.ErrDBCorrupt,
		},
		{
			name: "too old",
			setup: func(t *testing.T, dir string) {
				trivytest.WriteDB(t, dir, time.Now().Add(-30*24*time.Hour), trivytest.Fixtures...)
			},
			want: scanner.ErrDBTooOld, wantMsg: "over the 168h0m0s limit",
		},
		{
			name: "old but within a configured max age",
			setup: func(t *testing.T, dir string) {
				trivytest.WriteDB(t, dir, time.Now().Add(-30*24*time.Hour), trivytest.Fixtures...)
			},
			maxAge: 60 * 24 * time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			tt.setup(t, dir)
			s, err := trivy.New(trivy.Options{DBDir: dir, MaxAge: tt.maxAge, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			r, err := scan(t, s, img)
			if tt.want == nil {
				if err != nil || find(r, trivytest.AlpineMusl.ID, "musl") == nil {
					t.Fatalf("scan = %v, %v; want the musl finding", r, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || r != nil {
				t.Fatalf("scan = %v, %v; want no report and %v", r, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			if _, err := s.DBInfo(t.Context()); !errors.Is(err, tt.want) {
				t.Errorf("DBInfo: %v, want %v", err, tt.want)
			}
		})
	}
}

// content is a scanner.Content over maps, to serve broken images.
type content struct {
	manifests map[digest.Digest][]byte
	blobs     map[digest.Digest][]byte
}

func (c *content) Manifest(_ context.Context, _ string, d digest.Digest) (string, []byte, error) {
	b, ok := c.manifests[d]
	if !ok {
		return "", nil, errors.New("not found")
	}
	return string(types.DockerManifestSchema2), b, nil
}

func (c *content) OpenBlob(_ context.Context, _ string, d digest.Digest) (io.ReadCloser, error) {
	b, ok := c.blobs[d]
	if !ok {
		return nil, errors.New("not found")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// storeImage puts a manifest with config and layers into c and returns its
// digest. diffIDs are what the config claims.
func (c *content) storeImage(t *testing.T, layers [][]byte, diffIDs []v1.Hash) digest.Digest {
	t.Helper()
	cfg := v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cb, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Digest: sha(cb), Size: int64(len(cb))},
	}
	c.blobs[digest.FromBytes(cb)] = cb
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerLayer, Digest: sha(l), Size: int64(len(l))})
		c.blobs[digest.FromBytes(l)] = l
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c.manifests[digest.FromBytes(mb)] = mb
	return digest.FromBytes(mb)
}

func TestScanBrokenLayer(t *testing.T) {
	s := newScanner(t, fixtureDB(t))
	good := trivytest.TarGz(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"}))
	gz, err := (func() (v1.Hash, error) {
		// the diffID of good, for a config that matches it
		zr, err := gzipReader(good)
		if err != nil {
			return v1.Hash{}, err
		}
		b, err := io.ReadAll(zr)
		return sha(b), err
	})()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("control: the same image scans", func(t *testing.T) {
		c := &content{manifests: map[digest.Digest][]byte{}, blobs: map[digest.Digest][]byte{}}
		d := c.storeImage(t, [][]byte{good}, []v1.Hash{gz})
		img, err := scanner.NewImage(t.Context(), c, "staging/app", d)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Scan(t.Context(), d, img)
		if err != nil || find(r, trivytest.AlpineMusl.ID, "musl") == nil {
			t.Fatalf("scan = %+v, %v", r, err)
		}
	})

	t.Run("bad gzip", func(t *testing.T) {
		bad := append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{0xde, 0xad}, 512)...)
		c := &content{manifests: map[digest.Digest][]byte{}, blobs: map[digest.Digest][]byte{}}
		d := c.storeImage(t, [][]byte{bad}, []v1.Hash{sha(bad)})
		img, err := scanner.NewImage(t.Context(), c, "staging/app", d)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Scan(t.Context(), d, img)
		if !errors.Is(err, scanner.ErrImage) || r != nil {
			t.Fatalf("scan = %v, %v; want ErrImage", r, err)
		}
		t.Log(err)
	})

	t.Run("digest mismatch", func(t *testing.T) {
		c := &content{manifests: map[digest.Digest][]byte{}, blobs: map[digest.Digest][]byte{}}
		d := c.storeImage(t, [][]byte{good}, []v1.Hash{gz})
		// The store now returns other bytes for the layer's digest.
		tampered := trivytest.TarGz(t, trivytest.Alpine(map[string]string{"musl": "1.2.5-r1"}))
		c.blobs[digest.FromBytes(good)] = tampered
		img, err := scanner.NewImage(t.Context(), c, "staging/app", d)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Scan(t.Context(), d, img)
		if !errors.Is(err, scanner.ErrImage) || r != nil || !strings.Contains(err.Error(), "blob "+sha(good).String()) {
			t.Fatalf("scan = %v, %v; want ErrImage about blob %s", r, err, sha(good))
		}
	})
}

// TestDBSwap scans with two databases in turn and replaces one in place:
// trivy-db's single global handle must follow.
func TestDBSwap(t *testing.T) {
	withMusl := fixtureDB(t)
	empty := filepath.Join(t.TempDir(), "db")
	trivytest.WriteDB(t, empty, time.Now(), trivytest.DebianOpenSSL)
	a, b := newScanner(t, withMusl), newScanner(t, empty)
	img := trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"}))

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			s, want := a, 1
			if i%2 == 1 {
				s, want = b, 0
			}
			r, err := scan(t, s, img)
			switch {
			case err != nil:
				errs <- err
			case len(r.Vulnerabilities) != want:
				errs <- fmt.Errorf("scan %d: %d findings, want %d", i, len(r.Vulnerabilities), want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Import a database without the musl advisory over a's directory.
	before, err := a.DBInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	st, err := trivy.ImportArchive(t.Context(), withMusl, bytes.NewReader(trivytest.DBArchive(t, empty)), "test archive")
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest == before.Digest || st.Source != "test archive" {
		t.Fatalf("after import: %+v (before %s)", st, before.Digest)
	}
	r, err := scan(t, a, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Vulnerabilities) != 0 || r.DB.Digest != st.Digest {
		t.Fatalf("after a DB update: %d findings with DB %s, want 0 with %s", len(r.Vulnerabilities), r.DB.Digest, st.Digest)
	}
}

func TestImport(t *testing.T) {
	src := fixtureDB(t)
	archive := trivytest.DBArchive(t, src)
	dst := filepath.Join(t.TempDir(), "trivy", "db")

	st, err := trivy.ImportArchive(t.Context(), dst, bytes.NewReader(archive), "db.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	want := sha(mustRead(t, filepath.Join(src, "trivy.db")))
	if st.Digest != want.String() || st.Version != 2 || st.Source != "db.tar.gz" || st.ImportedAt.IsZero() {
		t.Fatalf("status = %+v, want digest %s", st, want)
	}
	// The imported database scans.
	r, err := scan(t, newScanner(t, dst), trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"})))
	if err != nil || find(r, trivytest.AlpineMusl.ID, "musl") == nil || r.DB.Source != "db.tar.gz" {
		t.Fatalf("scan with the imported DB = %+v, %v", r, err)
	}

	// A directory import.
	dst2 := filepath.Join(t.TempDir(), "db")
	if st, err := trivy.ImportDir(t.Context(), dst2, src); err != nil || st.Digest != want.String() {
		t.Fatalf("ImportDir = %+v, %v", st, err)
	}

	bad := []struct {
		name string
		data []byte
		want error
	}{
		{"not gzip", []byte("hello"), scanner.ErrDBCorrupt},
		{"no metadata", trivytest.TarGz(t, map[string][]byte{"trivy.db": mustRead(t, filepath.Join(src, "trivy.db"))}), scanner.ErrDBCorrupt},
		{"corrupt db", trivytest.TarGz(t, map[string][]byte{"trivy.db": bytes.Repeat([]byte("x"), 8192), "metadata.json": mustRead(t, filepath.Join(src, "metadata.json"))}), scanner.ErrDBCorrupt},
		{"truncated archive", archive[:len(archive)/2], scanner.ErrDBCorrupt},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := trivy.ImportArchive(t.Context(), dst, bytes.NewReader(tt.data), tt.name)
			if !errors.Is(err, tt.want) {
				t.Fatalf("import: %v, want %v", err, tt.want)
			}
			// The previous database is untouched.
			if st, err := trivy.ReadStatus(dst); err != nil || st.Digest != want.String() {
				t.Fatalf("after a failed import: %+v, %v", st, err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipReader(b []byte) (io.Reader, error) { return gzip.NewReader(bytes.NewReader(b)) }

// TestCleanupThenScan: Cleanup removes $TMPDIR/trivy-<pid>, and a later
// scan still works (Trivy remembers the directory's path, not whether it
// still exists).
func TestCleanupThenScan(t *testing.T) {
	s := newScanner(t, fixtureDB(t))
	img := trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"}))
	for range 2 {
		if _, err := scan(t, s, img); err != nil {
			t.Fatal(err)
		}
		if err := trivy.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(os.TempDir(), fmt.Sprintf("trivy-%d", os.Getpid()))); err == nil {
			t.Fatal("Cleanup left $TMPDIR/trivy-<pid>")
		}
	}
}

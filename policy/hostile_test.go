package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tarEntry is one entry of a crafted bundle tarball.
type tarEntry struct {
	hdr  tar.Header
	body io.Reader
}

func craftedTarball(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if e.body != nil {
			if _, err := io.Copy(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zeros reads n zero bytes.
type zeros int64

func (z *zeros) Read(p []byte) (int, error) {
	if *z <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), int64(*z))
	clear(p[:n])
	*z -= zeros(n)
	return int(n), nil
}

func regular(name string, size int64) tarEntry {
	z := zeros(size)
	return tarEntry{hdr: tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}, body: &z}
}

// A bundle from a registry is untrusted input until it compiles: a small
// gzip stream that inflates beyond MaxBundleBytes is refused before OPA
// holds it in memory.
func TestPolicyBundleTarballBomb(t *testing.T) {
	t.Parallel()
	bomb := craftedTarball(t, regular("data.json", MaxBundleBytes+1))
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed; the test wants a small one", len(bomb))
	}
	_, err := LoadTarball(bytes.NewReader(bomb), "bomb")
	if err == nil || !strings.Contains(err.Error(), "uncompressed") {
		t.Fatalf("LoadTarball of a gzip bomb: %v, want a size error", err)
	}
	if err := extractTarball(bytes.NewReader(bomb), t.TempDir()); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("extractTarball of a gzip bomb: %v, want a size error", err)
	}
}

// policy test writes a bundle's files to disk: nothing may land outside
// the directory, links are not made, and the number of files is bounded.
func TestPolicyBundleExtractHostile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []tarEntry
		want    string // error substring; "" for success
	}{
		// A leading ../ is cleaned away (path.Clean of "/"+name): the file lands inside.
		{"parent", []tarEntry{regular("../evil.rego", 1)}, ""},
		{"deep parent", []tarEntry{regular("a/../../evil.rego", 1)}, ""},
		{"symlink then through it", []tarEntry{
			{hdr: tar.Header{Name: "link", Linkname: "..", Typeflag: tar.TypeSymlink}},
			regular("link/evil.rego", 1)}, ""},
		{"hard link", []tarEntry{{hdr: tar.Header{Name: "hard", Linkname: "/etc/passwd", Typeflag: tar.TypeLink}}}, ""},
		{"duplicate", []tarEntry{regular("a.rego", 1), regular("a.rego", 1)}, "exists"},
		{"many files", func() []tarEntry {
			var es []tarEntry
			for i := range maxExtractFiles + 1 {
				es = append(es, regular("d/f"+strconv.Itoa(i), 0))
			}
			return es
		}(), "files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dir := filepath.Join(parent, "bundle")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := extractTarball(bytes.NewReader(craftedTarball(t, tt.entries...)), dir)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("extractTarball: %v, want %q", err, tt.want)
			}
			outside, _ := os.ReadDir(parent)
			if len(outside) != 1 {
				t.Errorf("%d entries beside the bundle directory, want none", len(outside)-1)
			}
			err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type()&os.ModeSymlink != 0 {
					t.Errorf("%s is a link", p)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

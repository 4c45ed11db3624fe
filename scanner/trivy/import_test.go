package trivy_test

import (
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/scanner/trivy"
	"github.com/portcullis-dev/portcullis/scanner/trivy/trivytest"
)

// dbArtifact is Trivy's DB as the OCI artifact Aqua publishes: config of
// configType, one layer of layerType holding archive.
func dbArtifact(t *testing.T, archive []byte, configType, layerType types.MediaType) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), configType)
	img, err := mutate.AppendLayers(img, static.NewLayer(archive, layerType))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pushArtifact writes img to a fresh in-process registry and returns the
// reference and the manifest digest.
func pushArtifact(t *testing.T, h http.Handler, repo string, img v1.Image) (name.Reference, v1.Hash) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/" + repo + ":2")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref, d
}

func TestImportOCI(t *testing.T) {
	t.Parallel()
	src := fixtureDB(t)
	archive := trivytest.DBArchive(t, src)
	want := sha(mustRead(t, filepath.Join(src, "trivy.db"))).String()
	otherDB := filepath.Join(t.TempDir(), "db")
	trivytest.WriteDB(t, otherDB, time.Now(), trivytest.GoText)
	other := trivytest.DBArchive(t, otherDB)

	ref, d := pushArtifact(t, registry.New(registry.Logger(discardLog())), "mirror/trivy-db",
		dbArtifact(t, archive, trivy.MediaTypeDBConfig, trivy.MediaTypeDBLayer))
	dst := filepath.Join(t.TempDir(), "trivy", "db")
	// Through Import, as `portcullis db import REF` calls it.
	st, err := trivy.Import(t.Context(), dst, ref.String(), trivy.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantSource := ref.Context().Name() + "@" + d.String()
	if st.Digest != want || st.Source != wantSource || st.Version != 2 {
		t.Fatalf("status = %+v, want digest %s from %s", st, want, wantSource)
	}
	r, err := scan(t, newScanner(t, dst), trivytest.Image(t, trivytest.Alpine(map[string]string{"musl": "1.2.4-r2"})))
	if err != nil || find(r, trivytest.AlpineMusl.ID, "musl") == nil || r.DB.Source != wantSource {
		t.Fatalf("scan with the imported DB = %+v, %v", r, err)
	}

	bad := []struct {
		name    string
		handler http.Handler
		img     v1.Image
		want    error
		wantMsg string
	}{
		{
			name: "not a Trivy DB artifact", handler: registry.New(registry.Logger(discardLog())),
			img:     dbArtifact(t, archive, types.OCIConfigJSON, trivy.MediaTypeDBLayer),
			wantMsg: "not a Trivy DB artifact",
		},
		{
			name: "no DB layer", handler: registry.New(registry.Logger(discardLog())),
			img:     dbArtifact(t, archive, trivy.MediaTypeDBConfig, types.OCILayer),
			wantMsg: "no layer of type",
		},
		{
			name: "corrupt archive", handler: registry.New(registry.Logger(discardLog())),
			img:  dbArtifact(t, []byte("not gzip"), trivy.MediaTypeDBConfig, trivy.MediaTypeDBLayer),
			want: scanner.ErrDBCorrupt,
		},
		{
			// The registry serves another well-formed DB than the digest names.
			name: "layer bytes do not match the digest", handler: swapBlobs(registry.New(registry.Logger(discardLog())), other),
			img:  dbArtifact(t, archive, trivy.MediaTypeDBConfig, trivy.MediaTypeDBLayer),
			want: scanner.ErrDBCorrupt, wantMsg: "verifying sha256",
		},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			ref, _ := pushArtifact(t, tt.handler, "mirror/bad", tt.img)
			_, err := trivy.ImportOCI(t.Context(), dst, ref)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ImportOCI: %v, want %v mentioning %q", err, tt.want, tt.wantMsg)
			}
			if st, err := trivy.ReadStatus(dst); err != nil || st.Digest != want || st.Source != wantSource {
				t.Fatalf("after a failed import: %+v, %v; want the earlier DB", st, err)
			}
		})
	}
}

// swapBlobs serves other, a well-formed DB archive, for every blob GET to
// h: the bytes do not match the digest asked for. Pushes reach h
// unchanged.
func swapBlobs(h http.Handler, other []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(other)))
		_, _ = w.Write(other)
	})
}

func TestImportLocal(t *testing.T) {
	t.Parallel()
	src := fixtureDB(t)
	want := sha(mustRead(t, filepath.Join(src, "trivy.db"))).String()
	archive := filepath.Join(t.TempDir(), "db.tar.gz")
	if err := os.WriteFile(archive, trivytest.DBArchive(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	absSrc, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, src, wantSource string
	}{
		{"archive", archive, archive},
		{"directory", src, absSrc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dst := filepath.Join(t.TempDir(), "db")
			st, err := trivy.Import(t.Context(), dst, tt.src, trivy.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Digest != want || st.Source != tt.wantSource || st.Dir != dst {
				t.Fatalf("status = %+v, want digest %s from %s", st, want, tt.wantSource)
			}
		})
	}
}

// TestImportMissingPath: a source that looks like a path and does not
// exist is a file error, never a registry request; one that does not is
// taken for a reference.
func TestImportMissingPath(t *testing.T) {
	t.Parallel()
	// Every registry request would land here.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("registry request %s %s for a path", r.Method, r.URL)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	for _, src := range []string{
		filepath.Join(dir, "missing"),
		"./" + host + "/missing",
		"../" + host + "/missing",
		host + "/db.tar.gz",
		host + "/db.tgz",
		host + "/db.tar",
	} {
		t.Run(src, func(t *testing.T) {
			_, err := trivy.Import(t.Context(), filepath.Join(dir, "db"), src, trivy.ImportOptions{})
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Import(%q): %v, want a not-exist error", src, err)
			}
		})
	}

	// Not a path: the registry is asked, and its 404 is the error.
	var asked atomic.Bool
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(true)
		http.NotFound(w, r)
	}))
	defer reg.Close()
	_, err := trivy.Import(t.Context(), filepath.Join(dir, "db"), strings.TrimPrefix(reg.URL, "http://")+"/mirror/trivy-db:2", trivy.ImportOptions{})
	if err == nil || errors.Is(err, fs.ErrNotExist) || !asked.Load() {
		t.Fatalf("Import of a reference: %v (registry asked: %v), want the registry's error", err, asked.Load())
	}
	if _, err := trivy.Import(t.Context(), filepath.Join(dir, "db"), "Not A Reference!", trivy.ImportOptions{}); err == nil || !strings.Contains(err.Error(), "neither a file nor an image reference") {
		t.Fatalf("Import of garbage: %v", err)
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// Package registrytest serves a fresh, real registry (SQLite metadata in a
// temporary directory, in-memory blobs) over loopback HTTP for tests.
package registrytest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/store"
)

// New returns a registry over a fresh Store and the host:port it is
// served on; both are closed when the test ends.
func New(t testing.TB) (*registry.Registry, string) {
	t.Helper()
	return Serve(t, Store(t))
}

// OnDisk is New over OnDiskStore.
func OnDisk(t testing.TB) (*registry.Registry, string) {
	t.Helper()
	return Serve(t, OnDiskStore(t))
}

// Store returns a fresh storage core: SQLite metadata in a temporary
// directory, blobs in memory. Build the gate on it, then Serve it.
func Store(t testing.TB) *store.Store {
	t.Helper()
	return newStore(t, blobstore.New(inmemory.New()))
}

// OnDiskStore is Store with blobs in a temporary directory, for large
// blobs (the in-memory driver copies on every append).
func OnDiskStore(t testing.TB) *store.Store {
	t.Helper()
	root := t.TempDir()
	return newStore(t, blobstore.New(filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}), blobstore.WithLocalRoot(root)))
}

func newStore(t testing.TB, blobs *blobstore.Store) *store.Store {
	t.Helper()
	meta, err := sqlite.Open(context.Background(), t.TempDir()+"/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return store.New(meta, blobs, nil)
}

// Serve serves the HTTP API over s, built with opts (registry.WithGate,
// ...), on loopback until the test ends, and returns it and its
// host:port.
func Serve(t testing.TB, s *store.Store, opts ...registry.Option) (*registry.Registry, string) {
	t.Helper()
	reg := registry.New(s, opts...)
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return reg, strings.TrimPrefix(srv.URL, "http://")
}

// AbandonUpload starts an upload session in repo on the registry at host
// (host:port, plain HTTP), sends it one chunk and leaves it; it returns
// the session's ID.
func AbandonUpload(t testing.TB, host, repo string) string {
	t.Helper()
	resp, err := http.Post("http://"+host+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatalf("start upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	req, err := http.NewRequest(http.MethodPatch, "http://"+host+loc, strings.NewReader("abandoned bytes"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload a chunk: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload a chunk: %s", resp.Status)
	}
	id := loc[strings.LastIndex(loc, "/")+1:]
	if i := strings.IndexByte(id, '?'); i >= 0 {
		id = id[:i]
	}
	return id
}

// SameCollection fails t unless the collection done deleted exactly what
// the dry run plan listed (tags, manifests, links, blobs, uploads and
// bytes), reclaimed some bytes, and skipped nothing.
func SameCollection(t testing.TB, plan, done *registry.GCReport) {
	t.Helper()
	for _, l := range []struct {
		what       string
		plan, done []string
	}{{"tags", plan.Tags, done.Tags}, {"manifests", plan.Manifests, done.Manifests}, {"links", plan.Links, done.Links}, {"blobs", plan.Blobs, done.Blobs}, {"uploads", plan.Uploads, done.Uploads}} {
		p, d := slices.Sorted(slices.Values(l.plan)), slices.Sorted(slices.Values(l.done))
		if !slices.Equal(p, d) {
			t.Errorf("%s: the dry run listed %q, the collection deleted %q", l.what, p, d)
		}
	}
	if !plan.DryRun || done.DryRun || plan.Bytes != done.Bytes || done.Bytes == 0 || done.Skipped != 0 {
		t.Errorf("dry run (%v): %d bytes; collection (%v): %d bytes, %d skipped; want equal, > 0, none skipped",
			plan.DryRun, plan.Bytes, done.DryRun, done.Bytes, done.Skipped)
	}
}

// Package registrytest serves a fresh, real registry (SQLite metadata in a
// temporary directory, in-memory blobs) over loopback HTTP for tests.
package registrytest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
)

// New returns the registry and the host:port it is served on; both are
// closed when the test ends.
func New(t testing.TB) (*registry.Registry, string) {
	t.Helper()
	meta, err := sqlite.Open(context.Background(), t.TempDir()+"/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	reg := registry.New(meta, blobstore.New(inmemory.New()))
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return reg, strings.TrimPrefix(srv.URL, "http://")
}

package source_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/verifier/source"
	"github.com/portcullis-dev/portcullis/verifier/source/sourcetest"
)

// newRegistry serves a fresh registry over loopback HTTP.
func newRegistry(t *testing.T) (*registry.Registry, string) {
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

func TestRemote(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) (source.Source, string) {
		_, host := newRegistry(t)
		return source.NewRemote(host), host
	})
}

func TestLocal(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) (source.Source, string) {
		reg, host := newRegistry(t)
		return reg.Source(), host
	})
}

package registry_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/store"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

type pushEvent struct {
	repo string
	d    digest.Digest
}

func TestManifestPushedHook(t *testing.T) {
	meta, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	var (
		mu     sync.Mutex
		events []pushEvent
	)
	reg := registry.New(store.New(meta, blobstore.New(inmemory.New()), nil),
		registry.WithLogger(slog.New(slog.DiscardHandler)),
		registry.WithManifestPushed(func(ctx context.Context, repo string, d digest.Digest) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, pushEvent{repo, d})
		}))
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/staging/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]pushEvent(nil), events...)
	mu.Unlock()
	if len(got) != 1 || got[0].repo != "staging/app" || got[0].d.String() != want.String() {
		t.Fatalf("hook calls = %v, want one for staging/app@%s", got, want)
	}

	// A manifest refused (its blobs are not in the repository) is not
	// reported.
	other, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := other.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/v2/staging/app/manifests/2", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT of a manifest with unknown blobs: status %d, want 400", resp.StatusCode)
	}
	mu.Lock()
	n := len(events)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("hook called %d times after a refused PUT, want 1", n)
	}

	// OpenBlob streams a layer of the pushed image, and only from a
	// repository it is linked into.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := reg.Store().OpenBlob(t.Context(), "staging/app", digest.Digest(ld.String()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(b); got.String() != ld.String() {
		t.Fatalf("OpenBlob content digest %s, want %s", got, ld)
	}
	if _, err := reg.Store().OpenBlob(t.Context(), "other/repo", digest.Digest(ld.String())); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("OpenBlob from a repository without the blob: %v, want ErrNotFound", err)
	}
}

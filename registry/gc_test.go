package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/registry/metadata/postgres"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/registry/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// gcBackends opens a fresh metadata store of each kind the collector runs on.
var gcBackends = map[string]func(t *testing.T) metadata.Store{
	"sqlite": func(t *testing.T) metadata.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "metadata.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
	"postgres": func(t *testing.T) metadata.Store {
		s, err := postgres.Open(t.Context(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
}

type gcHarness struct {
	reg   *registry.Registry
	host  string
	blobs *blobstore.Store
}

func newGCHarness(t *testing.T, meta metadata.Store) *gcHarness {
	root := t.TempDir()
	blobs := blobstore.New(filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}), blobstore.WithLocalRoot(root))
	reg := registry.New(store.New(meta, blobs, nil), registry.WithLogger(slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &gcHarness{reg: reg, host: strings.TrimPrefix(srv.URL, "http://"), blobs: blobs}
}

func (h *gcHarness) ref(t testing.TB, s string) name.Reference {
	r, err := name.ParseReference(h.host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *gcHarness) push(t testing.TB, img v1.Image, ref string) v1.Hash {
	t.Helper()
	if err := remote.Write(h.ref(t, ref), img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func randomImage(t testing.TB) v1.Image {
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestGC pushes live and dead content, then checks that a dry run plans
// exactly what the real run deletes, that the dead content is gone, and
// that every live image is still whole.
func TestGC(t *testing.T) {
	for backend, open := range gcBackends {
		t.Run(backend, func(t *testing.T) { testGC(t, open(t)) })
	}
}

func testGC(t *testing.T, meta metadata.Store) {
	ctx := t.Context()
	h := newGCHarness(t, meta)

	// Live: a tagged image, its referrer, an index and its children.
	live := randomImage(t)
	liveD := h.push(t, live, "staging/app:live")
	sig := mutate.Subject(randomImageWithLayers(t, 1), mustDesc(t, live)).(v1.Image)
	h.push(t, sig, "staging/app@"+mustDigest(t, sig).String())
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(h.ref(t, "staging/app:index"), idx); err != nil {
		t.Fatal(err)
	}
	// Dead: an image pushed by digest, its referrer, and an image whose tag
	// was deleted.
	dead := randomImage(t)
	deadD := h.push(t, dead, "staging/app@"+mustDigest(t, dead).String())
	deadSig := mutate.Subject(randomImageWithLayers(t, 1), mustDesc(t, dead)).(v1.Image)
	h.push(t, deadSig, "staging/app@"+mustDigest(t, deadSig).String())
	untagged := randomImage(t)
	h.push(t, untagged, "staging/other:gone")
	if err := remote.Delete(h.ref(t, "staging/other:gone")); err != nil {
		t.Fatal(err)
	}
	// Retention: keep the last 2 tags and release-* in staging/ret.
	for i := range 5 {
		h.push(t, randomImage(t), fmt.Sprintf("staging/ret:v%d", i))
		time.Sleep(5 * time.Millisecond) // distinct tag times
	}
	h.push(t, randomImage(t), "staging/ret:release-1")
	h.push(t, randomImage(t), "staging/ret:v9")
	// An abandoned upload with bytes.
	registrytest.AbandonUpload(t, h.host, "staging/app")

	opts := registry.GCOptions{
		GracePeriod: time.Hour, UploadMaxAge: time.Hour,
		Retention: []registry.RetentionRule{{Namespace: "staging/ret", KeepLast: 2, KeepPattern: "release-.*"}},
		Now:       func() time.Time { return time.Now().Add(2 * time.Hour) },
	}
	// Nothing is older than the grace period yet: nothing goes.
	young := opts
	young.Now, young.DryRun = time.Now, true
	if rep, err := h.reg.CollectGarbage(ctx, young); err != nil || len(rep.Manifests)+len(rep.Blobs)+len(rep.Links)+len(rep.Uploads) != 0 {
		t.Fatalf("collection inside the grace period = %+v, %v; want nothing", rep, err)
	}

	dry := opts
	dry.DryRun = true
	plan, err := h.reg.CollectGarbage(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.reg.CollectGarbage(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	registrytest.SameCollection(t, plan, got)
	if want := []string{"staging/ret:v0", "staging/ret:v1", "staging/ret:v2", "staging/ret:v3", "staging/ret:v4"}; !slices.Equal(slices.Sorted(slices.Values(got.Tags)), want) {
		t.Errorf("retention deleted tags %q, want %q", got.Tags, want)
	}
	if len(got.Uploads) != 1 {
		t.Errorf("uploads deleted: %q, want the abandoned one", got.Uploads)
	}
	wantDead := []string{"staging/app@" + deadD.String(), "staging/app@" + mustDigest(t, deadSig).String(), "staging/other@" + mustDigest(t, untagged).String()}
	for _, d := range wantDead {
		if !slices.Contains(got.Manifests, d) {
			t.Errorf("%s was not collected (collected %q)", d, got.Manifests)
		}
	}
	if n := len(got.Manifests); n != len(wantDead)+5 {
		t.Errorf("collected %d manifests, want %d (3 dead, 5 untagged by retention): %q", n, len(wantDead)+5, got.Manifests)
	}
	// Every live image is whole: its manifest, config and layers read
	// back and match their digests.
	for _, ref := range []string{"staging/app:live", "staging/app@" + mustDigest(t, sig).String(), "staging/ret:v9", "staging/ret:release-1"} {
		img, err := remote.Image(h.ref(t, ref))
		if err != nil {
			t.Fatalf("pull %s after gc: %v", ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("%s after gc: %v", ref, err)
		}
	}
	ix, err := remote.Index(h.ref(t, "staging/app:index"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(ix); err != nil {
		t.Fatalf("index after gc: %v", err)
	}
	if _, err := remote.Image(h.ref(t, "staging/app@"+deadD.String())); err == nil {
		t.Error("the dead image is still served")
	}
	rs, err := remote.Referrers(h.ref(t, "staging/app@"+liveD.String()).Context().Digest(liveD.String()))
	if err != nil {
		t.Fatal(err)
	}
	if im, err := rs.IndexManifest(); err != nil || len(im.Manifests) != 1 {
		t.Errorf("referrers of the live image after gc: %v, %v; want the signature", im, err)
	}
	// A second collection finds nothing more.
	if rep, err := h.reg.CollectGarbage(ctx, dry); err != nil || len(rep.Manifests)+len(rep.Blobs)+len(rep.Links)+len(rep.Tags) != 0 {
		t.Errorf("second collection plans %+v, %v; want nothing", rep, err)
	}
}

// TestGCUnderLoad collects garbage in a loop, with a one-second grace
// period, while clients push tagged images and untagged garbage; every
// push must succeed and every tagged image must be whole afterwards.
func TestGCUnderLoad(t *testing.T) {
	for backend, open := range gcBackends {
		t.Run(backend, func(t *testing.T) { testGCUnderLoad(t, open(t)) })
	}
}

func testGCUnderLoad(t *testing.T, meta metadata.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	h := newGCHarness(t, meta)
	var collected, runs atomic.Int64
	gcDone := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			rep, err := h.reg.CollectGarbage(ctx, registry.GCOptions{GracePeriod: time.Second, UploadMaxAge: time.Minute})
			if err != nil {
				if errors.Is(err, context.Canceled) {
					break
				}
				gcDone <- err
				return
			}
			runs.Add(1)
			collected.Add(int64(len(rep.Manifests)))
		}
		gcDone <- nil
	}()
	const clients, each = 4, 8
	var wg sync.WaitGroup
	tagged := make(chan string, clients*each)
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				ref := fmt.Sprintf("load/c%d:v%d", c, i)
				if err := remote.Write(h.ref(t, ref), randomImage(t)); err != nil {
					errs <- fmt.Errorf("push %s: %w", ref, err)
					return
				}
				tagged <- ref
				garbage := randomImage(t)
				if err := remote.Write(h.ref(t, fmt.Sprintf("load/c%d@%s", c, mustDigest(t, garbage))), garbage); err != nil {
					errs <- fmt.Errorf("push garbage: %w", err)
					return
				}
				// Pulls go on too.
				if _, err := remote.Image(h.ref(t, ref)); err != nil {
					errs <- fmt.Errorf("pull %s: %w", ref, err)
					return
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(1500 * time.Millisecond) // let the garbage age past the grace period
	deadline := time.Now().Add(30 * time.Second)
	for collected.Load() < clients*each && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-gcDone; err != nil {
		t.Fatalf("gc: %v", err)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(tagged)
	for ref := range tagged {
		img, err := remote.Image(h.ref(t, ref))
		if err != nil {
			t.Fatalf("pull %s after gc: %v", ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("%s after gc: %v", ref, err)
		}
	}
	if collected.Load() < clients*each {
		t.Fatalf("%d collections removed %d manifests, want the %d untagged ones", runs.Load(), collected.Load(), clients*each)
	}
	t.Logf("%d collections during the load removed %d manifests", runs.Load(), collected.Load())
}

func randomImageWithLayers(t testing.TB, n int) v1.Image {
	img := empty.Image
	for range n {
		l, err := random.Layer(128, "application/vnd.oci.image.layer.v1.tar")
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return mutate.MediaType(mutate.ConfigMediaType(img, "application/vnd.example.sig"), "application/vnd.oci.image.manifest.v1+json")
}

func mustDigest(t testing.TB, img v1.Image) v1.Hash {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustDesc(t testing.TB, img v1.Image) v1.Descriptor {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	sz, err := img.Size()
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: sz}
}

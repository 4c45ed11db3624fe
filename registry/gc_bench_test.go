package registry_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/registry/metadata/postgres"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/store"
)

// BenchmarkGC10k collects a registry of 10,000 manifests (100
// repositories, each manifest with its own 4 KiB layer and config), of
// which half are untagged: it reports the collection's time and the bytes
// it reclaimed. GC_BENCH_POSTGRES=1 runs it on PostgreSQL.
func BenchmarkGC10k(b *testing.B) {
	const manifests = 10_000
	for b.Loop() {
		b.StopTimer()
		var meta metadata.Store
		var err error
		if os.Getenv("GC_BENCH_POSTGRES") == "1" {
			meta, err = postgres.Open(b.Context(), pgtest.DSN(b))
		} else {
			meta, err = sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "metadata.db"))
		}
		if err != nil {
			b.Fatal(err)
		}
		root := b.TempDir()
		blobs := blobstore.New(filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}), blobstore.WithLocalRoot(root))
		reg := registry.New(store.New(meta, blobs, nil), registry.WithLogger(slog.New(slog.DiscardHandler)))
		ctx := b.Context()
		layer := make([]byte, 4096)
		for i := range manifests {
			repo := fmt.Sprintf("bench/r%d", i%100)
			copy(layer, fmt.Sprintf("layer %d", i))
			cfg := []byte(fmt.Sprintf(`{"n":%d}`, i))
			var descs []string
			for _, c := range [][]byte{cfg, layer} {
				d := digest.FromBytes(c)
				if _, err := blobs.Commit(ctx, fmt.Sprintf("u%d-%s", i, d.Encoded()[:8]), d, 0, int64(len(c)), bytes.NewReader(c)); err != nil {
					b.Fatal(err)
				}
				if err := meta.LinkBlob(ctx, repo, d, int64(len(c))); err != nil {
					b.Fatal(err)
				}
				descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, d, len(c)))
			}
			m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}`,
				descs[0], descs[1]))
			tag := ""
			if i%2 == 0 {
				tag = fmt.Sprintf("t%d", i)
			}
			pm, err := store.ParseManifest("application/vnd.oci.image.manifest.v1+json", m)
			if err != nil {
				b.Fatal(err)
			}
			pm.Repository, pm.Digest = repo, digest.FromBytes(m)
			if err := meta.PutManifest(ctx, pm, metadata.PutManifestOptions{Tag: tag}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		rep, err := reg.CollectGarbage(ctx, registry.GCOptions{Now: func() time.Time { return time.Now().Add(48 * time.Hour) }})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if len(rep.Manifests) != manifests/2 {
			b.Fatalf("collected %d manifests, want %d", len(rep.Manifests), manifests/2)
		}
		b.ReportMetric(float64(rep.Bytes), "bytes-reclaimed")
		b.ReportMetric(float64(len(rep.Blobs)), "blobs-deleted")
		meta.Close()
		b.StartTimer()
	}
}

package trivy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/scanner/trivy/trivytest"
)

// benchImage is a Debian image with 200 dpkg packages (one vulnerable) and
// about 100 MiB of incompressible files in four layers.
func benchImage(b *testing.B) v1.Image {
	b.Helper()
	pkgs := map[string]string{"openssl": "3.0.11-1~deb12u1"}
	for i := range 199 {
		pkgs[fmt.Sprintf("libfixture%03d", i)] = fmt.Sprintf("1.%d.0-1", i)
	}
	layers := []map[string][]byte{trivytest.Debian(pkgs)}
	rng := rand.NewChaCha8([32]byte{1})
	for i := range 4 {
		files := map[string][]byte{}
		for j := range 5 {
			data := make([]byte, 5<<20)
			_, _ = rng.Read(data)
			files[fmt.Sprintf("opt/data%d/blob%d.bin", i, j)] = data
		}
		layers = append(layers, files)
	}
	return trivytest.Image(b, layers...)
}

// BenchmarkScan: cold is a full Trivy scan (layers read, gunzipped and
// analyzed, packages matched against the DB); cached is the second request
// for the same digest through scanner.Queue.
func BenchmarkScan(b *testing.B) {
	s := newScanner(b, fixtureDB(b))
	img := benchImage(b)
	h, err := img.Digest()
	if err != nil {
		b.Fatal(err)
	}
	d := digest.Digest(h.String())
	var size int64
	layers, _ := img.Layers()
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}
	ctx := context.Background()

	b.Run("cold", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := s.Scan(ctx, d, img)
			if err != nil {
				b.Fatal(err)
			}
			if r.Packages != 200 || len(r.Vulnerabilities) != 1 {
				b.Fatalf("%d packages, %d findings; want 200 and 1", r.Packages, len(r.Vulnerabilities))
			}
		}
	})

	c := &content{manifests: map[digest.Digest][]byte{}, blobs: map[digest.Digest][]byte{}}
	c.addImage(b, img)

	// cold-store: as scan on push does, read through scanner.NewImage,
	// which checks every blob against its digest first.
	b.Run("cold-store", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			si, err := scanner.NewImage(ctx, c, "staging/bench", d)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Scan(ctx, d, si); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("cached", func(b *testing.B) {
		q, err := scanner.NewQueue(s, c, scanner.QueueOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close(ctx)
		if _, err := q.Report(ctx, "staging/bench", d); err != nil { // the cold scan
			b.Fatal(err)
		}
		for b.Loop() {
			r, err := q.Report(ctx, "staging/bench", d)
			if err != nil || r.Packages != 200 {
				b.Fatalf("cached report %v, %v", r, err)
			}
		}
	})
}

// addImage stores a go-containerregistry image's manifest and blobs.
func (c *content) addImage(tb testing.TB, img v1.Image) {
	tb.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	c.manifests[digest.FromBytes(raw)] = raw
	c.blobs[digest.FromBytes(cfg)] = cfg
	layers, err := img.Layers()
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			tb.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			tb.Fatal(err)
		}
		c.blobs[digest.FromBytes(b)] = b
	}
}

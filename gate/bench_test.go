package gate_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy/contract"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

func quiet(_ *gate.Config, o *gate.Options) {
	o.Logger = slog.New(slog.DiscardHandler)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkEvaluate: one gate decision (evidence: a signature and a
// provenance attestation, verified; policy: the library with signatures
// and provenance on), warm (evidence cached) and cold (a new gate, so an
// empty cache, every time).
func BenchmarkEvaluate(b *testing.B) {
	for _, mode := range []string{"warm", "cold"} {
		b.Run(mode, func(b *testing.B) {
			e := newBenchEnv(b)
			d := e.PushImage(b, "staging/app", "1")
			e.PushKeyBundle(b, e.release, "staging/app", d, vt.Statement(b, d, vt.CosignSign, `{}`))
			e.PushKeyBundle(b, e.release, "staging/app", d, vt.Statement(b, d, vt.SLSAv1, vt.ProvenanceV1))
			req := contract.Request{Action: contract.ActionPromote, Repository: "staging/app", Digest: d,
				Target: contract.Target{Registry: &contract.RegistryTarget{Namespace: "prod", Repository: "prod/app"}}}
			if dec := e.gate.Evaluate(b.Context(), req); !dec.Allow {
				b.Fatalf("not allowed: %v", dec.Reasons())
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				g := e.gate
				if mode == "cold" {
					b.StopTimer()
					var err error
					if g, err = gate.New(e.cfg, e.opts); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				start := time.Now()
				dec := g.Evaluate(b.Context(), req)
				lat = append(lat, time.Since(start))
				if !dec.Allow || dec.CachedEvidence == (mode == "cold") {
					b.Fatalf("allow=%v cached=%v", dec.Allow, dec.CachedEvidence)
				}
			}
			reportLatency(b, lat)
		})
	}
}

func newBenchEnv(b *testing.B) *env {
	return newEnv(b, policyDir(b, requireRelease, nil), quiet)
}

// BenchmarkPromote: a server-side promotion of a signed image of one
// layer, 1 MiB and 1 GiB: no blob bytes move, so the two should cost the
// same.
func BenchmarkPromote(b *testing.B) {
	for _, size := range []int64{1 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			e := newBenchEnv(b)
			d := pushSized(b, e, size)
			e.PushKeyBundle(b, e.release, "staging/app", d, vt.Statement(b, d, vt.CosignSign, `{}`))
			e.PushKeyBundle(b, e.release, "staging/app", d, vt.Statement(b, d, vt.SLSAv1, vt.ProvenanceV1))
			h := e.reg.PromotionsHandler()
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				i++
				body := fmt.Sprintf(`{"source":"staging/app@%s","target":"prod/app:%d"}`, d, i)
				start := time.Now()
				rec := newRecorder(h, body)
				lat = append(lat, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("promotion: %d %s", rec.Code, rec.Body)
				}
			}
			reportLatency(b, lat)
		})
	}
}

// pushSized pushes an image with one uncompressed random layer of size
// bytes to staging/app:1.
func pushSized(b *testing.B, e *env, size int64) digest.Digest {
	b.Helper()
	buf := make([]byte, size)
	if _, err := io.ReadFull(rand.Reader, buf); err != nil {
		b.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), static.NewLayer(buf, types.OCIUncompressedLayer))
	if err != nil {
		b.Fatal(err)
	}
	ref, _ := name.NewTag(e.host + "/staging/app:1")
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	d, _ := img.Digest()
	return digest.Digest(d.String())
}

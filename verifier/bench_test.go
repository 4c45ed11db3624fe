package verifier_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// countingSource counts the reads verification makes.
type countingSource struct {
	source.Source
	n atomic.Int64
}

func (s *countingSource) Resolve(ctx context.Context, repo, tag string) (digest.Digest, error) {
	s.n.Add(1)
	return s.Source.Resolve(ctx, repo, tag)
}

func (s *countingSource) Manifest(ctx context.Context, repo string, d digest.Digest) (source.Manifest, error) {
	s.n.Add(1)
	return s.Source.Manifest(ctx, repo, d)
}

func (s *countingSource) Blob(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	s.n.Add(1)
	return s.Source.Blob(ctx, repo, d)
}

// benchCollect measures Collect from the in-process source and reports
// the p50 and p99 latency and the registry reads per collection.
func benchCollect(b *testing.B, v *verifier.Verifier, f *fixture, repo string, d digest.Digest, wantSigs, wantAtts int) {
	src := &countingSource{Source: f.reg.Store().Source()}
	subj := verifier.Subject{Repository: repo, Digest: d}
	ev, err := v.Collect(context.Background(), src, subj)
	if err != nil {
		b.Fatal(err)
	}
	verified := 0
	for _, s := range ev.Signatures {
		if s.Verified {
			verified++
		}
	}
	for _, a := range ev.Attestations {
		if a.Verified {
			verified++
		}
	}
	if len(ev.Signatures) != wantSigs || len(ev.Attestations) != wantAtts || verified != wantSigs+wantAtts {
		b.Fatalf("evidence: %d signatures, %d attestations, %d verified; want %d, %d, all", len(ev.Signatures), len(ev.Attestations), verified, wantSigs, wantAtts)
	}
	src.n.Store(0)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := v.Collect(context.Background(), src, subj); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(src.n.Load())/float64(len(lat)), "reads/op")
}

// BenchmarkCollect: one image with one signature and three attestations
// (provenance, CycloneDX, SPDX), as cosign v2 (tag scheme) and cosign v3
// (bundles) store them; and ten signatures checked against five
// authorities, where each signature is read once, not once per key.
func BenchmarkCollect(b *testing.B) {
	cdx := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"openssl","version":"3.0.11","purl":"pkg:deb/debian/openssl@3.0.11"}]}`
	spdx := `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"x","packages":[{"SPDXID":"SPDXRef-a","name":"musl","versionInfo":"1.2.5"}]}`
	preds := [][2]string{{vt.SLSAv1, vt.ProvenanceV1}, {"https://cyclonedx.org/bom", cdx}, {"https://spdx.dev/Document", spdx}}
	const repo = "staging/app"

	b.Run("1sig+3att/tag", func(b *testing.B) {
		f := newFixture(b)
		key := vt.NewKey(b)
		d := f.PushImage(b, repo, "v1")
		p, sig := f.SignPayload(b, key, repo, d)
		f.PushSignature(b, repo, d, p, sig)
		v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{key.Public()}})
		if err != nil {
			b.Fatal(err)
		}
		// cosign keeps all attestations of a digest in one .att manifest.
		envs := [][]byte{}
		for _, pr := range preds {
			st := vt.Statement(b, d, pr[0], pr[1])
			envs = append(envs, vt.Envelope(b, vt.PayloadTypeInToto, st, vt.SignDSSE(b, key, vt.PayloadTypeInToto, st)))
		}
		f.PushAttestations(b, repo, d, "mixed", envs...)
		benchCollect(b, v, f, repo, d, 1, 3)
	})
	b.Run("1sig+3att/bundle", func(b *testing.B) {
		f := newFixture(b)
		key := vt.NewKey(b)
		d := f.PushImage(b, repo, "v1")
		f.PushKeyBundle(b, key, repo, d, vt.Statement(b, d, vt.CosignSign, `{}`))
		for _, pr := range preds {
			f.PushKeyBundle(b, key, repo, d, vt.Statement(b, d, pr[0], pr[1]))
		}
		v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{key.Public()}})
		if err != nil {
			b.Fatal(err)
		}
		benchCollect(b, v, f, repo, d, 1, 3)
	})
	b.Run("10sig-x-5authorities", func(b *testing.B) {
		f := newFixture(b)
		d := f.PushImage(b, repo, "v1")
		var auths []verifier.Authority
		var keys []*ecdsa.PrivateKey
		for i := range 5 {
			k1, k2 := vt.NewKey(b), vt.NewKey(b)
			keys = append(keys, k1, k2)
			auths = append(auths, verifier.Authority{Name: fmt.Sprintf("team-%d", i), Keys: []crypto.PublicKey{k1.Public(), k2.Public()}})
		}
		for _, k := range keys {
			f.PushKeyBundle(b, k, repo, d, vt.Statement(b, d, vt.CosignSign, `{}`))
		}
		v, err := verifier.New(auths...)
		if err != nil {
			b.Fatal(err)
		}
		benchCollect(b, v, f, repo, d, 10, 0)
	})
}

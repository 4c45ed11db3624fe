package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/webhook/webhooktest"
)

// podReview is a Pod with n containers, each with its own image.
func podReview(tb testing.TB, n int) []byte {
	tb.Helper()
	var cs []map[string]any
	for i := range n {
		cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": fmt.Sprintf("registry.local/prod/app%d:1.0", i)})
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "bench", "kind": map[string]any{"version": "v1", "kind": "Pod"}, "namespace": "shop", "operation": "CREATE",
			"userInfo": map[string]any{"username": "system:serviceaccount:kube-system:replicaset-controller"},
			"object": map[string]any{"apiVersion": "v1", "kind": "Pod",
				"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": cs}},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkAdmit is a warm (cached) validating admission of a pod with 5
// containers, through the handler in-process (no TLS, no network).
func BenchmarkAdmit(b *testing.B) {
	d := newFakeDecider()
	h, err := New(Config{Logger: slog.New(slog.DiscardHandler), Authenticator: apiServer{}}, d, &fakeResolver{})
	if err != nil {
		b.Fatal(err)
	}
	body := podReview(b, 5)
	serve := func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	serve() // warm the cache
	calls := d.calls.Load()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		serve()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	if d.calls.Load() != calls {
		b.Fatalf("warm path evaluated %d times", d.calls.Load()-calls)
	}
	reportQuantiles(b, lat)
}

// httpsAdmitter starts the handler over HTTPS on loopback (TLS 1.3,
// keep-alive, like the API server's client), authenticating the client by
// its certificate as a deployment does, and returns a function that
// admits a warm 5-container pod and times it, and the decider's call count.
func httpsAdmitter(b *testing.B) (admit func() time.Duration, calls func() int64) {
	files, err := SelfSigned(b.TempDir(), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	reloader, err := NewCertReloader(files.Cert, files.Key)
	if err != nil {
		b.Fatal(err)
	}
	apiserver := webhooktest.NewClientPKI(b, b.TempDir(), "kube-apiserver")
	auth, err := NewAuth(AuthConfig{ClientCAFile: apiserver.CAFile, ClientNames: []string{"kube-apiserver"}})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	signer, err := audit.LoadOrCreateSigner(dir)
	if err != nil {
		b.Fatal(err)
	}
	log, err := audit.OpenSQLite(b.Context(), filepath.Join(dir, "audit.db"), audit.WithSigner(signer))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { log.Close() })
	d := &recordingDecider{fakeDecider: newFakeDecider(), log: log}
	h, err := New(Config{Logger: slog.New(slog.DiscardHandler), Authenticator: auth}, d, &fakeResolver{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = tls.NewListener(srv.Listener, auth.TLSConfig(reloader.GetCertificate))
	srv.Start()
	b.Cleanup(srv.Close)
	url := strings.Replace(srv.URL, "http://", "https://", 1) + "/validate"
	caPEM, _ := os.ReadFile(files.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{apiserver.Cert}}, MaxIdleConnsPerHost: 64}}
	body := podReview(b, 5)
	admit = func() time.Duration {
		start := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return 0
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"allowed":true`)) {
			b.Errorf("%d %s", resp.StatusCode, out)
		}
		return time.Since(start)
	}
	admit() // warm the cache and a connection
	return admit, d.calls.Load
}

// recordingDecider records every admission answered from the cache in a
// real SQLite audit log, as *gate.Gate does (RecordCached): the warm path
// pays for its durable record.
type recordingDecider struct {
	*fakeDecider
	log *audit.Log
}

func (r *recordingDecider) RecordCached(ctx context.Context, req contract.Request, earlier *contract.Decision) *contract.Decision {
	d := *earlier
	d.Time, d.Request, d.Cached = time.Now(), req, true
	if _, err := r.log.Append(ctx, gate.AuditRecord(&d)); err != nil {
		d.Allow, d.Error = false, err.Error()
	}
	return &d
}

func reportQuantiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkAdmitHTTPS500 paces warm admissions at 500 requests/s over
// HTTPS (an open-loop load client, at most 64 requests in flight); run it
// with -benchtime 2500x for 5 s of load.
func BenchmarkAdmitHTTPS500(b *testing.B) {
	admit, calls := httpsAdmitter(b)
	before := calls()
	lat := make([]time.Duration, b.N)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		sem <- struct{}{}
		wg.Go(func() {
			lat[i] = admit()
			<-sem
		})
	}
	wg.Wait()
	b.StopTimer()
	if calls() != before {
		b.Fatalf("warm path evaluated %d times", calls()-before)
	}
	reportQuantiles(b, lat)
}

// BenchmarkAdmitHTTPS is closed-loop warm admissions over HTTPS from
// 2 x GOMAXPROCS concurrent clients (saturation).
func BenchmarkAdmitHTTPS(b *testing.B) {
	admit, calls := httpsAdmitter(b)
	before := calls()
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			mine = append(mine, admit())
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if calls() != before {
		b.Fatalf("warm path evaluated %d times", calls()-before)
	}
	reportQuantiles(b, lat)
}

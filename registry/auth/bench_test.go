package auth

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkManifestGET measures the cost of authentication and
// authorization on the hottest read: GET of a manifest by tag over
// loopback HTTP with keep-alive, without access control (open) and with
// it (a bearer token from the token flow, as clients send it; and basic
// auth on every request). Each reports requests/s; compare them within
// one run: go test -run '^$' -bench ManifestGET -benchtime 3s ./registry/auth/
func BenchmarkManifestGET(b *testing.B) {
	for _, mode := range []string{"open", "bearer", "basic"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, envOptions{policy: grantsForTests, open: mode == "open"}, "alice")
			alice := basic("alice", testPassword)
			auth := ""
			switch mode {
			case "bearer":
				tok, _ := e.token(alice, "repository:staging/app:pull")
				auth = "Bearer " + tok
			case "basic":
				auth = alice
			}
			push := auth
			if mode != "open" {
				push = alice
			}
			e.pushImage("staging/app", "1", push)
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 64
			client := &http.Client{Transport: tr}
			defer client.CloseIdleConnections()
			url := e.url + "/v2/staging/app/manifests/1"
			get := func() error {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				res, err := client.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("GET manifest: %s", res.Status)
				}
				return nil
			}
			if err := get(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// BenchmarkAuthOverhead alternates rounds of manifest GETs against an
// open registry and one behind access control (bearer token), in the same
// process, so that load from elsewhere hits both alike. It reports both
// rates and the overhead of access control in percent (target: under 10).
func BenchmarkAuthOverhead(b *testing.B) {
	type target struct {
		url, auth string
		client    *http.Client
		elapsed   time.Duration
		n         int
	}
	setup := func(open bool) *target {
		e := newEnv(b, envOptions{policy: grantsForTests, open: open}, "alice")
		alice := basic("alice", testPassword)
		t := &target{url: e.url + "/v2/staging/app/manifests/1"}
		if open {
			e.pushImage("staging/app", "1", "")
		} else {
			e.pushImage("staging/app", "1", alice)
			tok, _ := e.token(alice, "repository:staging/app:pull")
			t.auth = "Bearer " + tok
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		t.client = &http.Client{Transport: tr}
		b.Cleanup(t.client.CloseIdleConnections)
		return t
	}
	targets := []*target{setup(true), setup(false)}
	const perRound, workers = 400, 4
	round := func(t *target) {
		start := time.Now()
		work := make(chan struct{}, perRound)
		for range perRound {
			work <- struct{}{}
		}
		close(work)
		done := make(chan struct{})
		for range workers {
			go func() {
				defer func() { done <- struct{}{} }()
				for range work {
					req, _ := http.NewRequest(http.MethodGet, t.url, nil)
					req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
					if t.auth != "" {
						req.Header.Set("Authorization", t.auth)
					}
					res, err := t.client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("GET manifest: %s", res.Status)
					}
				}
			}()
		}
		for range workers {
			<-done
		}
		t.elapsed += time.Since(start)
		t.n += perRound
	}
	for _, t := range targets { // warm up
		round(t)
		t.elapsed, t.n = 0, 0
	}
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first, so neither always follows the other.
		round(targets[i%2])
		round(targets[1-i%2])
	}
	open := float64(targets[0].n) / targets[0].elapsed.Seconds()
	authed := float64(targets[1].n) / targets[1].elapsed.Seconds()
	b.ReportMetric(open, "open-req/s")
	b.ReportMetric(authed, "auth-req/s")
	b.ReportMetric((open-authed)/open*100, "overhead-%")
}

package auth

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/registry/quota"
)

func TestBruteForceIsRateLimited(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests, limits: Limits{FailedAuth: Rate{Rate: 0.2, Burst: 3}}}, "alice")
	for i := range 3 {
		if r := e.do(http.MethodGet, "/v2/staging/app/tags/list", basic("alice", fmt.Sprintf("guess-%d", i)), nil); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, r.status)
		}
	}
	start := time.Now()
	for _, path := range []string{"/v2/staging/app/tags/list", TokenPath + "?scope=repository:staging/app:pull"} {
		r := e.do(http.MethodGet, path, basic("alice", "guess-4"), nil)
		if r.status != http.StatusTooManyRequests || r.code() != "TOOMANYREQUESTS" || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s after the burst of failures: %d %q %s", path, r.status, r.header.Get("Retry-After"), r.body)
		}
		// Even the right password waits: the limiter answers before any check.
		if r := e.do(http.MethodGet, path, basic("alice", testPassword), nil); r.status != http.StatusTooManyRequests {
			t.Fatalf("%s: right password while limited: %d", path, r.status)
		}
	}
	if time.Since(start) > time.Second {
		t.Fatalf("refusals took %v: the limiter must answer without checking passwords", time.Since(start))
	}
	// Requests without credentials are not slowed by others' failures.
	if r := e.do(http.MethodGet, "/v2/public/x/tags/list", "", nil); r.status == http.StatusTooManyRequests {
		t.Fatalf("anonymous request limited: %d", r.status)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests, limits: Limits{PerIdentity: Rate{Rate: 0.5, Burst: 2}, PerAddress: Rate{Rate: 1, Burst: 4}}}, "alice")
	alice := basic("alice", testPassword)
	for i := range 2 {
		if r := e.do(http.MethodGet, "/v2/", alice, nil); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.do(http.MethodGet, "/v2/", alice, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "alice") {
		t.Fatalf("third request of alice: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// The address still had tokens for one more request (anonymous), then none.
	if r := e.do(http.MethodGet, "/v2/", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous request: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/v2/", "", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("request over the address limit: %d", r.status)
	}
	// Health probes reach the handler (here the bare registry, which has
	// no such route: 404) without credentials, however limited the
	// address is: never 401, never 429.
	for _, p := range []string{"/healthz", "/readyz"} {
		for range 10 {
			if r := e.do(http.MethodGet, p, "", nil); r.status != http.StatusNotFound {
				t.Fatalf("%s over the address limit, without credentials: %d %s", p, r.status, r.body)
			}
		}
	}
	if r := e.do(http.MethodGet, "/metrics", "", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("/metrics over the address limit: %d, want 429 (only probes are exempt)", r.status)
	}
}

func TestConcurrentUploadLimit(t *testing.T) {
	authz, err := NewAuthorizer(grantsForTests)
	if err != nil {
		t.Fatal(err)
	}
	htp, err := LoadHtpasswd(testHtpasswd(t, "alice", "carol"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadOrCreateTokenKey(filepath.Join(t.TempDir(), TokenKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Key: key, Users: htp, Authorizer: authz, Limits: Limits{UploadsPerIdentity: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// A registry stand-in whose PATCH holds until released.
	entered, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPatch {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusAccepted)
	})))
	defer srv.Close()
	e := &env{t: t, url: srv.URL}
	alice, carol := basic("alice", testPassword), basic("carol", testPassword)
	const upload = "/v2/staging/app/blobs/uploads/"
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, srv.URL+upload+"some-id", strings.NewReader("bytes"))
		req.Header.Set("Authorization", alice)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	<-entered
	r := e.do(http.MethodPost, upload, alice, nil)
	if r.status != http.StatusTooManyRequests || r.code() != "TOOMANYREQUESTS" || r.header.Get("Retry-After") == "" {
		t.Fatalf("a second upload of alice: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Reads are not uploads; other identities have their own limit.
	if r := e.do(http.MethodGet, "/v2/staging/app/tags/list", alice, nil); r.status != http.StatusAccepted {
		t.Fatalf("a read while uploading: %d", r.status)
	}
	if r := e.do(http.MethodPost, upload, carol, nil); r.status != http.StatusAccepted {
		t.Fatalf("carol's upload: %d", r.status)
	}
	close(release)
	if s := <-done; s != http.StatusAccepted {
		t.Fatalf("first PATCH: %d", s)
	}
	if r := e.do(http.MethodPost, upload, alice, nil); r.status != http.StatusAccepted {
		t.Fatalf("upload after the first finished: %d", r.status)
	}
}

func TestQuotaExceededLeavesNothing(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests, quotas: []quota.Rule{{Namespace: "staging", Limit: 4096}}}, "alice")
	alice := basic("alice", testPassword)
	small := bytes.Repeat([]byte("a"), 1000)
	big := bytes.Repeat([]byte("b"), 5000)
	if r := e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/?digest="+digestOf(small), alice, small); r.status != http.StatusCreated {
		t.Fatalf("small blob: %d %s", r.status, r.body)
	}
	// Monolithic upload over the quota.
	r := e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/?digest="+digestOf(big), alice, big)
	if r.status != http.StatusForbidden || r.code() != "DENIED" || !strings.Contains(string(r.body), "quota of 4.0 KiB") {
		t.Fatalf("big blob: %d %s", r.status, r.body)
	}
	// Chunked upload: the last PUT is refused and the session is gone.
	r = e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/", alice, nil)
	loc := r.header.Get("Location")
	if r := e.do(http.MethodPatch, loc, alice, big); r.status != http.StatusAccepted {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPut, loc+"?digest="+digestOf(big), alice, nil)
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "staging is over its storage quota") {
		t.Fatalf("closing the upload: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodGet, loc, alice, nil); r.status != http.StatusNotFound {
		t.Fatalf("the refused upload session: %d, want 404", r.status)
	}
	if r := e.do(http.MethodHead, "/v2/staging/app/blobs/"+digestOf(big), alice, nil); r.status != http.StatusNotFound {
		t.Fatalf("the refused blob is linked: %d", r.status)
	}
	// The same small blob again is free; other namespaces have no quota.
	if r := e.do(http.MethodPost, "/v2/staging/other/blobs/uploads/?digest="+digestOf(small), alice, small); r.status != http.StatusCreated {
		t.Fatalf("small blob again: %d %s", r.status, r.body)
	}
	q, _ := quota.New([]quota.Rule{{Namespace: "staging", Limit: 4096}}, e.meta)
	u, err := q.Report(context.Background(), []string{"team"})
	if err != nil || len(u) != 2 || u[0].Namespace != "staging" || u[0].Used != 1000 || u[0].Limit != 4096 || u[1].Used != 0 {
		t.Fatalf("usage report: %+v, %v", u, err)
	}
}

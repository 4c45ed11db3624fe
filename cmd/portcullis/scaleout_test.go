package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
	"github.com/portcullis-dev/portcullis/internal/s3test"
)

// cluster is two `portcullis serve` replicas sharing one PostgreSQL
// database and one S3 bucket (versitygw's POSIX gateway), behind a
// round-robin load balancer that health-checks /readyz.
type cluster struct {
	replicas []*server
	lb       *balancer
	Addr     string // the load balancer's host:port
	config   string
	data     []string
}

// startCluster starts the shared services and two replicas; policy is a
// Rego module for the bundle every replica uses.
func startCluster(t *testing.T, policy string) *cluster {
	t.Helper()
	dsn := pgtest.DSN(t)
	s3 := s3test.Start(t, "portcullis")
	dir := t.TempDir()
	bundle := filepath.Join(dir, "policy")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "policy.rego"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`metadata:
  driver: postgres
  postgres: {dsn: %q}
storage:
  driver: s3
  s3: {endpoint: %q, bucket: portcullis, accessKey: %s, secretKey: %s}
policies:
  default: {bundle: policy}
scanner:
  scanOnPush: []
gc: {gracePeriod: %s, uploadMaxAge: %s}
`, dsn, s3.Endpoint, s3.AccessKey, s3.SecretKey, gcGrace, gcGrace)
	c := &cluster{config: filepath.Join(dir, "portcullis.yaml")}
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The first replica makes the keys (audit checkpoints, VSAs, tokens);
	// the others get copies, as an operator mounts one secret into each.
	for i := range 2 {
		data := filepath.Join(dir, fmt.Sprintf("replica%d", i))
		if i > 0 {
			copyKeys(t, c.data[0], data)
		}
		c.data = append(c.data, data)
		c.replicas = append(c.replicas, startServer(t, data, "--config", c.config))
	}
	var backends []string
	for _, r := range c.replicas {
		backends = append(backends, r.URL(""))
	}
	c.lb = newBalancer(t, backends)
	c.Addr = c.lb.addr
	return c
}

// copyKeys gives the replica whose data directory is to the keys of the
// one in from, as docs/scale-out.md says: portcullis keys export, then
// import.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "keys.tar")
	if code, out, errOut := runKeys("export", "--data", from, "--to", archive); code != exitOK {
		t.Fatalf("keys export: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runKeys("import", "--data", to, "--from", archive); code != exitOK {
		t.Fatalf("keys import: exit %d\n%s%s", code, out, errOut)
	}
}

// balancer is a round-robin reverse proxy over the replicas that are
// ready: it checks each one's /readyz every 100ms, as a load balancer's
// health check does.
type balancer struct {
	addr     string
	backends []atomic.Pointer[url.URL]
	up       []atomic.Bool
	next     atomic.Uint64
	served   []atomic.Int64
}

func newBalancer(t *testing.T, backends []string) *balancer {
	b := &balancer{backends: make([]atomic.Pointer[url.URL], len(backends)), up: make([]atomic.Bool, len(backends)), served: make([]atomic.Int64, len(backends))}
	for i, s := range backends {
		b.set(t, i, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	check := func() {
		for i := range b.backends {
			u := b.backends[i].Load()
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			req, _ := http.NewRequestWithContext(cctx, http.MethodGet, u.String()+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			ccancel()
			ok := err == nil && resp.StatusCode == http.StatusOK
			if resp != nil {
				resp.Body.Close()
			}
			b.up[i].Store(ok)
		}
	}
	check()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
				check()
			}
		}
	}()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := b.pick()
			b.served[i].Add(1)
			pr.SetURL(b.backends[i].Load())
			pr.Out.Host = pr.In.Host // replicas build Location headers from it
		},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() { cancel(); srv.Close() })
	b.addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}

// set points backend i at base (a replica restarted on another port).
func (b *balancer) set(t *testing.T, i int, base string) {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	b.backends[i].Store(u)
}

func (b *balancer) pick() int {
	n := uint64(len(b.backends))
	for range n {
		i := int(b.next.Add(1) % n)
		if b.up[i].Load() {
			return i
		}
	}
	return int(b.next.Load() % n)
}

// waitDown waits until the balancer sends nothing to replica i.
func (b *balancer) waitDown(t *testing.T, i int) {
	deadline := time.Now().Add(10 * time.Second)
	for b.up[i].Load() {
		if time.Now().After(deadline) {
			t.Fatalf("replica %d still up after 10s", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const allowAll = `package portcullis.policies.errors

# The scale-out tests run without a vulnerability database: checks the
# gate cannot make do not deny (this replaces the library's errors policy).
deny contains msg if {
	msg := "never"
	false
}
`

// TestReplicas runs two replicas on PostgreSQL and S3 behind a load
// balancer: the OCI conformance suite passes through the balancer; many
// clients pushing, tagging and promoting at once through both replicas
// leave every acknowledged write in place and every tag where its last
// write put it, with exactly one winner per immutable production tag;
// `portcullis gc`, run as a third process while clients push and pull
// through both replicas, deletes exactly what its dry run listed and
// nothing an image still needs; and a chunked upload continues on the
// other replica when the one that took its first chunk is killed.
func TestReplicas(t *testing.T) {
	c := startCluster(t, allowAll)

	t.Run("Conformance", func(t *testing.T) {
		bin := requireTool(t, "conformance")
		results := t.TempDir()
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "OCI_REGISTRY="+c.Addr, "OCI_TLS=disabled", "OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
			"OCI_VERSION=1.1", "OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_API_BLOBS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_DIGEST_HEADER=true",
			"OCI_RESULTS_DIR="+results)
		out, err := cmd.CombinedOutput()
		junit, _ := os.ReadFile(filepath.Join(results, "junit.xml"))
		suite := string(junit)
		if i := strings.Index(suite, "<testsuite "); i >= 0 {
			suite = suite[i:min(len(suite), i+300)]
		}
		if err != nil || !strings.Contains(suite, `failures="0"`) {
			var failed []string
			for _, m := range regexp.MustCompile(`<testcase [^>]*name="([^"]*)"[^>]*>\s*<failure`).FindAllStringSubmatch(string(junit), -1) {
				failed = append(failed, m[1])
			}
			t.Fatalf("conformance through the load balancer: %v\n%s\nfailed: %q\n%s", err, suite, failed, tail(string(out), 40))
		}
		t.Logf("conformance through 2 replicas: %s", suite)
	})

	t.Run("ConcurrentWrites", func(t *testing.T) { testConcurrentWrites(t, c) })
	t.Run("GCUnderLoad", func(t *testing.T) { testClusterGCUnderLoad(t, c) })
	t.Run("UploadSurvivesReplicaLoss", func(t *testing.T) { testUploadSurvivesReplicaLoss(t, c) })
}

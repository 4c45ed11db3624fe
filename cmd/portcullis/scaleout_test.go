package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
	"github.com/portcullis-dev/portcullis/internal/s3test"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
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

// gcGrace is the cluster's gc.gracePeriod and gc.uploadMaxAge: long
// enough that no push of the load outlives it, short enough to wait out.
const gcGrace = "5s"

// testClusterGCUnderLoad makes garbage (images pushed by digest only, one
// with a signature referrer, an image whose tag was deleted, an abandoned
// upload), waits past the grace period, then runs `portcullis gc
// --dry-run` and `portcullis gc` as a separate process while clients push
// new tagged images and pull through both replicas. The real run deletes
// what the dry run listed, the garbage among it; every image that was
// whole before and every push acknowledged during the load is whole after.
func testClusterGCUnderLoad(t *testing.T, c *cluster) {
	grace, _ := time.ParseDuration(gcGrace)
	push := func(img v1.Image, ref string) v1.Hash {
		t.Helper()
		if err := crane.Push(img, ref); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	newImage := func() v1.Image {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	referrer := func(subject v1.Image) v1.Image {
		d, _ := subject.Digest()
		mt, _ := subject.MediaType()
		sz, _ := subject.Size()
		sig := mutate.MediaType(mutate.ConfigMediaType(newImage(), "application/vnd.example.sig"), types.OCIManifestSchema1)
		return mutate.Subject(sig, v1.Descriptor{MediaType: mt, Digest: d, Size: sz}).(v1.Image)
	}
	repo := c.Addr + "/staging/gc"
	// Live: a tagged image and its referrer.
	live := newImage()
	liveD := push(live, repo+"/live:v1")
	liveSig := referrer(live)
	liveSigD := push(liveSig, repo+"/live@"+mustDigest(t, liveSig).String())
	// Garbage: images pushed by digest (the first with a referrer) and an
	// image whose tag is deleted.
	var garbage []string
	for i := range 3 {
		img := newImage()
		d := push(img, fmt.Sprintf("%s/dead%d@%s", repo, i, mustDigest(t, img)))
		garbage = append(garbage, fmt.Sprintf("staging/gc/dead%d@%s", i, d))
		if i == 0 {
			sig := referrer(img)
			sd := push(sig, fmt.Sprintf("%s/dead0@%s", repo, mustDigest(t, sig)))
			garbage = append(garbage, "staging/gc/dead0@"+sd.String())
		}
	}
	untagged := push(newImage(), repo+"/untagged:v1")
	if err := crane.Delete(repo + "/untagged:v1"); err != nil {
		t.Fatalf("delete tag: %v", err)
	}
	garbage = append(garbage, "staging/gc/untagged@"+untagged.String())
	// An abandoned upload with bytes in the bucket.
	uploadID := registrytest.AbandonUpload(t, c.Addr, "staging/gc/abandoned")
	// Every tagged image in the registry that is whole now must be whole
	// after the collection (earlier subtests left theirs, some of them
	// garbage by now).
	wholeBefore := wholeTagged(t, c.Addr)
	time.Sleep(grace + 500*time.Millisecond)

	// The load: new tagged images and pulls, through both replicas.
	ctx, stopLoad := context.WithCancel(t.Context())
	var (
		mu      sync.Mutex
		acked   []string
		started = make(chan struct{})
		once    sync.Once
		wg      sync.WaitGroup
	)
	errs := make(chan error, 3)
	for cl := range 3 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				ref := fmt.Sprintf("%s/staging/gcload/c%d:v%d", c.Addr, cl, i)
				if err := crane.Push(newImage(), ref, crane.WithContext(ctx)); err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("push %s during gc: %w", ref, err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, ref)
				mu.Unlock()
				once.Do(func() { close(started) })
				img, err := crane.Pull(repo+"/live:v1", crane.WithContext(ctx))
				if err == nil {
					err = validate.Image(img)
				}
				if err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("pull during gc: %w", err)
					return
				}
			}
		})
	}
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("no push of the load finished within a minute")
	}
	dry := gcCLI(t, c, "--dry-run")
	got := gcCLI(t, c)
	stopLoad()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	registrytest.SameCollection(t, &dry, &got)
	for _, g := range garbage {
		if !slices.Contains(got.Manifests, g) {
			t.Errorf("garbage %s was not collected", g)
		}
		if _, err := crane.Head(c.Addr + "/" + g); err == nil {
			t.Errorf("garbage %s is still served", g)
		}
	}
	if !slices.Contains(got.Uploads, uploadID) {
		t.Errorf("the abandoned upload %s was not collected (collected %q)", uploadID, got.Uploads)
	}
	for _, m := range got.Manifests {
		if strings.HasPrefix(m, "staging/gcload/") || m == "staging/gc/live@"+liveD.String() || m == "staging/gc/live@"+liveSigD.String() {
			t.Errorf("gc deleted %s, which is live", m)
		}
	}
	// Nothing an image needs is gone.
	mu.Lock()
	refs := append(slices.Clone(acked), wholeBefore...)
	mu.Unlock()
	for _, ref := range append(refs, repo+"/live@"+liveSigD.String()) {
		if err := wholeImage(ref); err != nil {
			t.Errorf("after gc: %v", err)
		}
	}
	idx, err := remote.Referrers(mustRef(t, repo+"/live@"+liveD.String()).Context().Digest(liveD.String()))
	if err != nil {
		t.Fatal(err)
	}
	if im, err := idx.IndexManifest(); err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != liveSigD {
		t.Errorf("referrers of the live image after gc: %+v, %v; want its signature", im, err)
	}
	t.Logf("gc under load: %d pushes acknowledged during it; it deleted %d tags, %d manifests, %d links, %d blobs (%d bytes), %d uploads in %s",
		len(acked), len(got.Tags), len(got.Manifests), len(got.Links), len(got.Blobs), got.Bytes, len(got.Uploads), got.Duration)
}

// gcCLI runs `portcullis gc --json` against the cluster's configuration as
// a process of its own, as an operator's cron job would.
func gcCLI(t *testing.T, c *cluster, args ...string) registry.GCReport {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := runTool(t, "", []string{mainEnv + "=1"}, exe, append([]string{"gc", "--config", c.config, "--data", t.TempDir(), "--json"}, args...)...)
	var rep registry.GCReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gc report: %v\n%s", err, out)
	}
	return rep
}

// wholeTagged lists every tag of every repository at addr whose image or
// index reads back whole (every blob present and matching its digest).
func wholeTagged(t *testing.T, addr string) []string {
	t.Helper()
	repos, err := crane.Catalog(addr)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, r := range repos {
		tags, err := crane.ListTags(addr + "/" + r)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if ref := addr + "/" + r + ":" + tag; wholeImage(ref) == nil {
				refs = append(refs, ref)
			}
		}
	}
	return refs
}

// wholeImage reads the image or index at ref and every blob it names.
func wholeImage(ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	desc, err := remote.Get(r)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		var idx v1.ImageIndex
		if idx, err = desc.ImageIndex(); err == nil {
			err = validate.Index(idx)
		}
	} else {
		var img v1.Image
		if img, err = desc.Image(); err == nil {
			err = validate.Image(img)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	return nil
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func testConcurrentWrites(t *testing.T, c *cluster) {
	const clients, rounds = 8, 4
	type write struct {
		ref string
		d   v1.Hash
	}
	var (
		mu      sync.Mutex
		last    = map[string]v1.Hash{} // tag -> digest of its client's last acknowledged write
		pushed  []write
		winners = map[v1.Hash]bool{}
	)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for cl := range clients {
		wg.Go(func() {
			for r := range rounds {
				img, err := random.Image(1024, 2)
				if err != nil {
					errs <- err
					return
				}
				d, _ := img.Digest()
				// Each client owns its tag and moves it every round.
				ref := fmt.Sprintf("%s/staging/load/c%d:current", c.Addr, cl)
				if err := crane.Push(img, ref); err != nil {
					errs <- fmt.Errorf("push %s: %w", ref, err)
					return
				}
				mu.Lock()
				last[ref] = d
				pushed = append(pushed, write{ref + "@" + d.String(), d})
				mu.Unlock()
				// All clients race for one immutable production tag per round.
				err = crane.Copy(fmt.Sprintf("%s/staging/load/c%d@%s", c.Addr, cl, d), fmt.Sprintf("%s/prod/load:r%d", c.Addr, r))
				if err == nil {
					mu.Lock()
					winners[d] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for ref, want := range last {
		got, err := crane.Digest(ref)
		if err != nil || got != want.String() {
			t.Errorf("%s points at %s (%v), its last acknowledged write was %s", ref, got, err, want)
		}
	}
	for _, w := range pushed {
		img, err := remote.Image(mustRef(t, w.ref))
		if err != nil {
			t.Fatalf("acknowledged push %s: %v", w.ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("acknowledged push %s: %v", w.ref, err)
		}
	}
	for r := range rounds {
		ref := fmt.Sprintf("%s/prod/load:r%d", c.Addr, r)
		got, err := crane.Digest(ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if !winners[v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(got, "sha256:")}] {
			t.Errorf("%s points at %s, which no promotion was told it won", ref, got)
		}
	}
	if len(winners) != rounds {
		t.Errorf("%d promotions won, want exactly one per production tag (%d)", len(winners), rounds)
	}
	for i := range c.replicas {
		if n := c.lb.served[i].Load(); n == 0 {
			t.Errorf("replica %d served no request", i)
		}
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testUploadSurvivesReplicaLoss uploads a blob in two chunks, killing the
// replica that took the first one in between: the balancer moves the
// client to the other replica, which continues the upload from the bytes
// and hash state in the bucket.
func testUploadSurvivesReplicaLoss(t *testing.T, c *cluster) {
	chunk1, chunk2 := make([]byte, 6<<20), make([]byte, 1<<20) // the first is over S3's 5 MiB part minimum
	rand.Read(chunk1)
	rand.Read(chunk2)
	d := digest.FromBytes(append(append([]byte{}, chunk1...), chunk2...))
	base := "http://" + c.Addr
	do := func(method, u string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// Only replica 0 is up while the first chunk goes in.
	c.replicas[1].Kill()
	c.lb.waitDown(t, 1)
	resp := do(http.MethodPost, base+"/v2/staging/resume/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	resp = do(http.MethodPatch, base+loc, chunk1, "Content-Type", "application/octet-stream",
		"Content-Range", fmt.Sprintf("0-%d", len(chunk1)-1))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first chunk: %s", resp.Status)
	}
	loc = resp.Header.Get("Location")
	// Replica 1 comes back (a fresh process on its data), replica 0 dies.
	c.replicas[1] = startServer(t, c.data[1], "--config", c.config)
	c.lb.set(t, 1, c.replicas[1].URL(""))
	c.replicas[0].Kill()
	c.lb.waitDown(t, 0)
	for !c.lb.up[1].Load() {
		time.Sleep(20 * time.Millisecond)
	}
	resp = do(http.MethodGet, base+loc, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != fmt.Sprintf("0-%d", len(chunk1)-1) {
		t.Fatalf("upload status on the other replica: %s, Range %q; want 204, 0-%d", resp.Status, resp.Header.Get("Range"), len(chunk1)-1)
	}
	resp = do(http.MethodPatch, base+loc, chunk2, "Content-Type", "application/octet-stream",
		"Content-Range", fmt.Sprintf("%d-%d", len(chunk1), len(chunk1)+len(chunk2)-1))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("second chunk on the other replica: %s", resp.Status)
	}
	loc = resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp = do(http.MethodPut, base+loc+sep+"digest="+d.String(), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish upload on the other replica: %s", resp.Status)
	}
	get, err := http.Get(base + "/v2/staging/resume/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	got, err := io.ReadAll(get.Body)
	if err != nil || get.StatusCode != http.StatusOK || digest.FromBytes(got) != d {
		t.Fatalf("blob after the resumed upload: %s, %d bytes, %v", get.Status, len(got), err)
	}
}

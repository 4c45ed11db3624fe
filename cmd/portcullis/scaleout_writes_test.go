package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
)

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

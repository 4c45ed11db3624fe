package main

// Crash safety: `portcullis serve` is killed with SIGKILL in the middle of
// uploads and pushes, restarted on the same data directory, and must serve
// everything it acknowledged, resume what it did not finish, and never
// serve content that does not match its digest.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seededBytes returns n pseudo-random bytes (fast enough for tens of MiB).
func seededBytes(t testing.TB, n int) []byte {
	t.Helper()
	var seed [32]byte
	copy(seed[:], randomBytes(32))
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// withDigest returns location with ?digest=d added.
func withDigest(t testing.TB, location, d string) string {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatalf("upload location %q: %v", location, err)
	}
	q := u.Query()
	q.Set("digest", d)
	u.RawQuery = q.Encode()
	return u.String()
}

// startUpload opens an upload session in repo and returns its location path.
func startUpload(t testing.TB, c *http.Client, s *server, repo string) string {
	t.Helper()
	resp := mustDo(t, c, http.StatusAccepted, http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/"), nil, nil)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") {
		t.Fatalf("upload Location %q, want a path under /v2/%s/blobs/uploads/", loc, repo)
	}
	return loc
}

// patchChunk sends data[from:to] to an upload and returns the next location.
func patchChunk(t testing.TB, c *http.Client, s *server, loc string, data []byte, from, to int) string {
	t.Helper()
	h := http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", from, to-1)},
	}
	resp := mustDo(t, c, http.StatusAccepted, http.MethodPatch, s.URL(loc), h, data[from:to])
	equalStrings(t, "Range after PATCH", resp.Header.Get("Range"), fmt.Sprintf("0-%d", to-1))
	return resp.Header.Get("Location")
}

// uploadSize returns how many bytes the upload at loc holds, from its
// status (Range: 0-<last byte>).
func uploadSize(t testing.TB, c *http.Client, s *server, loc string) int {
	t.Helper()
	resp := mustDo(t, c, http.StatusNoContent, http.MethodGet, s.URL(loc), nil, nil)
	rng := resp.Header.Get("Range")
	_, end, ok := strings.Cut(rng, "-")
	n, err := strconv.Atoi(end)
	if !ok || !strings.HasPrefix(rng, "0-") || err != nil {
		t.Fatalf("upload status Range %q, want 0-<end>", rng)
	}
	if n == 0 {
		return 0 // "0-0" is the empty upload (a 1-byte upload is not used here)
	}
	return n + 1
}

// waitUploadGrows waits until the upload at loc holds more than size bytes
// and then stops growing, and returns what it holds.
func waitUploadGrows(t testing.TB, c *http.Client, s *server, loc string, size int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, stable := -1, 0
	for time.Now().Before(deadline) {
		n := uploadSize(t, c, s, loc)
		switch {
		case n <= size:
		case n == last:
			stable++
			if stable == 5 {
				return n
			}
		default:
			last, stable = n, 0
		}
		time.Sleep(40 * time.Millisecond)
	}
	t.Fatalf("upload %s did not grow past %d bytes and settle (last %d)", loc, size, last)
	return 0
}

// cutRequest is a request whose body stops after a prefix: it stays in
// flight until the server dies or abort is called.
type cutRequest struct {
	pw     *io.PipeWriter
	result chan error // nil only if the server answered
}

// startCutRequest sends method url with a body announced as len(body)
// bytes, of which only body[:send] are sent. It returns once those bytes
// have been handed to the connection.
func startCutRequest(t testing.TB, c *http.Client, method, u string, h http.Header, body []byte, send int) *cutRequest {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, u, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header = h
	r := &cutRequest{pw: pw, result: make(chan error, 1)}
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			r.result <- err
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.result <- fmt.Errorf("%w: %s %s answered %s: %s", errAnswered, method, u, resp.Status, b)
	}()
	if _, err := pw.Write(body[:send]); err != nil {
		t.Fatalf("%s %s: sending the first %d bytes: %v", method, u, send, err)
	}
	return r
}

var errAnswered = errors.New("the server answered")

// abort ends the request and reports whether the server had answered it.
func (r *cutRequest) abort() error {
	r.pw.CloseWithError(errors.New("request aborted by the test"))
	return <-r.result
}

// TestCrashDuringChunkedUpload kills the server while chunks are
// arriving, then resumes the upload on a restarted server from the offset
// it reports, and checks that unfinished uploads are never served.
func TestCrashDuringChunkedUpload(t *testing.T) {
	dataDir := t.TempDir()
	s := startServer(t, dataDir)
	c := newClient(t)
	repo := uniqueName("crash/upload-")

	const size, chunk, ackedChunks = 64 << 20, 4 << 20, 7
	data := seededBytes(t, size)
	want := sha256Digest(data)

	// A: a 64 MiB chunked upload; 7 chunks are acknowledged before the crash.
	locA := startUpload(t, c, s, repo)
	acked := 0
	for range ackedChunks {
		locA = patchChunk(t, c, s, locA, data, acked, acked+chunk)
		acked += chunk
	}
	// B: every byte PATCHed and acknowledged, but never closed with a PUT.
	dataB := seededBytes(t, 1<<20)
	locB := patchChunk(t, c, s, startUpload(t, c, s, repo), dataB, 0, len(dataB))
	// C: a closing PUT ?digest= whose body is cut off by the crash.
	dataC := seededBytes(t, 8<<20)
	locC := startUpload(t, c, s, repo)

	// A's next chunk and C's PUT are in flight, each with half its body sent.
	hA := http.Header{"Content-Type": {"application/octet-stream"}, "Content-Range": {fmt.Sprintf("%d-%d", acked, acked+chunk-1)}}
	reqA := startCutRequest(t, c, http.MethodPatch, s.URL(locA), hA, data[acked:acked+chunk], chunk/2)
	hC := http.Header{"Content-Type": {"application/octet-stream"}}
	reqC := startCutRequest(t, c, http.MethodPut, s.URL(withDigest(t, locC, sha256Digest(dataC))), hC, dataC, len(dataC)/2)
	// Kill only once the server has stored part of each cut body.
	seenA := waitUploadGrows(t, c, s, locA, acked)
	seenC := waitUploadGrows(t, c, s, locC, 0)
	t.Logf("killing the server: upload A holds %d bytes (%d acknowledged), C holds %d", seenA, acked, seenC)
	s.Kill()
	for name, r := range map[string]*cutRequest{"PATCH of A": reqA, "PUT of C": reqC} {
		if err := r.abort(); err == nil || errors.Is(err, errAnswered) {
			t.Fatalf("%s, cut off by the crash: %v", name, err)
		}
	}

	s = startServer(t, dataDir)

	// Nothing unfinished is served.
	for name, d := range map[string]string{"B (never closed)": sha256Digest(dataB), "C (close cut off)": sha256Digest(dataC), "A (unfinished)": want} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp := mustDo(t, c, http.StatusNotFound, method, s.URL("/v2/"+repo+"/blobs/"+d), nil, nil)
			if method == http.MethodGet && errorCode(resp.Body) != "BLOB_UNKNOWN" {
				t.Fatalf("GET of blob %s after the crash: %s, want BLOB_UNKNOWN", name, resp.Body)
			}
		}
	}

	// A resumes from the offset the restarted server reports: at least what
	// was stored before the kill, at most what was sent.
	off := uploadSize(t, c, s, locA)
	t.Logf("after restart upload A holds %d bytes", off)
	if off < seenA || off > acked+chunk/2 {
		t.Fatalf("after restart upload A holds %d bytes, want %d..%d", off, seenA, acked+chunk/2)
	}
	for off+chunk < size {
		locA = patchChunk(t, c, s, locA, data, off, off+chunk)
		off += chunk
	}
	h := http.Header{"Content-Type": {"application/octet-stream"}, "Content-Range": {fmt.Sprintf("%d-%d", off, size-1)}}
	resp := mustDo(t, c, http.StatusCreated, http.MethodPut, s.URL(withDigest(t, locA, want)), h, data[off:])
	equalStrings(t, "Docker-Content-Digest of the resumed upload", resp.Header.Get("Docker-Content-Digest"), want)
	resp = mustDo(t, c, http.StatusOK, http.MethodHead, s.URL("/v2/"+repo+"/blobs/"+want), nil, nil)
	equalStrings(t, "Content-Length of the resumed blob", resp.Header.Get("Content-Length"), strconv.Itoa(size))
	equalBytes(t, "resumed blob", getBlob(t, s, repo, want), data)

	// B's session and bytes survived: closing it now stores it.
	resp = mustDo(t, c, http.StatusCreated, http.MethodPut, s.URL(withDigest(t, locB, sha256Digest(dataB))), nil, nil)
	equalBytes(t, "blob B closed after the restart", getBlob(t, s, repo, sha256Digest(dataB)), dataB)

	// C holds part of its body; closing it under the full body's digest is
	// refused and ends the session, and C is still not served.
	resp = mustDo(t, c, http.StatusBadRequest, http.MethodPut, s.URL(withDigest(t, locC, sha256Digest(dataC))), nil, nil)
	equalStrings(t, "closing the cut-off upload C", errorCode(resp.Body), "DIGEST_INVALID")
	resp = mustDo(t, c, http.StatusNotFound, http.MethodGet, s.URL(locC), nil, nil)
	equalStrings(t, "status of C after its failed close", errorCode(resp.Body), "BLOB_UPLOAD_UNKNOWN")
	resp = mustDo(t, c, http.StatusNotFound, http.MethodGet, s.URL("/v2/"+repo+"/blobs/"+sha256Digest(dataC)), nil, nil)
	equalStrings(t, "GET of blob C after its failed close", errorCode(resp.Body), "BLOB_UNKNOWN")
}

// pushedManifest is a manifest whose PUT the registry acknowledged.
type pushedManifest struct {
	repo, tag, digest string
	body              []byte
}

// TestCrashDuringConcurrentManifestPushes pushes config blobs and
// manifests from several workers, kills the server after a random number
// of acknowledged manifests, restarts it, and checks that everything
// acknowledged is served unchanged and that nothing served fails its
// digest. It repeats on the same data directory.
func TestCrashDuringConcurrentManifestPushes(t *testing.T) {
	const iterations, workers = 4, 8
	dataDir := t.TempDir()
	base := uniqueName("crash/manifests-")
	var manifests []pushedManifest
	blobs := map[string]pushedBlob{} // digest -> an acknowledged blob
	for it := range iterations + 1 {
		s := startServer(t, dataDir)
		verifyAfterCrash(t, s, manifests, blobs)
		if it == iterations {
			break
		}
		repo := fmt.Sprintf("%s/it%d", base, it)
		killAfter := 20 + rand.IntN(40)
		m, b := pushUntilKilled(t, s, repo, workers, killAfter)
		t.Logf("iteration %d: killed after %d acknowledged manifests (asked for %d) and %d blobs", it, len(m), killAfter, len(b))
		if len(m) < killAfter {
			t.Fatalf("only %d manifests acknowledged before the kill, want at least %d", len(m), killAfter)
		}
		manifests = append(manifests, m...)
		for _, pb := range b {
			blobs[pb.digest] = pb
		}
	}
}

type pushedBlob struct {
	repo, digest string
	body         []byte
}

// pushUntilKilled runs workers that each push a config blob and then a
// manifest referencing it under a new tag, and kills the server with
// SIGKILL once killAfter manifests have been acknowledged. It returns what
// was acknowledged (201) before the kill.
func pushUntilKilled(t *testing.T, s *server, repo string, workers, killAfter int) ([]pushedManifest, []pushedBlob) {
	c := newClient(t)
	var (
		mu        sync.Mutex
		manifests []pushedManifest
		blobs     []pushedBlob
		acks      atomic.Int64
		killed    atomic.Bool
		kill      = make(chan struct{})
		killOnce  sync.Once
		wg        sync.WaitGroup
	)
	// send returns the response status, or 0 once the server is gone.
	send := func(method, u, contentType string, body []byte) int {
		resp, err := do(c, method, u, http.Header{"Content-Type": {contentType}}, body)
		if err != nil {
			if !killed.Load() {
				t.Errorf("%s %s before the kill: %v", method, u, err)
			}
			return 0
		}
		if resp.Status != http.StatusCreated {
			t.Errorf("%s %s: %d %s", method, u, resp.Status, resp.Body)
			return 0
		}
		return resp.Status
	}
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"portcullis.test":%q}`,
					fmt.Sprintf("%s w%d i%d %s", repo, w, i, uniqueName("")))
				cd := sha256Digest(config)
				if send(http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+cd), "application/octet-stream", config) == 0 {
					return
				}
				mu.Lock()
				blobs = append(blobs, pushedBlob{repo, cd, config})
				mu.Unlock()
				body, err := json.Marshal(manifestJSON{
					SchemaVersion: 2,
					MediaType:     mediaTypeOCIManifest,
					Config:        &descriptor{MediaType: mediaTypeOCIConfig, Digest: cd, Size: int64(len(config))},
					Layers:        []descriptor{},
				})
				if err != nil {
					t.Error(err)
					return
				}
				tag := fmt.Sprintf("w%d-%d", w, i)
				if send(http.MethodPut, s.URL("/v2/"+repo+"/manifests/"+tag), mediaTypeOCIManifest, body) == 0 {
					return
				}
				mu.Lock()
				manifests = append(manifests, pushedManifest{repo, tag, sha256Digest(body), body})
				mu.Unlock()
				if acks.Add(1) == int64(killAfter) {
					killOnce.Do(func() { close(kill) })
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-kill:
		killed.Store(true)
		s.Kill()
	case <-done: // every worker failed: the errors are reported
		killed.Store(true)
		s.Kill()
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	return manifests, blobs
}

// verifyAfterCrash checks that every acknowledged manifest and blob is
// served with its bytes, and that everything the registry lists (every
// tag of every repository) is served with content matching its digest,
// with every blob it references.
func verifyAfterCrash(t *testing.T, s *server, manifests []pushedManifest, blobs map[string]pushedBlob) {
	t.Helper()
	c := newClient(t)
	for _, m := range manifests {
		for _, ref := range []string{m.tag, m.digest} {
			resp := mustDo(t, c, http.StatusOK, http.MethodGet, s.URL("/v2/"+m.repo+"/manifests/"+ref), manifestAccept, nil)
			equalBytes(t, "acknowledged manifest "+m.repo+":"+ref, resp.Body, m.body)
			equalStrings(t, "Docker-Content-Digest of "+m.repo+":"+ref, resp.Header.Get("Docker-Content-Digest"), m.digest)
		}
	}
	for _, b := range blobs {
		equalBytes(t, "acknowledged blob "+b.repo+"@"+b.digest, getBlob(t, s, b.repo, b.digest), b.body)
	}

	resp := mustDo(t, c, http.StatusOK, http.MethodGet, s.URL("/v2/_catalog"), nil, nil)
	var catalog struct {
		Repositories []string `json:"repositories"`
	}
	unmarshal(t, "catalog", resp.Body, &catalog)
	acked := map[string]bool{}
	for _, m := range manifests {
		acked[m.repo+":"+m.tag] = true
	}
	listed, extra := 0, 0
	for _, repo := range catalog.Repositories {
		for _, tag := range listTags(t, s, repo) {
			listed++
			if !acked[repo+":"+tag] {
				extra++ // its PUT was in flight at the kill and committed
			}
			_, m := getManifest(t, s, repo, tag) // checks the digest
			refs := append([]descriptor{}, m.Layers...)
			if m.Config != nil {
				refs = append(refs, *m.Config)
			}
			for _, d := range refs {
				if b := getBlob(t, s, repo, d.Digest); int64(len(b)) != d.Size { // checks the digest
					t.Fatalf("blob %s of %s:%s is %d bytes, the manifest says %d", d.Digest, repo, tag, len(b), d.Size)
				}
			}
		}
	}
	if listed < len(manifests) {
		t.Fatalf("the registry lists %d tags, fewer than the %d acknowledged", listed, len(manifests))
	}
	t.Logf("verified %d acknowledged manifests, %d blobs, %d listed tags (%d committed without an answer)", len(manifests), len(blobs), listed, extra)
}

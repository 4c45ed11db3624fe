package httpapi

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/audittest"
)

func testServer(t *testing.T, l *audit.Log) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler(l, nil))
	t.Cleanup(srv.Close)
	return srv
}

// httpGet returns the body of a 200 answer to GET url.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", url, resp.StatusCode, body, err)
	}
	return string(body)
}

func TestHTTPSearchMatchesLog(t *testing.T) {
	l, _ := audittest.OpenSQLite(t)
	audittest.AppendN(t, l, 0, 120)
	c := NewClient(testServer(t, l).URL, l.Verifier(), nil)
	for _, f := range []audit.Filter{
		{},
		{Digest: audittest.Record(4).Subject.Digest},
		{Repository: "prod/app2", Ascending: true},
		{Action: audit.ActionAdmit, Verdict: audit.VerdictAllow},
		{Actor: "alice", Since: audittest.T0.Add(30 * time.Second), Until: audittest.T0.Add(90 * time.Second)},
		{PolicyRevision: audittest.Record(2).PolicyRevision, Namespace: "prod"},
	} {
		f.Limit = 9
		local := audittest.SearchAll(t, l.Search, f)
		remote := audittest.SearchAll(t, c.Search, f)
		if !slices.Equal(local, remote) || len(local) == 0 {
			t.Errorf("filter %+v: server returned %v, log %v", f, remote, local)
		}
	}
}

func TestHTTPProveAndCheckpoints(t *testing.T) {
	ctx := context.Background()
	l, _ := audittest.OpenSQLite(t)
	audittest.AppendN(t, l, 0, 10)
	c := NewClient(testServer(t, l).URL, l.Verifier(), nil)
	// Not yet checkpointed: the record, without proof.
	p, err := c.Prove(ctx, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Proof != nil {
		t.Fatalf("proof without a checkpoint: %+v", p.Proof)
	}
	if _, err := c.LatestCheckpoint(ctx); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("latest checkpoint of a new log: %v, want not found", err)
	}
	cp10, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	audittest.AppendN(t, l, 10, 7)
	cp17, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint64{0, 10} {
		p, err := c.Prove(ctx, 3, size)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := audit.VerifyProved(p, l.Verifier())
		if err != nil {
			t.Fatalf("treeSize %d: %v", size, err)
		}
		if want := map[uint64]uint64{0: 17, 10: 10}[size]; cp.Size != want {
			t.Errorf("treeSize %d: proved against %d, want %d", size, cp.Size, want)
		}
		p.Entry.Leaf = bytes.Replace(p.Entry.Leaf, []byte("reason 3"), []byte("reason 4"), 1)
		if _, err := audit.VerifyProved(p, l.Verifier()); !errors.Is(err, audit.ErrProof) {
			t.Errorf("altered record verified: %v", err)
		}
	}
	latest, err := c.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(latest, cp17.Note) {
		t.Errorf("latest checkpoint = %q, want %q", latest, cp17.Note)
	}
	notes, err := c.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 2 || !bytes.Equal(notes[0], cp10.Note) {
		t.Errorf("checkpoints = %q", notes)
	}
	cp, err := c.ConsistencyProof(ctx, 10, 17)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyConsistency(cp10.Checkpoint, cp17.Checkpoint, cp); err != nil {
		t.Error(err)
	}
	rep, err := c.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 17 || rep.Checkpoints != 2 {
		t.Errorf("remote verify report = %+v", rep)
	}
}

func TestHTTPRunning(t *testing.T) {
	l, _ := audittest.OpenSQLite(t)
	audittest.AppendN(t, l, 0, 40)
	c := NewClient(testServer(t, l).URL, nil, nil)
	got, err := c.Running(context.Background(), "ns1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := l.Running(context.Background(), "ns1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("running: server %d entries, log %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Index != want[i].Index || got[i].Record.Target.Namespace != "ns1" {
			t.Errorf("entry %d: %+v", i, got[i])
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	l, _ := audittest.OpenSQLite(t)
	audittest.AppendN(t, l, 0, 3)
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, l)
	tests := []struct {
		method, path string
		status       int
		msg          string
	}{
		{"GET", "/portcullis/v1/decisions?limit=0", 400, "limit"},
		{"GET", "/portcullis/v1/decisions?limit=5000", 400, "limit"},
		{"GET", "/portcullis/v1/decisions?action=erase", 400, "action"},
		{"GET", "/portcullis/v1/decisions?since=yesterday", 400, "since"},
		{"GET", "/portcullis/v1/decisions?cursor=abc", 400, "cursor"},
		// A mistyped filter is refused, naming it and what is accepted,
		// rather than ignored (which would match everything).
		{"GET", "/portcullis/v1/decisions?verdcit=deny", 400, `unknown parameter "verdcit": want digest, repository, action, verdict, actor, policyRevision, namespace, since, until, order, cursor, limit`},
		{"GET", "/portcullis/v1/decisions?policy_revision=x&digest=", 400, `unknown parameter "policy_revision"`},
		{"GET", "/portcullis/v1/decisions/99", 404, "record 99"},
		{"GET", "/portcullis/v1/decisions/x", 400, "index"},
		{"GET", "/portcullis/v1/decisions/1?treeSize=2", 404, "no checkpoint of size 2"},
		{"GET", "/portcullis/v1/proofs/consistency?from=1", 400, "to"},
		{"GET", "/portcullis/v1/proofs/consistency?from=2&to=9", 400, "out of range"},
		{"POST", "/portcullis/v1/decisions", 405, "read-only"},
		{"DELETE", "/portcullis/v1/decisions/1", 405, "read-only"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("body %q (%s) is not a JSON error: %v", body, resp.Header.Get("Content-Type"), err)
			}
			if resp.StatusCode != tt.status || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("%d %q, want %d and an error containing %q", resp.StatusCode, e.Error, tt.status, tt.msg)
			}
		})
	}
}

// TestRemoteVerifyDetectsTampering: a record rewritten in the database
// together with its leaf hash is caught by the client's own check against
// the signed checkpoints.
func TestRemoteVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := audit.LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	w, err := audit.OpenSQLite(ctx, path, audit.WithSigner(s), audit.WithCheckpointEvery(10, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := w.Append(ctx, audittest.Record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var leaf []byte
	if err := db.QueryRow(`SELECT leaf FROM records WHERE idx = 17`).Scan(&leaf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(leaf, []byte(`"reason 17"`)) {
		t.Fatalf("record 17 has no reason 17: %s", leaf)
	}
	leaf = bytes.Replace(leaf, []byte(`"reason 17"`), []byte(`"ok"`), 1)
	if _, err := db.Exec(`UPDATE records SET leaf = ?, leaf_hash = ? WHERE idx = 17`, leaf, audit.LeafHash(leaf)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l, err := audit.OpenSQLite(ctx, path, audit.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = NewClient(testServer(t, l).URL, s.Verifier(), nil).Verify(ctx)
	var te *audit.TamperError
	if !errors.As(err, &te) || te.Index != 10 || te.Checkpoint != 20 {
		t.Fatalf("remote verify = %v, want records [10, 20) not matching checkpoint 20", err)
	}
}

func FuzzParseFilter(f *testing.F) {
	f.Add("digest=sha256:abc&since=2026-01-01T00:00:00Z&limit=10&cursor=5&order=asc")
	f.Add("action=admit&verdict=deny&until=2026-01-01T00:00:00.5Z")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		flt, err := ParseFilter(v)
		if err != nil {
			return
		}
		// What parses re-encodes to the same filter.
		again, err := ParseFilter(FilterValues(flt))
		if err != nil {
			t.Fatalf("%q: re-encoded filter does not parse: %v", q, err)
		}
		if !reflect.DeepEqual(FilterValues(again), FilterValues(flt)) || again.Limit != flt.Limit {
			t.Fatalf("%q: %+v re-parses as %+v", q, flt, again)
		}
	})
}

// TestLastPageHasNoCursor: the API leaves nextCursor out of a full last
// page, as the log does (audit's TestSearchLastPageHasNoCursor).
func TestLastPageHasNoCursor(t *testing.T) {
	const limit = 5
	for _, n := range []int{limit, limit + 1, 2 * limit} {
		l, _ := audittest.OpenSQLite(t)
		audittest.AppendN(t, l, 0, n)
		srv := testServer(t, l)
		if got := audittest.SearchAll(t, NewClient(srv.URL, nil, nil).Search, audit.Filter{Limit: limit}); len(got) != n {
			t.Errorf("%d records: the API listed %v", n, got)
		}
		q := url.Values{ParamLimit: {fmt.Sprint(limit)}, ParamCursor: {fmt.Sprint(n - limit)}}
		if n == limit {
			q.Del(ParamCursor)
		}
		body := httpGet(t, srv.URL+PathDecisions+"?"+q.Encode())
		if strings.Contains(body, "nextCursor") {
			t.Errorf("last page of %d records has a cursor: %s", n, body)
		}
	}
}

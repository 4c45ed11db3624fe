package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func testServer(t *testing.T, l *Log) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler(l))
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
	l, _ := testLog(t)
	appendN(t, l, 0, 120)
	c := NewClient(testServer(t, l).URL, l.verifier, nil)
	for _, f := range []Filter{
		{},
		{Digest: record(4).Subject.Digest},
		{Repository: "prod/app2", Ascending: true},
		{Action: ActionAdmit, Verdict: VerdictAllow},
		{Actor: "alice", Since: t0.Add(30 * time.Second), Until: t0.Add(90 * time.Second)},
		{PolicyRevision: record(2).PolicyRevision, Namespace: "prod"},
	} {
		f.Limit = 9
		local := searchAll(t, l.Search, f)
		remote := searchAll(t, c.Search, f)
		if !slices.Equal(local, remote) || len(local) == 0 {
			t.Errorf("filter %+v: server returned %v, log %v", f, remote, local)
		}
	}
}

func TestHTTPProveAndCheckpoints(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	appendN(t, l, 0, 10)
	c := NewClient(testServer(t, l).URL, l.verifier, nil)
	// Not yet checkpointed: the record, without proof.
	p, err := c.Prove(ctx, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Proof != nil {
		t.Fatalf("proof without a checkpoint: %+v", p.Proof)
	}
	if _, err := c.LatestCheckpoint(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("latest checkpoint of a new log: %v, want not found", err)
	}
	cp10, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 10, 7)
	cp17, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint64{0, 10} {
		p, err := c.Prove(ctx, 3, size)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := VerifyProved(p, l.verifier)
		if err != nil {
			t.Fatalf("treeSize %d: %v", size, err)
		}
		if want := map[uint64]uint64{0: 17, 10: 10}[size]; cp.Size != want {
			t.Errorf("treeSize %d: proved against %d, want %d", size, cp.Size, want)
		}
		p.Entry.Leaf = bytes.Replace(p.Entry.Leaf, []byte("reason 3"), []byte("reason 4"), 1)
		if _, err := VerifyProved(p, l.verifier); !errors.Is(err, ErrProof) {
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
	if err := VerifyConsistency(cp10.Checkpoint, cp17.Checkpoint, cp); err != nil {
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
	l, _ := testLog(t)
	appendN(t, l, 0, 40)
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
	l, _ := testLog(t)
	appendN(t, l, 0, 3)
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

func TestRemoteVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	path, v := tamperFixture(t)
	db := rawDB(t, path)
	leaf := editLeaf(t, db, 17, `"reason 17"`, `"ok"`)
	execSQL(t, db, `UPDATE records SET leaf = ?, leaf_hash = ? WHERE idx = 17`, leaf, LeafHash(leaf))
	db.Close()
	l, err := OpenSQLite(ctx, path, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = NewClient(testServer(t, l).URL, v, nil).Verify(ctx)
	var te *TamperError
	if !errors.As(err, &te) || te.Index != 10 || te.Checkpoint != 20 {
		t.Fatalf("remote verify = %v, want records [10, 20) not matching checkpoint 20", err)
	}
}

package audit

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// testLog opens a fresh SQLite log in t's temp dir; it is closed at
// cleanup. (What every store must do is audittest.RunStore's.)
func testLog(t testing.TB, opts ...Option) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithSigner(s)}, opts...)
	l, err := OpenSQLite(context.Background(), filepath.Join(dir, "audit.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// record returns a varied record: i decides action, verdict, digest and so on.
func record(i int) Record {
	actions := []string{ActionPromote, ActionAdmit, ActionPush, ActionAdmit}
	verdicts := []string{VerdictAllow, VerdictAllow, VerdictDeny, VerdictError}
	r := Record{
		Time:    t0.Add(time.Duration(i) * time.Second),
		Action:  actions[i%4],
		Verdict: verdicts[(i/4)%4],
		Subject: Subject{
			Repository: fmt.Sprintf("staging/app%d", i%10),
			Digest:     fmt.Sprintf("sha256:%064x", i%50),
			Tag:        "v1",
		},
		Actor:          Actor{Identity: fmt.Sprintf("ci-%d", i%3)},
		PolicyRevision: fmt.Sprintf("sha256:%064x", 1000+i%5),
		Evidence: Evidence{
			Signers:      []EvidenceSigner{{Authority: "release", KeyID: "SHA256:abc"}},
			Attestations: []Attestation{{PredicateType: "https://slsa.dev/provenance/v1", Digest: "sha256:01"}},
			Scan:         &Scan{DBVersion: "2", DBBuiltAt: t0, Counts: map[string]int{"CRITICAL": i % 2, "HIGH": 3}},
		},
		Reasons: []string{fmt.Sprintf("reason %d", i)},
	}
	switch r.Action {
	case ActionPromote:
		r.Target = Target{Repository: fmt.Sprintf("prod/app%d", i%10), Namespace: "prod"}
	case ActionAdmit:
		r.Target = Target{Namespace: fmt.Sprintf("ns%d", i%3), Kind: "Deployment", Name: fmt.Sprintf("web%d", i%7)}
		r.Actor = Actor{KubernetesUser: "alice", ServiceAccount: fmt.Sprintf("ns%d/default", i%3)}
	}
	return r
}

func appendN(t testing.TB, l *Log, from, n int) []Entry {
	t.Helper()
	rs := make([]Record, n)
	for i := range rs {
		rs[i] = record(from + i)
	}
	es, err := l.AppendAll(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// rawDB opens the SQLite file directly, as an attacker with file access would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execSQL(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

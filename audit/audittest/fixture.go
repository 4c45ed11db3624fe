// Package audittest tests implementations of audit.Store: RunStore is the
// conformance suite every store runs (the SQLite and PostgreSQL stores of
// package audit), and the fixtures here (Record, AppendN, OpenSQLite) serve
// the tests of the packages built on a log.
package audittest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// T0 is the time of Record(0); Record(i) is i seconds later.
var T0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Record returns a varied record: i decides action, verdict, digest and so on.
func Record(i int) audit.Record {
	actions := []string{audit.ActionPromote, audit.ActionAdmit, audit.ActionPush, audit.ActionAdmit}
	verdicts := []string{audit.VerdictAllow, audit.VerdictAllow, audit.VerdictDeny, audit.VerdictError}
	r := audit.Record{
		Time:    T0.Add(time.Duration(i) * time.Second),
		Action:  actions[i%4],
		Verdict: verdicts[(i/4)%4],
		Subject: audit.Subject{
			Repository: fmt.Sprintf("staging/app%d", i%10),
			Digest:     fmt.Sprintf("sha256:%064x", i%50),
			Tag:        "v1",
		},
		Actor:          audit.Actor{Identity: fmt.Sprintf("ci-%d", i%3)},
		PolicyRevision: fmt.Sprintf("sha256:%064x", 1000+i%5),
		Evidence: audit.Evidence{
			Signers:      []audit.EvidenceSigner{{Authority: "release", KeyID: "SHA256:abc"}},
			Attestations: []audit.Attestation{{PredicateType: "https://slsa.dev/provenance/v1", Digest: "sha256:01"}},
			Scan:         &audit.Scan{DBVersion: "2", DBBuiltAt: T0, Counts: map[string]int{"CRITICAL": i % 2, "HIGH": 3}},
		},
		Reasons: []string{fmt.Sprintf("reason %d", i)},
	}
	switch r.Action {
	case audit.ActionPromote:
		r.Target = audit.Target{Repository: fmt.Sprintf("prod/app%d", i%10), Namespace: "prod"}
	case audit.ActionAdmit:
		r.Target = audit.Target{Namespace: fmt.Sprintf("ns%d", i%3), Kind: "Deployment", Name: fmt.Sprintf("web%d", i%7)}
		r.Actor = audit.Actor{KubernetesUser: "alice", ServiceAccount: fmt.Sprintf("ns%d/default", i%3)}
	}
	return r
}

// AppendN appends Record(from), ..., Record(from+n-1) in one AppendAll.
func AppendN(t testing.TB, l *audit.Log, from, n int) []audit.Entry {
	t.Helper()
	rs := make([]audit.Record, n)
	for i := range rs {
		rs[i] = Record(from + i)
	}
	es, err := l.AppendAll(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// OpenSQLite opens a fresh log in t's temp dir, with a new signer (and
// opts), closed at cleanup; it returns the log and its SQLite file's path.
func OpenSQLite(t testing.TB, opts ...audit.Option) (*audit.Log, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := audit.LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	l, err := audit.OpenSQLite(context.Background(), path, append([]audit.Option{audit.WithSigner(s)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// SearchAll pages through a search from f on, checking that no page holds
// more than f's limit (as the log reads it: DefaultLimit if unset, at most
// MaxLimit), and returns the indexes found.
func SearchAll(t testing.TB, search func(context.Context, audit.Filter) (audit.Page, error), f audit.Filter) []uint64 {
	t.Helper()
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = audit.DefaultLimit
	case limit > audit.MaxLimit:
		limit = audit.MaxLimit
	}
	var got []uint64
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		p, err := search(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) > limit {
			t.Fatalf("page of %d entries, limit %d", len(p.Entries), limit)
		}
		for _, e := range p.Entries {
			got = append(got, e.Index)
		}
		if p.Next == "" {
			return got
		}
		after, err := audit.ParseCursor(p.Next)
		if err != nil {
			t.Fatal(err)
		}
		f.After = after
	}
}

package audit

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// match is the reference implementation of Filter, record by record.
func match(f Filter, r Record) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	return eq(f.Digest, r.Subject.Digest) &&
		(f.Repository == "" || f.Repository == r.Subject.Repository || f.Repository == r.Target.Repository) &&
		eq(f.Action, r.Action) && eq(f.Verdict, r.Verdict) &&
		(f.Actor == "" || f.Actor == r.Actor.Identity || f.Actor == r.Actor.KubernetesUser || f.Actor == r.Actor.ServiceAccount) &&
		eq(f.PolicyRevision, r.PolicyRevision) && eq(f.Namespace, r.Target.Namespace) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since)) && (f.Until.IsZero() || r.Time.Before(f.Until))
}

// wantSearch is the reference listing of f over records (record i has
// index i): time-bounded searches by (time, index), others by index.
func wantSearch(f Filter, records []Record) []uint64 {
	var want []uint64
	for i, r := range records {
		if match(f, r) {
			want = append(want, uint64(i))
		}
	}
	if f.Since.IsZero() && f.Until.IsZero() {
		slices.Sort(want)
	} else {
		slices.SortFunc(want, func(a, b uint64) int {
			return cmp.Or(records[a].Time.Compare(records[b].Time), cmp.Compare(a, b))
		})
	}
	if !f.Ascending {
		slices.Reverse(want)
	}
	return want
}

// searchAll pages through a search, checking page sizes, and returns the indexes.
func searchAll(t *testing.T, search func(context.Context, Filter) (Page, error), f Filter) []uint64 {
	t.Helper()
	var got []uint64
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		p, err := search(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) > f.limit() {
			t.Fatalf("page of %d entries, limit %d", len(p.Entries), f.limit())
		}
		for _, e := range p.Entries {
			got = append(got, e.Index)
		}
		if p.Next == "" {
			return got
		}
		after, err := ParseCursor(p.Next)
		if err != nil {
			t.Fatal(err)
		}
		f.After = after
	}
}

func TestSearchFilters(t *testing.T) {
	l, _ := testLog(t)
	const n = 230
	appendN(t, l, 0, n)
	records := make([]Record, n)
	for i := range records {
		records[i] = record(i)
	}
	tests := []struct {
		name string
		f    Filter
	}{
		{"all", Filter{}},
		{"digest", Filter{Digest: record(7).Subject.Digest}},
		{"subject repository", Filter{Repository: "staging/app3"}},
		{"target repository", Filter{Repository: "prod/app4"}},
		{"action", Filter{Action: ActionPromote}},
		{"verdict", Filter{Verdict: VerdictDeny}},
		{"action and verdict", Filter{Action: ActionAdmit, Verdict: VerdictError}},
		{"actor identity", Filter{Actor: "ci-1"}},
		{"actor kubernetes user", Filter{Actor: "alice"}},
		{"actor service account", Filter{Actor: "ns2/default"}},
		{"policy revision", Filter{PolicyRevision: record(3).PolicyRevision}},
		{"namespace", Filter{Namespace: "ns1"}},
		{"time range", Filter{Since: t0.Add(50 * time.Second), Until: t0.Add(120 * time.Second)}},
		{"since", Filter{Since: t0.Add(200 * time.Second)}},
		{"combined", Filter{Digest: record(9).Subject.Digest, Action: ActionAdmit, Since: t0.Add(10 * time.Second)}},
		{"no match", Filter{Digest: "sha256:none"}},
	}
	store := l.store.(*sqlStore)
	for _, tt := range tests {
		// probe 0 and 16 take the index path for (most of) the rows.
		for _, c := range []struct {
			asc   bool
			probe int
		}{{false, defaultProbeRows}, {false, 16}, {false, 0}, {true, defaultProbeRows}} {
			t.Run(fmt.Sprintf("%s/asc=%v/probe=%d", tt.name, c.asc, c.probe), func(t *testing.T) {
				store.probeRows = c.probe
				asc := c.asc
				f := tt.f
				f.Ascending, f.Limit = asc, 7
				want := wantSearch(f, records)
				got := searchAll(t, l.Search, f)
				if !slices.Equal(got, want) {
					t.Errorf("got %d records %v\nwant %d %v", len(got), got, len(want), want)
				}
				if tt.name != "no match" && tt.name != "all" && (len(want) == 0 || len(want) == n) {
					t.Errorf("test filter is not selective: %d of %d match", len(want), n)
				}
			})
		}
	}
}

// TestSearchTimeOrder: the gate gives record times, which need not follow
// the append order; time-bounded searches list by time, ties by index, and
// page through ties.
func TestSearchTimeOrder(t *testing.T) {
	l, _ := testLog(t)
	const n = 90
	records := make([]Record, n)
	for i := range records {
		records[i] = record(i)
		records[i].Time = t0.Add(time.Duration(i*37%30) * time.Second) // 3 records a second, out of order
	}
	if _, err := l.AppendAll(context.Background(), records); err != nil {
		t.Fatal(err)
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		f    Filter
	}{
		{"since and until", Filter{Since: at(5), Until: at(21)}},
		{"since", Filter{Since: at(25)}},
		{"until", Filter{Until: at(4)}},
		{"before any record", Filter{Until: at(0)}},
		{"digest", Filter{Digest: record(3).Subject.Digest, Since: at(2)}},
		{"policy revision and namespace", Filter{PolicyRevision: record(1).PolicyRevision, Namespace: "ns1", Until: at(29)}},
		{"actor", Filter{Actor: "alice", Since: at(3), Until: at(27)}},
		{"repository and verdict", Filter{Repository: "prod/app0", Verdict: VerdictAllow, Since: at(1)}},
		{"far past and future", Filter{Since: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		for _, asc := range []bool{false, true} {
			for _, limit := range []int{1, 4, 100} {
				t.Run(fmt.Sprintf("%s/asc=%v/limit=%d", tt.name, asc, limit), func(t *testing.T) {
					f := tt.f
					f.Ascending, f.Limit = asc, limit
					want := wantSearch(f, records)
					if got := searchAll(t, l.Search, f); !slices.Equal(got, want) {
						t.Errorf("got %d records %v\nwant %d %v", len(got), got, len(want), want)
					}
					if tt.name != "before any record" && len(want) == 0 {
						t.Error("test filter matches nothing")
					}
				})
			}
		}
	}
	bad := uint64(n)
	if _, err := l.Search(context.Background(), Filter{Since: t0, After: &bad}); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("time-bounded search after a record that does not exist: %v, want ErrOutOfRange", err)
	}
}

// TestSearchPlans guards the query shapes of time-bounded searches: a range
// scan of an index already in the listing order, with no sort of the
// matches (EXPLAIN QUERY PLAN shows "USE TEMP B-TREE FOR ORDER BY" for one).
func TestSearchPlans(t *testing.T) {
	_, dir := testLog(t)
	db := rawDB(t, dir+"/audit.db")
	cursor, cursorTime := uint64(5), t0.UnixNano()
	for _, tt := range []struct {
		name  string
		f     Filter
		index string
	}{
		{"time range", Filter{Since: t0, Until: t0.Add(time.Hour)}, "records_time"},
		{"since, oldest first", Filter{Since: t0, Ascending: true}, "records_time"},
		{"until, next page", Filter{Until: t0, After: &cursor}, "records_time"},
		{"actor and verdict", Filter{Actor: "alice", Verdict: VerdictDeny, Since: t0}, "records_time"},
		{"repository", Filter{Repository: "prod/app", Until: t0}, "records_time"},
		{"digest", Filter{Digest: "sha256:x", Since: t0, Until: t0.Add(time.Hour), After: &cursor}, "records_digest_time"},
		{"policy revision", Filter{PolicyRevision: "sha256:p", Since: t0}, "records_policy_revision_time"},
		{"namespace, oldest first", Filter{Namespace: "prod", Action: ActionAdmit, Until: t0, Ascending: true}, "records_namespace_time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ct *int64
			if tt.f.After != nil {
				ct = &cursorTime
			}
			where, args, order, ok := tt.f.timeQuery(ct, func(h func(string) bool) func(string) bool { return h })
			if !ok {
				t.Fatal("no query")
			}
			plan := explain(t, db, selectIDs(where, order), append(args, 100)...)
			if strings.Contains(plan, "TEMP B-TREE") || !strings.Contains(plan, "INDEX "+tt.index+" ") {
				t.Errorf("plan:\n%s\nwant a scan of %s and no sort", plan, tt.index)
			}
		})
	}
	// The (column, time_ns) indexes must not take over searches in index
	// order: their entries are not in that order.
	for _, tt := range []struct {
		name  string
		f     Filter
		index string
	}{
		{"digest", Filter{Digest: "sha256:x"}, "records_digest"},
		{"policy revision", Filter{PolicyRevision: "sha256:p", Action: ActionAdmit}, "records_policy_revision"},
		{"namespace, oldest first", Filter{Namespace: "prod", Ascending: true}, "records_namespace"},
	} {
		t.Run(tt.name+" without time", func(t *testing.T) {
			where, args := tt.f.conditions(tt.f.columnIndexes)
			order := "idx DESC"
			if tt.f.Ascending {
				order = "idx ASC"
			}
			plan := explain(t, db, selectIDs(append(where, "idx < ?"), order), append(args, 1000, 100)...)
			if strings.Contains(plan, "TEMP B-TREE") || !strings.Contains(plan, "INDEX "+tt.index+" ") {
				t.Errorf("plan:\n%s\nwant a scan of %s and no sort", plan, tt.index)
			}
		})
	}
}

func explain(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSearchDefaultLimit(t *testing.T) {
	l, _ := testLog(t)
	appendN(t, l, 0, DefaultLimit+1)
	p, err := l.Search(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != DefaultLimit || p.Next == "" || p.Entries[0].Index != DefaultLimit {
		t.Errorf("first page: %d entries from %d, next %q; want %d newest first and a cursor", len(p.Entries), p.Entries[0].Index, p.Next, DefaultLimit)
	}
}

func TestRunning(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	admit := func(ns, name, digest, verdict string, sec int) Record {
		return Record{Time: t0.Add(time.Duration(sec) * time.Second), Action: ActionAdmit, Verdict: verdict,
			Subject:  Subject{Repository: "r.example/prod/web", Digest: digest},
			Target:   Target{Namespace: ns, Kind: "Deployment", Name: name},
			Evidence: Evidence{SBOMDigest: "sha256:sbom-" + digest}}
	}
	warn := func(r Record) Record { r.Enforcement = EnforcementWarn; return r }
	rs := []Record{
		admit("prod", "web", "sha256:a", VerdictAllow, 1), // 0: superseded by 2
		admit("prod", "web", "sha256:b", VerdictAllow, 2), // 1
		admit("prod", "web", "sha256:a", VerdictAllow, 3), // 2
		admit("prod", "api", "sha256:c", VerdictDeny, 4),  // 3: denied, not running
		admit("dev", "web", "sha256:a", VerdictAllow, 5),  // 4
		{Time: t0, Action: ActionPromote, Verdict: VerdictAllow, Subject: Subject{Digest: "sha256:a"}, Target: Target{Repository: "prod/web"}},
		{Time: t0, Action: ActionBreakGlass, Verdict: VerdictAllow, BreakGlassJustification: "INC-42",
			Subject: Subject{Digest: "sha256:d"}, Target: Target{Namespace: "prod", Kind: "Pod", Name: "debug"}}, // 6
		warn(admit("prod", "batch", "sha256:e", VerdictDeny, 6)),  // 7: denied but admitted in warn mode: running
		warn(admit("prod", "batch", "sha256:f", VerdictError, 7)), // 8: the same for a check that failed
		admit("prod", "batch", "sha256:g", VerdictDeny, 8),        // 9: denied and enforced
	}
	if _, err := l.AppendAll(ctx, rs); err != nil {
		t.Fatal(err)
	}
	idx := func(es []Entry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Index)
		}
		slices.Sort(out)
		return out
	}
	all, err := l.Running(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idx(all), []uint64{1, 2, 4, 6, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("running = %v, want %v", got, want)
	}
	prod, err := l.Running(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idx(prod), []uint64{1, 2, 6, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("running in prod = %v, want %v", got, want)
	}
	for _, e := range prod {
		if e.Index == 2 && e.Record.Evidence.SBOMDigest != "sha256:sbom-sha256:a" {
			t.Errorf("running entry lost its evidence: %+v", e.Record.Evidence)
		}
		if e.Index == 7 && (e.Record.Verdict != VerdictDeny || e.Record.Enforcement != EnforcementWarn) {
			t.Errorf("running entry admitted in warn mode: verdict %q, enforcement %q; want deny, warn", e.Record.Verdict, e.Record.Enforcement)
		}
	}
}

// TestRunningPlan: SQLite answers Running from the partial index
// records_running, whose WHERE terms the query must repeat exactly.
func TestRunningPlan(t *testing.T) {
	t.Parallel()
	l, dir := testLog(t)
	db := rawDB(t, dir+"/audit.db")
	for _, ns := range []string{"", "prod"} {
		q, args := l.store.(*sqlStore).runningQuery(ns)
		if plan := explain(t, db, q, args...); !strings.Contains(plan, "INDEX records_running") {
			t.Errorf("Running(%q) plan:\n%s\nwant records_running", ns, plan)
		}
	}
}

func TestExportJSONLines(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	appendN(t, l, 0, MaxLimit+5) // more than one page
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, Filter{}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	for i := 0; ; i++ {
		var e Entry
		if err := dec.Decode(&e); err != nil {
			if i != MaxLimit+5 {
				t.Fatalf("export has %d lines (%v), want %d", i, err, MaxLimit+5)
			}
			break
		}
		if e.Index != uint64(i) || !bytes.Equal(LeafHash(e.Leaf), e.LeafHash) {
			t.Fatalf("line %d: index %d, leaf hash ok %v", i, e.Index, bytes.Equal(LeafHash(e.Leaf), e.LeafHash))
		}
	}
}

// TestSearchLastPageHasNoCursor is from the promises issue: a page has a
// cursor only when more records match, so a full last page (exactly limit
// records left) ends the listing, and a client following cursors sees
// every record exactly once. Each search path of the store is tried: by
// index newest first (probe, then indexes), oldest first, with a selective
// filter, and bounded in time (through the API: audit/httpapi's
// TestLastPageHasNoCursor).
func TestSearchLastPageHasNoCursor(t *testing.T) {
	const limit = 5
	digest := fmt.Sprintf("sha256:%064x", 7)
	for _, n := range []int{limit, limit + 1, 2 * limit} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l, _ := testLog(t)
			rs := make([]Record, n)
			for i := range rs {
				rs[i] = record(i)
				rs[i].Subject.Digest = digest
			}
			if _, err := l.AppendAll(context.Background(), rs); err != nil {
				t.Fatal(err)
			}
			for _, f := range []Filter{
				{},
				{Ascending: true},
				{Digest: digest},
				{Digest: digest, Ascending: true},
				{Since: t0},
				{Until: t0.Add(time.Hour), Ascending: true},
			} {
				f.Limit = limit
				for name, search := range map[string]func(context.Context, Filter) (Page, error){"log": l.Search} {
					var got []uint64
					pages := 0
					for g := f; ; pages++ {
						if pages > n {
							t.Fatalf("%s %+v: the listing does not end", name, f)
						}
						p, err := search(context.Background(), g)
						if err != nil {
							t.Fatal(err)
						}
						if len(p.Entries) == 0 && pages > 0 {
							t.Errorf("%s %+v: page %d is empty: the page before should have had no cursor", name, f, pages)
						}
						for _, e := range p.Entries {
							got = append(got, e.Index)
						}
						if p.Next == "" {
							break
						}
						if g.After, err = ParseCursor(p.Next); err != nil {
							t.Fatal(err)
						}
					}
					want := wantSearch(f, rs)
					if !slices.Equal(got, want) || pages != (n-1)/limit {
						t.Errorf("%s %+v: %d pages of %v, want %d pages of %v", name, f, pages+1, got, (n-1)/limit+1, want)
					}
				}
			}
		})
	}
}

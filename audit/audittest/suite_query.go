package audittest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// match is the reference implementation of audit.Filter, record by record.
func match(f audit.Filter, r audit.Record) bool {
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
func wantSearch(f audit.Filter, records []audit.Record) []uint64 {
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

func testSearchFilters(t *testing.T, h Harness) {
	l, _ := newLog(t, h)
	const n = 230
	AppendN(t, l, 0, n)
	records := make([]audit.Record, n)
	for i := range records {
		records[i] = Record(i)
	}
	tests := []struct {
		name string
		f    audit.Filter
	}{
		{"all", audit.Filter{}},
		{"digest", audit.Filter{Digest: Record(7).Subject.Digest}},
		{"subject repository", audit.Filter{Repository: "staging/app3"}},
		{"target repository", audit.Filter{Repository: "prod/app4"}},
		{"action", audit.Filter{Action: audit.ActionPromote}},
		{"verdict", audit.Filter{Verdict: audit.VerdictDeny}},
		{"action and verdict", audit.Filter{Action: audit.ActionAdmit, Verdict: audit.VerdictError}},
		{"actor identity", audit.Filter{Actor: "ci-1"}},
		{"actor kubernetes user", audit.Filter{Actor: "alice"}},
		{"actor service account", audit.Filter{Actor: "ns2/default"}},
		{"policy revision", audit.Filter{PolicyRevision: Record(3).PolicyRevision}},
		{"namespace", audit.Filter{Namespace: "ns1"}},
		{"time range", audit.Filter{Since: T0.Add(50 * time.Second), Until: T0.Add(120 * time.Second)}},
		{"since", audit.Filter{Since: T0.Add(200 * time.Second)}},
		{"combined", audit.Filter{Digest: Record(9).Subject.Digest, Action: audit.ActionAdmit, Since: T0.Add(10 * time.Second)}},
		{"no match", audit.Filter{Digest: "sha256:none"}},
	}
	type variant struct {
		asc   bool
		probe int // rows the store probes (SetProbeRows); -1: its default
	}
	variants := []variant{{false, -1}, {true, -1}}
	if h.SetProbeRows != nil {
		// probe 0 and 16 take the index path for (most of) the rows.
		variants = append(variants, variant{false, 16}, variant{false, 0})
	}
	for _, tt := range tests {
		for _, c := range variants {
			probe := "default"
			if c.probe >= 0 {
				probe = fmt.Sprint(c.probe)
			}
			t.Run(fmt.Sprintf("%s/asc=%v/probe=%s", tt.name, c.asc, probe), func(t *testing.T) {
				if c.probe >= 0 {
					prev := h.SetProbeRows(l, c.probe)
					defer h.SetProbeRows(l, prev)
				}
				asc := c.asc
				f := tt.f
				f.Ascending, f.Limit = asc, 7
				want := wantSearch(f, records)
				got := SearchAll(t, l.Search, f)
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
func testSearchTimeOrder(t *testing.T, h Harness) {
	l, _ := newLog(t, h)
	const n = 90
	records := make([]audit.Record, n)
	for i := range records {
		records[i] = Record(i)
		records[i].Time = T0.Add(time.Duration(i*37%30) * time.Second) // 3 records a second, out of order
	}
	if _, err := l.AppendAll(context.Background(), records); err != nil {
		t.Fatal(err)
	}
	at := func(s int) time.Time { return T0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		f    audit.Filter
	}{
		{"since and until", audit.Filter{Since: at(5), Until: at(21)}},
		{"since", audit.Filter{Since: at(25)}},
		{"until", audit.Filter{Until: at(4)}},
		{"before any record", audit.Filter{Until: at(0)}},
		{"digest", audit.Filter{Digest: Record(3).Subject.Digest, Since: at(2)}},
		{"policy revision and namespace", audit.Filter{PolicyRevision: Record(1).PolicyRevision, Namespace: "ns1", Until: at(29)}},
		{"actor", audit.Filter{Actor: "alice", Since: at(3), Until: at(27)}},
		{"repository and verdict", audit.Filter{Repository: "prod/app0", Verdict: audit.VerdictAllow, Since: at(1)}},
		{"far past and future", audit.Filter{Since: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		for _, asc := range []bool{false, true} {
			for _, limit := range []int{1, 4, 100} {
				t.Run(fmt.Sprintf("%s/asc=%v/limit=%d", tt.name, asc, limit), func(t *testing.T) {
					f := tt.f
					f.Ascending, f.Limit = asc, limit
					want := wantSearch(f, records)
					if got := SearchAll(t, l.Search, f); !slices.Equal(got, want) {
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
	if _, err := l.Search(context.Background(), audit.Filter{Since: T0, After: &bad}); !errors.Is(err, audit.ErrOutOfRange) {
		t.Errorf("time-bounded search after a record that does not exist: %v, want audit.ErrOutOfRange", err)
	}
}

func testSearchDefaultLimit(t *testing.T, h Harness) {
	l, _ := newLog(t, h)
	AppendN(t, l, 0, audit.DefaultLimit+1)
	p, err := l.Search(context.Background(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != audit.DefaultLimit || p.Next == "" || p.Entries[0].Index != audit.DefaultLimit {
		t.Errorf("first page: %d entries from %d, next %q; want %d newest first and a cursor", len(p.Entries), p.Entries[0].Index, p.Next, audit.DefaultLimit)
	}
}

func testRunning(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h)
	admit := func(ns, name, digest, verdict string, sec int) audit.Record {
		return audit.Record{Time: T0.Add(time.Duration(sec) * time.Second), Action: audit.ActionAdmit, Verdict: verdict,
			Subject:  audit.Subject{Repository: "r.example/prod/web", Digest: digest},
			Target:   audit.Target{Namespace: ns, Kind: "Deployment", Name: name},
			Evidence: audit.Evidence{SBOMDigest: "sha256:sbom-" + digest}}
	}
	warn := func(r audit.Record) audit.Record { r.Enforcement = audit.EnforcementWarn; return r }
	rs := []audit.Record{
		admit("prod", "web", "sha256:a", audit.VerdictAllow, 1), // 0: superseded by 2
		admit("prod", "web", "sha256:b", audit.VerdictAllow, 2), // 1
		admit("prod", "web", "sha256:a", audit.VerdictAllow, 3), // 2
		admit("prod", "api", "sha256:c", audit.VerdictDeny, 4),  // 3: denied, not running
		admit("dev", "web", "sha256:a", audit.VerdictAllow, 5),  // 4
		{Time: T0, Action: audit.ActionPromote, Verdict: audit.VerdictAllow, Subject: audit.Subject{Digest: "sha256:a"}, Target: audit.Target{Repository: "prod/web"}},
		{Time: T0, Action: audit.ActionBreakGlass, Verdict: audit.VerdictAllow, BreakGlassJustification: "INC-42",
			Subject: audit.Subject{Digest: "sha256:d"}, Target: audit.Target{Namespace: "prod", Kind: "Pod", Name: "debug"}}, // 6
		warn(admit("prod", "batch", "sha256:e", audit.VerdictDeny, 6)),  // 7: denied but admitted in warn mode: running
		warn(admit("prod", "batch", "sha256:f", audit.VerdictError, 7)), // 8: the same for a check that failed
		admit("prod", "batch", "sha256:g", audit.VerdictDeny, 8),        // 9: denied and enforced
	}
	if _, err := l.AppendAll(ctx, rs); err != nil {
		t.Fatal(err)
	}
	idx := func(es []audit.Entry) []uint64 {
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
		if e.Index == 7 && (e.Record.Verdict != audit.VerdictDeny || e.Record.Enforcement != audit.EnforcementWarn) {
			t.Errorf("running entry admitted in warn mode: verdict %q, enforcement %q; want deny, warn", e.Record.Verdict, e.Record.Enforcement)
		}
	}
}

func testExportJSONLines(t *testing.T, h Harness) {
	ctx := context.Background()
	l, _ := newLog(t, h)
	AppendN(t, l, 0, audit.MaxLimit+5) // more than one page
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	for i := 0; ; i++ {
		var e audit.Entry
		if err := dec.Decode(&e); err != nil {
			if i != audit.MaxLimit+5 {
				t.Fatalf("export has %d lines (%v), want %d", i, err, audit.MaxLimit+5)
			}
			break
		}
		if e.Index != uint64(i) || !bytes.Equal(audit.LeafHash(e.Leaf), e.LeafHash) {
			t.Fatalf("line %d: index %d, leaf hash ok %v", i, e.Index, bytes.Equal(audit.LeafHash(e.Leaf), e.LeafHash))
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
func testSearchLastPageHasNoCursor(t *testing.T, h Harness) {
	const limit = 5
	digest := fmt.Sprintf("sha256:%064x", 7)
	for _, n := range []int{limit, limit + 1, 2 * limit} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l, _ := newLog(t, h)
			rs := make([]audit.Record, n)
			for i := range rs {
				rs[i] = Record(i)
				rs[i].Subject.Digest = digest
			}
			if _, err := l.AppendAll(context.Background(), rs); err != nil {
				t.Fatal(err)
			}
			for _, f := range []audit.Filter{
				{},
				{Ascending: true},
				{Digest: digest},
				{Digest: digest, Ascending: true},
				{Since: T0},
				{Until: T0.Add(time.Hour), Ascending: true},
			} {
				f.Limit = limit
				for name, search := range map[string]func(context.Context, audit.Filter) (audit.Page, error){"log": l.Search} {
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
						if g.After, err = audit.ParseCursor(p.Next); err != nil {
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

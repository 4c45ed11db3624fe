package audit

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

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

package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
)

// defaultProbeRows is how many of the newest rows (below the cursor) a
// search scans in index order before it turns to the column indexes; see
// Search.
const defaultProbeRows = 4096

// Search implements Searcher, in two steps: find the page's indexes, then
// read its rows.
//
// A search bounded in time (Since or Until) lists in (time, idx) order and
// is a range scan of an index that ends with (time_ns, idx), whatever the
// number of matches: see searchByTime. Other searches list in idx order.
//
// Each filter column has its own index, which SQLite extends with the rowid
// (idx): one equality filter plus ORDER BY idx is an index range scan. So a
// newest-first search without a selective equality filter (digest, policy
// revision, namespace) first scans the probeRows newest rows in index order,
// which answers the usual "recent decisions" queries at once, and uses the
// indexes for the rest (a scan of the matching index entries and a top-N
// sort, whose cost grows with the number of matches).
func (s *sqlStore) Search(ctx context.Context, f Filter) ([]StoredLeaf, error) {
	if f.timeBounded() {
		return s.searchByTime(ctx, f)
	}
	limit := f.storeLimit()
	var ids []any
	var upper *int64 // exclusive upper bound on idx for the index search
	if f.After != nil {
		u := int64(*f.After)
		upper = &u
	}
	selective := f.Digest != "" || f.PolicyRevision != "" || f.Namespace != ""
	if !f.Ascending && !selective {
		top := int64(0)
		if upper != nil {
			top = *upper
		} else {
			size, err := s.Size(ctx)
			if err != nil {
				return nil, err
			}
			top = int64(size)
		}
		low := max(0, top-int64(s.probeRows))
		// No column index: SQLite stays on the primary key.
		where, args := f.conditions(s.hint(noIndex))
		where = append(where, "idx >= ?", "idx < ?")
		args = append(args, low, top)
		found, err := s.searchIDs(ctx, where, args, "idx DESC", limit)
		if err != nil {
			return nil, err
		}
		ids = found
		if len(ids) == limit || low == 0 {
			return s.rows(ctx, ids, "idx DESC")
		}
		upper = &low
	}
	where, args := f.conditions(s.hint(f.columnIndexes))
	order := "idx DESC"
	if f.Ascending {
		order = "idx ASC"
		if upper != nil {
			where = append(where, "idx > ?")
			args = append(args, *upper)
		}
	} else if upper != nil {
		where = append(where, "idx < ?")
		args = append(args, *upper)
	}
	more, err := s.searchIDs(ctx, where, args, order, limit-len(ids))
	if err != nil {
		return nil, err
	}
	return s.rows(ctx, append(ids, more...), order)
}

// searchByTime lists a time-bounded search newest (or oldest) first by
// record time, ties by idx. records_time is (time_ns, idx) (SQLite appends
// the rowid), so without another index the page is a range scan of it that
// stops at the limit: the other filters are checked on the rows it visits.
// The selective columns have (column, time_ns) indexes (migration 2) for
// the same scan restricted to their value. A cursor is the index of the
// last record listed: its time is read back to continue after it, and
// narrows the time range so that a deep page starts where the last ended.
func (s *sqlStore) searchByTime(ctx context.Context, f Filter) ([]StoredLeaf, error) {
	var cursorTime *int64
	if f.After != nil {
		var t int64
		err := s.db.QueryRow(ctx, `SELECT time_ns FROM records WHERE idx = ?`, int64(*f.After)).Scan(&t)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("cursor %d: no such record: %w", *f.After, ErrOutOfRange)
		}
		if err != nil {
			return nil, fmt.Errorf("search records: read the cursor's time: %w", err)
		}
		cursorTime = &t
	}
	where, args, order, ok := f.timeQuery(cursorTime, s.hint)
	if !ok {
		return nil, nil
	}
	ids, err := s.searchIDs(ctx, where, args, order, f.storeLimit())
	if err != nil {
		return nil, err
	}
	return s.rows(ctx, ids, order)
}

// timeQuery returns the WHERE terms and the ORDER BY clause of a
// time-bounded search; cursorTime is the time of the cursor's record (nil
// without a cursor). ok is false when nothing can match.
func (f Filter) timeQuery(cursorTime *int64, hint func(func(string) bool) func(string) bool) (where []string, args []any, order string, ok bool) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64) // inclusive
	if !f.Since.IsZero() {
		lo = unixNano(f.Since)
	}
	if !f.Until.IsZero() {
		u := unixNano(f.Until)
		if u == math.MinInt64 {
			return nil, nil, "", false // before any representable time
		}
		hi = u - 1
	}
	where, args = f.conditions(hint(timeIndexes))
	dir, after := "DESC", "<"
	if f.Ascending {
		dir, after = "ASC", ">"
	}
	if cursorTime != nil {
		t := *cursorTime
		if f.Ascending {
			lo = max(lo, t)
		} else {
			hi = min(hi, t)
		}
		// Of the records at the cursor's time, skip those already listed.
		where = append(where, "(time_ns "+after+" ? OR idx "+after+" ?)")
		args = append(args, t, int64(*f.After))
	}
	where = append(where, "time_ns >= ?", "time_ns <= ?")
	args = append(args, lo, hi)
	return where, args, "time_ns " + dir + ", idx " + dir, true
}

// unixNano is t.UnixNano, clamped for times outside the years 1678 to 2262.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func (f Filter) timeBounded() bool { return !f.Since.IsZero() || !f.Until.IsZero() }

// Filter columns, as conditions names them to ask whether their index may
// be used.
const (
	colDigest         = "digest"
	colRepository     = "repository" // and target_repository
	colActor          = "actor"      // identity, kubernetes_user, service_account
	colPolicyRevision = "policy_revision"
	colNamespace      = "namespace"
	colActionVerdict  = "action, verdict"
)

// hint returns indexed for SQLite, whose planner these choices steer. On
// PostgreSQL, whose planner weighs the indexes' statistics itself (and
// which has no unary "+" on text), every index may be used.
func (s *sqlStore) hint(indexed func(string) bool) func(string) bool {
	if s.db.Dialect == sqldb.Postgres {
		return func(string) bool { return true }
	}
	return indexed
}

// noIndex keeps SQLite on the primary key.
func noIndex(string) bool { return false }

// columnIndexes allows every column's index, except that action and
// verdict, which have few values, are used only when they are the only
// equality filters.
func (f Filter) columnIndexes(col string) bool {
	if col == colActionVerdict {
		return f.Digest == "" && f.Repository == "" && f.Actor == "" && f.PolicyRevision == "" && f.Namespace == ""
	}
	return true
}

// timeIndexes allows the indexes that list in (time_ns, idx) order: the
// (column, time_ns) ones of the selective columns (and records_time, which
// conditions does not concern).
func timeIndexes(col string) bool {
	switch col {
	case colDigest, colPolicyRevision, colNamespace:
		return true
	}
	return false
}

// conditions returns f's equality filters as SQL (searchByTime adds the
// time range). A column whose index must not be used (indexed returns
// false) gets a unary "+", which keeps SQLite from using it.
func (f Filter) conditions(indexed func(col string) bool) ([]string, []any) {
	var where []string
	var args []any
	add := func(col, cond string, a ...any) {
		prefix := "+"
		if indexed(col) {
			prefix = ""
		}
		where = append(where, strings.ReplaceAll(cond, "@", prefix))
		args = append(args, a...)
	}
	if f.Digest != "" {
		add(colDigest, "@digest = ?", f.Digest)
	}
	if f.Repository != "" {
		add(colRepository, "(@repository = ? OR @target_repository = ?)", f.Repository, f.Repository)
	}
	if f.Actor != "" {
		add(colActor, "(@identity = ? OR @kubernetes_user = ? OR @service_account = ?)", f.Actor, f.Actor, f.Actor)
	}
	if f.PolicyRevision != "" {
		add(colPolicyRevision, "@policy_revision = ?", f.PolicyRevision)
	}
	if f.Namespace != "" {
		add(colNamespace, "@namespace = ?", f.Namespace)
	}
	if f.Action != "" {
		add(colActionVerdict, "@action = ?", f.Action)
	}
	if f.Verdict != "" {
		add(colActionVerdict, "@verdict = ?", f.Verdict)
	}
	return where, args
}

// searchIDs returns up to limit indexes matching where, in order (an
// ORDER BY clause).
func (s *sqlStore) searchIDs(ctx context.Context, where []string, args []any, order string, limit int) ([]any, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, selectIDs(where, order), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("search records: %w", err)
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var idx int64
		if err := rows.Scan(&idx); err != nil {
			return nil, fmt.Errorf("search records: %w", err)
		}
		ids = append(ids, idx)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search records: %w", err)
	}
	return ids, nil
}

// selectIDs is the query of searchIDs; its last parameter is the limit.
func selectIDs(where []string, order string) string {
	q := `SELECT idx FROM records`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return q + ` ORDER BY ` + order + ` LIMIT ?`
}

// rows reads the records of ids, in order (the ORDER BY clause that found
// them).
func (s *sqlStore) rows(ctx context.Context, ids []any, order string) ([]StoredLeaf, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	q := `SELECT ` + s.columns() + ` FROM records WHERE idx IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `) ORDER BY ` + order
	rows, err := s.db.Query(ctx, q, ids...)
	if err != nil {
		return nil, fmt.Errorf("search records: %w", err)
	}
	return collect(rows)
}

// limit is the page size of f (Log.Search asks the store for one record
// more, to know whether there is a next page: the store takes up to
// MaxLimit+1).
func (f Filter) limit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// storeLimit is the most leaves a store returns for f.
func (f Filter) storeLimit() int {
	if f.Limit <= 0 {
		return DefaultLimit
	}
	return min(f.Limit, MaxLimit+1)
}

// Running implements Searcher through the partial index records_running;
// the WHERE terms must stay identical to the index's (migration 3) for
// SQLite to use it. An admission in warn mode ran whatever its verdict.
func (s *sqlStore) Running(ctx context.Context, namespace string) ([]StoredLeaf, error) {
	q, args := s.runningQuery(namespace)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query running workloads: %w", err)
	}
	return collect(rows)
}

// runningQuery is the query of Running. SQLite is told to use
// records_running (without it, the planner prefers records_action_verdict
// and sorts every allowed admission to group it), which also makes a WHERE
// clause that no longer implies the index's an error, not a slow query;
// TestRunningPlan checks the plan. PostgreSQL chooses on its statistics.
// A schema before migration 3 has the terms of migration 1.
func (s *sqlStore) runningQuery(namespace string) (string, []any) {
	from := `records`
	if s.db.Dialect == sqldb.SQLite {
		from = `records INDEXED BY records_running`
	}
	allowed := `(verdict = 'allow' OR enforcement = 'warn')`
	if s.before3 {
		allowed = `verdict = 'allow'`
	}
	inner := `SELECT max(idx) FROM ` + from + `
		WHERE action IN ('admit', 'break-glass') AND ` + allowed + ` AND kind <> ''`
	var args []any
	if namespace != "" {
		inner += ` AND namespace = ?`
		args = append(args, namespace)
	}
	inner += ` GROUP BY namespace, kind, name, digest`
	return `SELECT ` + s.columns() + ` FROM records WHERE idx IN (` + inner + `) ORDER BY namespace, kind, name, idx DESC`, args
}

func collect(rows *sql.Rows) ([]StoredLeaf, error) {
	defer rows.Close()
	var out []StoredLeaf
	for rows.Next() {
		l, err := scanLeaf(rows)
		if err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return out, nil
}

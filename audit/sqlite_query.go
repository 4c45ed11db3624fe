package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// defaultProbeRows is how many of the newest rows (below the cursor) a
// search scans in index order before it turns to the column indexes; see
// Search.
const defaultProbeRows = 4096

// Search implements Searcher, in two steps: find the page's indexes, then
// read its rows.
//
// Each filter column has its own index, which SQLite extends with the rowid
// (idx): one equality filter plus ORDER BY idx is an index range scan, and a
// time range a covering index scan plus a top-N sort of integers, whose cost
// grows with the number of matches. So a newest-first search without a
// selective equality filter (digest, policy revision, namespace) first
// scans the probeRows newest rows in index order, which answers the usual
// "recent decisions" queries at once, and uses the indexes for the rest.
func (s *sqliteStore) Search(ctx context.Context, f Filter) ([]StoredLeaf, error) {
	limit := f.limit()
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
		// The unary + keeps SQLite on the primary key.
		where, args := f.conditions("+")
		where = append(where, "idx >= ?", "idx < ?")
		args = append(args, low, top)
		found, err := s.searchIDs(ctx, where, args, "DESC", limit)
		if err != nil {
			return nil, err
		}
		ids = found
		if len(ids) == limit || low == 0 {
			return s.rows(ctx, ids, "DESC")
		}
		upper = &low
	}
	where, args := f.conditions("")
	order := "DESC"
	if f.Ascending {
		order = "ASC"
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

// conditions returns f's filters as SQL; prefix "+" disables index use.
func (f Filter) conditions(prefix string) ([]string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, strings.ReplaceAll(cond, "@", prefix))
		args = append(args, a...)
	}
	// action and verdict have few values: their index is used only when
	// they are the only filters.
	lowCard := prefix
	if f.Digest != "" || f.Repository != "" || f.Actor != "" || f.PolicyRevision != "" || f.Namespace != "" {
		lowCard = "+"
	}
	if f.Digest != "" {
		add("@digest = ?", f.Digest)
	}
	if f.Repository != "" {
		add("(@repository = ? OR @target_repository = ?)", f.Repository, f.Repository)
	}
	if f.Actor != "" {
		add("(@identity = ? OR @kubernetes_user = ? OR @service_account = ?)", f.Actor, f.Actor, f.Actor)
	}
	if f.PolicyRevision != "" {
		add("@policy_revision = ?", f.PolicyRevision)
	}
	if f.Namespace != "" {
		add("@namespace = ?", f.Namespace)
	}
	if f.Action != "" {
		add(lowCard+"action = ?", f.Action)
	}
	if f.Verdict != "" {
		add(lowCard+"verdict = ?", f.Verdict)
	}
	if !f.Since.IsZero() {
		add("@time_ns >= ?", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add("@time_ns < ?", f.Until.UnixNano())
	}
	return where, args
}

// searchIDs returns up to limit indexes matching where, in order.
func (s *sqliteStore) searchIDs(ctx context.Context, where []string, args []any, order string, limit int) ([]any, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := `SELECT idx FROM records`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY idx ` + order + ` LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, limit)...)
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

// rows reads the records of ids.
func (s *sqliteStore) rows(ctx context.Context, ids []any, order string) ([]StoredLeaf, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	q := `SELECT ` + leafColumns + ` FROM records WHERE idx IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `) ORDER BY idx ` + order
	rows, err := s.r.QueryContext(ctx, q, ids...)
	if err != nil {
		return nil, fmt.Errorf("search records: %w", err)
	}
	return collect(rows)
}

func (f Filter) limit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// Running implements Searcher through the partial index records_running;
// the WHERE terms must stay identical to the index's for SQLite to use it.
func (s *sqliteStore) Running(ctx context.Context, namespace string) ([]StoredLeaf, error) {
	inner := `SELECT max(idx) FROM records
		WHERE action IN ('admit', 'break-glass') AND verdict = 'allow' AND kind <> ''`
	var args []any
	if namespace != "" {
		inner += ` AND namespace = ?`
		args = append(args, namespace)
	}
	inner += ` GROUP BY namespace, kind, name, digest`
	q := `SELECT ` + leafColumns + ` FROM records WHERE idx IN (` + inner + `) ORDER BY namespace, kind, name, idx DESC`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query running workloads: %w", err)
	}
	return collect(rows)
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

package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/portcullis-dev/portcullis/internal/sqldb"
)

// sqlStore is the Store on SQL: one SQLite file, opened as
// registry/metadata/sqlite opens its own (WAL journal, synchronous=FULL so
// an acknowledged append survives a crash or power loss, BEGIN IMMEDIATE
// transactions and a single writer connection; reads go through a separate
// pool and never block the writer), or a PostgreSQL database that several
// replicas append to (Append's compare-and-set on the tree size, in a
// SERIALIZABLE transaction, lets exactly one of two concurrent appends at
// the same size commit).
type sqlStore struct {
	db       *sqldb.DB
	readOnly bool
	// probeRows: see Search.
	probeRows int
	// before3 says the schema predates migration 3 (a log opened
	// read-only, which is not migrated): no enforcement column, and the
	// old records_running. Its records all predate warn-mode enforcement.
	before3 bool
}

var _ Store = (*sqlStore)(nil)

func openSQLiteStore(ctx context.Context, path string, readOnly bool) (*sqlStore, error) {
	if readOnly {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
		r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		s := &sqlStore{db: &sqldb.DB{R: r, Dialect: sqldb.SQLite}, readOnly: true, probeRows: defaultProbeRows}
		var n int
		if err := r.QueryRowContext(ctx, `SELECT count(*) FROM tree_head`).Scan(&n); err != nil {
			r.Close()
			return nil, fmt.Errorf("open %s read-only: not an audit log: %w", path, err)
		}
		if err := r.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('records') WHERE name = 'enforcement'`).Scan(&n); err != nil {
			r.Close()
			return nil, fmt.Errorf("open %s read-only: read the schema: %w", path, err)
		}
		s.before3 = n == 0
		return s, nil
	}
	db, err := sqldb.OpenSQLite(path, 8, "journal_mode(WAL)", "synchronous(FULL)")
	if err != nil {
		return nil, err
	}
	return openSQLStore(ctx, db)
}

// openPostgresStore opens the log in a PostgreSQL database (its tables
// beside the registry metadata's), applying migrations under a lock.
func openPostgresStore(ctx context.Context, dsn string) (*sqlStore, error) {
	db, err := sqldb.OpenPostgres(ctx, dsn, 16)
	if err != nil {
		return nil, err
	}
	return openSQLStore(ctx, db)
}

func openSQLStore(ctx context.Context, db *sqldb.DB) (*sqlStore, error) {
	s := &sqlStore{db: db, probeRows: defaultProbeRows}
	if err := db.MigrateSchema(ctx, "audit_schema_migrations", sqliteMigrations); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate the audit log (%s): %w", db.Dialect, err)
	}
	return s, nil
}

func (s *sqlStore) Close() error { return s.db.Close() }

// migrations are applied in order, each in its own transaction. Never edit
// one that has shipped: append a new one.
var sqliteMigrations = []string{
	1: `
CREATE TABLE records (
	idx               INTEGER PRIMARY KEY,
	leaf              BLOB NOT NULL,
	leaf_hash         BLOB NOT NULL,
	time_ns           INTEGER NOT NULL,
	action            TEXT NOT NULL,
	verdict           TEXT NOT NULL,
	repository        TEXT NOT NULL,
	digest            TEXT NOT NULL,
	tag               TEXT NOT NULL,
	target_repository TEXT NOT NULL,
	namespace         TEXT NOT NULL,
	kind              TEXT NOT NULL,
	name              TEXT NOT NULL,
	identity          TEXT NOT NULL,
	kubernetes_user   TEXT NOT NULL,
	service_account   TEXT NOT NULL,
	policy_revision   TEXT NOT NULL
);
-- Each index implicitly ends with idx (the rowid): "digest = ? ORDER BY idx"
-- is a range scan.
CREATE INDEX records_digest ON records(digest);
CREATE INDEX records_repository ON records(repository);
CREATE INDEX records_target_repository ON records(target_repository);
CREATE INDEX records_namespace ON records(namespace);
CREATE INDEX records_identity ON records(identity);
CREATE INDEX records_kubernetes_user ON records(kubernetes_user);
CREATE INDEX records_service_account ON records(service_account);
CREATE INDEX records_policy_revision ON records(policy_revision);
CREATE INDEX records_time ON records(time_ns);
CREATE INDEX records_action_verdict ON records(action, verdict);
CREATE INDEX records_running ON records(namespace, kind, name, digest)
	WHERE action IN ('admit', 'break-glass') AND verdict = 'allow' AND kind <> '';
-- Perfect subtrees of level >= 1 (level 0 is records.leaf_hash).
CREATE TABLE tree_nodes (
	level INTEGER NOT NULL,
	idx   INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE tree_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL
);
INSERT INTO tree_head(id, size) VALUES (1, 0);
CREATE TABLE checkpoints (
	size       INTEGER PRIMARY KEY,
	note       BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
`,
	// A search bounded in time lists in (time, idx) order (searchByTime):
	// records_time serves it alone; with an equality filter on a selective
	// column, these make it a range scan of that value's records too.
	2: `
CREATE INDEX records_digest_time ON records(digest, time_ns);
CREATE INDEX records_policy_revision_time ON records(policy_revision, time_ns);
CREATE INDEX records_namespace_time ON records(namespace, time_ns);
`,
	// Enforcement "warn": an admission in a namespace in warn mode, which
	// ran whatever its verdict. Running lists those too; its WHERE terms
	// are this index's (rows of earlier versions get '', enforced).
	3: `
ALTER TABLE records ADD COLUMN enforcement TEXT NOT NULL DEFAULT '';
DROP INDEX records_running;
CREATE INDEX records_running ON records(namespace, kind, name, digest)
	WHERE action IN ('admit', 'break-glass') AND (verdict = 'allow' OR enforcement = 'warn') AND kind <> '';
`,
}

var errReadOnly = errors.New("audit log opened read-only")

func (s *sqlStore) Size(ctx context.Context) (uint64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT size FROM tree_head WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read tree size: %w", err)
	}
	return uint64(n), nil
}

func (s *sqlStore) Nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	err := s.db.ReadTx(ctx, func(tx *sqldb.Tx) error {
		for i, id := range ids {
			var err error
			if id.Level == 0 {
				err = tx.QueryRow(ctx, `SELECT leaf_hash FROM records WHERE idx = ?`, int64(id.Index)).Scan(&out[i])
			} else {
				err = tx.QueryRow(ctx, `SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?`, id.Level, int64(id.Index)).Scan(&out[i])
			}
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("tree node (level %d, index %d): %w", id.Level, id.Index, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("read tree node (level %d, index %d): %w", id.Level, id.Index, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *sqlStore) Append(ctx context.Context, size uint64, leaves []StoredLeaf, nodes []Node) error {
	if s.readOnly {
		return errReadOnly
	}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE tree_head SET size = ? WHERE id = 1 AND size = ?`, int64(size)+int64(len(leaves)), int64(size))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return ErrConflict
		}
		ins, err := tx.Prepare(ctx, `INSERT INTO records(idx, leaf, leaf_hash, time_ns, action, verdict, repository, digest, tag,
			target_repository, namespace, kind, name, identity, kubernetes_user, service_account, policy_revision, enforcement)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, l := range leaves {
			c := l.Columns
			if _, err := ins.ExecContext(ctx, int64(l.Index), l.Leaf, l.LeafHash, c.TimeNs, c.Action, c.Verdict, c.Repository, c.Digest, c.Tag,
				c.TargetRepo, c.Namespace, c.Kind, c.Name, c.Identity, c.KubernetesUser, c.ServiceAccount, c.PolicyRevision, c.Enforcement); err != nil {
				return fmt.Errorf("insert record %d: %w", l.Index, err)
			}
		}
		insNode, err := tx.Prepare(ctx, `INSERT INTO tree_nodes(level, idx, hash) VALUES (?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insNode.Close()
		for _, n := range nodes {
			if _, err := insNode.ExecContext(ctx, n.ID.Level, int64(n.ID.Index), n.Hash); err != nil {
				return fmt.Errorf("insert tree node (%d, %d): %w", n.ID.Level, n.ID.Index, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d records at %d: %w", len(leaves), size, err)
	}
	return nil
}

const leafColumns = `idx, leaf, leaf_hash, time_ns, action, verdict, repository, digest, tag,
	target_repository, namespace, kind, name, identity, kubernetes_user, service_account, policy_revision, enforcement`

// columns is the select list of a StoredLeaf (scanLeaf) in s's schema.
func (s *sqlStore) columns() string {
	if s.before3 {
		return strings.Replace(leafColumns, "enforcement", "'' AS enforcement", 1)
	}
	return leafColumns
}

func scanLeaf(rows *sql.Rows) (StoredLeaf, error) {
	var l StoredLeaf
	var idx int64
	c := &l.Columns
	err := rows.Scan(&idx, &l.Leaf, &l.LeafHash, &c.TimeNs, &c.Action, &c.Verdict, &c.Repository, &c.Digest, &c.Tag,
		&c.TargetRepo, &c.Namespace, &c.Kind, &c.Name, &c.Identity, &c.KubernetesUser, &c.ServiceAccount, &c.PolicyRevision, &c.Enforcement)
	l.Index = uint64(idx)
	return l, err
}

func (s *sqlStore) Scan(ctx context.Context, from uint64, fn func(StoredLeaf) error) error {
	// Page by index so that a long scan does not hold one read transaction
	// (and the WAL) open for its whole duration.
	const page = 5000
	next := int64(from)
	for {
		rows, err := s.db.Query(ctx, `SELECT `+s.columns()+` FROM records WHERE idx >= ? ORDER BY idx LIMIT ?`, next, page)
		if err != nil {
			return fmt.Errorf("scan records from %d: %w", next, err)
		}
		n := 0
		for rows.Next() {
			l, err := scanLeaf(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("scan records from %d: %w", next, err)
			}
			n++
			next = int64(l.Index) + 1
			if err := fn(l); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("scan records from %d: %w", next, err)
		}
		if n < page {
			return nil
		}
	}
}

func (s *sqlStore) AddCheckpoint(ctx context.Context, size uint64, signed []byte) error {
	if s.readOnly {
		return errReadOnly
	}
	_, err := s.db.Exec(ctx, `INSERT INTO checkpoints(size, note, created_at) VALUES (?, ?, ?) ON CONFLICT(size) DO NOTHING`,
		int64(size), signed, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store checkpoint %d: %w", size, err)
	}
	return nil
}

func (s *sqlStore) Checkpoint(ctx context.Context, size uint64) (StoredCheckpoint, error) {
	q, args := `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`, []any{}
	if size != 0 {
		q, args = `SELECT size, note FROM checkpoints WHERE size = ?`, []any{int64(size)}
	}
	var c StoredCheckpoint
	var n int64
	switch err := s.db.QueryRow(ctx, q, args...).Scan(&n, &c.Signed); {
	case errors.Is(err, sql.ErrNoRows):
		return StoredCheckpoint{}, ErrNotFound
	case err != nil:
		return StoredCheckpoint{}, fmt.Errorf("read checkpoint: %w", err)
	}
	c.Size = uint64(n)
	return c, nil
}

func (s *sqlStore) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	rows, err := s.db.Query(ctx, `SELECT size, note FROM checkpoints ORDER BY size`)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []StoredCheckpoint
	for rows.Next() {
		var c StoredCheckpoint
		var size int64
		if err := rows.Scan(&size, &c.Signed); err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		c.Size = uint64(size)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

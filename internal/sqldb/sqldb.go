// Package sqldb holds what every SQL store of Portcullis (the registry
// metadata, the audit log, the robot accounts) does the same way on SQLite
// and on PostgreSQL: opening, versioned migrations applied under a lock,
// and transactions. Stores write their SQL once, with SQLite's "?" and
// "?N" placeholders; a DB rewrites them to PostgreSQL's "$N" when it talks
// to PostgreSQL. It belongs to no one component, hence internal/.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/portcullis-dev/portcullis/internal/panics"
)

// Dialect is the SQL database a DB talks to.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is one database as a store uses it: W takes the writes, R the reads.
// On SQLite they are two pools on one file (a single writer connection, so
// that writers queue in database/sql instead of retrying SQLITE_BUSY, and
// readers that never block it); on PostgreSQL they are the same pool.
type DB struct {
	W, R    *sql.DB
	Dialect Dialect

	rebound sync.Map // query -> PostgreSQL query
}

// OpenSQLite opens the SQLite file at path: a single writer connection
// (with _txlock=immediate, a transaction takes the write lock at BEGIN) and
// a pool of readers readers. Every connection gets the pragmas, e.g.
// "journal_mode(WAL)", "synchronous(FULL)".
func OpenSQLite(path string, readers int, pragmas ...string) (*DB, error) {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	return &DB{W: w, R: r, Dialect: SQLite}, nil
}

// OpenPostgres connects to PostgreSQL (dsn is a libpq URL or key=value
// string) and checks that it answers.
func OpenPostgres(ctx context.Context, dsn string, maxConns int) (*DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return &DB{W: db, R: db, Dialect: Postgres}, nil
}

// Close closes the pools.
func (db *DB) Close() error {
	if db.W == nil || db.W == db.R {
		return db.R.Close()
	}
	return errors.Join(db.R.Close(), db.W.Close())
}

// Ping checks that the database answers (for readiness probes).
func (db *DB) Ping(ctx context.Context) error { return db.R.PingContext(ctx) }

// Rebind rewrites a query written with "?" and "?N" placeholders for the
// database: PostgreSQL's "$N". Queries hold no "?" inside string literals.
func (db *DB) Rebind(q string) string {
	if db.Dialect != Postgres {
		return q
	}
	if v, ok := db.rebound.Load(q); ok {
		return v.(string)
	}
	r := rebind(q)
	db.rebound.Store(q, r)
	return r
}

func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		b.WriteByte('$')
		if j > i+1 {
			b.WriteString(q[i+1 : j])
		} else {
			n++
			b.WriteString(strconv.Itoa(n))
		}
		i = j - 1
	}
	return b.String()
}

// Exec runs a write outside a transaction.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.W.ExecContext(ctx, db.Rebind(q), args...)
}

// QueryRow runs a read.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return db.R.QueryRowContext(ctx, db.Rebind(q), args...)
}

// Query runs a read.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.R.QueryContext(ctx, db.Rebind(q), args...)
}

// ReadTx runs f in a read-only transaction on the readers (one snapshot).
func (db *DB) ReadTx(ctx context.Context, f func(*Tx) error) error {
	tx, err := db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return f(&Tx{tx: tx, db: db})
}

// Tx is a transaction that rebinds its queries as its DB does.
type Tx struct {
	tx *sql.Tx
	db *DB
}

func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.Rebind(q), args...)
}

func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.Rebind(q), args...)
}

func (t *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.Rebind(q), args...)
}

func (t *Tx) Prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, t.db.Rebind(q))
}

// maxAttempts bounds the retries of a PostgreSQL transaction that lost a
// serialization conflict to a concurrent one.
const maxAttempts = 12

// InTx runs f in a transaction on the writer, committing if f returns nil
// and rolling back otherwise.
//
// On PostgreSQL the transaction is SERIALIZABLE: several replicas write
// concurrently, and a store's check-then-write (is the tag immutable and
// taken? is every referenced blob linked?) must behave as if transactions
// ran one at a time, as they do on SQLite. A transaction that loses a
// serialization conflict or a deadlock is run again (f must only touch the
// database), up to maxAttempts times.
func (db *DB) InTx(ctx context.Context, f func(*Tx) error) error {
	if db.Dialect != Postgres {
		return db.inTx(ctx, nil, f)
	}
	opts := &sql.TxOptions{Isolation: sql.LevelSerializable}
	var err error
	for attempt := range maxAttempts {
		if err = db.inTx(ctx, opts, f); err == nil || !Retryable(err) {
			return err
		}
		// Back off a little, randomly, so the losers do not collide again.
		d := time.Duration(1+rand.IntN(4<<min(attempt, 5))) * time.Millisecond
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(d):
		}
	}
	return fmt.Errorf("after %d attempts: %w", maxAttempts, err)
}

func (db *DB) inTx(ctx context.Context, opts *sql.TxOptions, f func(*Tx) error) error {
	tx, err := db.W.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	// A panic in f rolls back at once, instead of holding the write lock
	// until the context ends, and is f's error (I3).
	if err := panics.Do(ctx, nil, "sqldb.Write", func() error { return f(&Tx{tx: tx, db: db}) }); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// Retryable reports whether err is a PostgreSQL serialization failure or
// deadlock, which running the transaction again resolves.
func Retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// UniqueViolation reports whether err is a unique constraint's refusal, on
// either database.
func UniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// MigrateSchema applies a store's migrations, written once in SQLite's
// dialect and translated by PostgresMigrations on PostgreSQL (Migrate).
func (db *DB) MigrateSchema(ctx context.Context, table string, sqlite []string) error {
	if db.Dialect == Postgres {
		sqlite = PostgresMigrations(sqlite)
	}
	return db.Migrate(ctx, table, sqlite)
}

// Migrate applies migrations[1:] in order, each in its own transaction,
// recording them in table (created if needed). Index 0 is unused so that a
// migration's index is its version. A shipped migration must never be
// edited: append a new one.
//
// Several processes may start at once (replicas): on PostgreSQL the whole
// run holds an advisory lock named after table, so one applies the
// migrations and the others then find them applied; on SQLite each
// version's transaction holds the write lock from BEGIN and checks the
// version inside it.
func (db *DB) Migrate(ctx context.Context, table string, migrations []string) error {
	var unlock func()
	if db.Dialect == Postgres {
		conn, err := db.W.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		key := lockKey("migrate " + table)
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		unlock = func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
		}
		defer unlock()
	}
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	for v := 1; v < len(migrations); v++ {
		err := db.inTx(ctx, nil, func(tx *Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE version = ?`, v).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+table+`(version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// PostgresMigrations translates migrations written for SQLite into
// PostgreSQL's types, so that a store's schema is written once: INTEGER
// becomes BIGINT, BLOB BYTEA, and TEXT compares as bytes (COLLATE "C", the
// order OCI listings and prefix ranges rely on). Migrations use no other
// SQLite-only syntax than WITHOUT ROWID, which is dropped.
func PostgresMigrations(sqlite []string) []string {
	r := strings.NewReplacer(" INTEGER", " BIGINT", " BLOB", " BYTEA", " TEXT", ` TEXT COLLATE "C"`, ") WITHOUT ROWID;", ");")
	out := make([]string, len(sqlite))
	for i, m := range sqlite {
		out[i] = r.Replace(m)
	}
	return out
}

// lockKey names a PostgreSQL advisory lock.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("portcullis " + name))
	return int64(h.Sum64())
}

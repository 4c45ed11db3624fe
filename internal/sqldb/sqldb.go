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
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
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

	retryOnce sync.Once
	retry     chan struct{} // see retryQueue
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

// retryBudget bounds how long a transaction that keeps losing serialization
// conflicts is run again when its context has no deadline of its own.
const retryBudget = time.Minute

// retryLock names the session advisory lock that the transactions run
// again after a lost conflict hold, one at a time across the deployment.
var retryLock = lockKey("serial retry")

// InTx runs f in a transaction on the writer, committing if f returns nil
// and rolling back otherwise.
//
// On PostgreSQL the transaction is SERIALIZABLE: several replicas write
// concurrently, and a store's check-then-write (is the tag immutable and
// taken? is every referenced blob linked?) must behave as if transactions
// ran one at a time, as they do on SQLite. A transaction that loses a
// serialization conflict or a deadlock is run again (f must only touch the
// database), and it must eventually get through however many writers
// contend: retrying a fixed number of times with a random backoff lets one
// writer lose to the others every time under contention (32 pushes of one
// tag did). So every run after the first holds a session advisory lock
// (retryLock): the runs again of all the replicas go one at a time, and
// each competes only with first attempts, never with the other losers.
// Each first attempt either commits or joins the queue, so once the first
// attempts of the moment are through, the holder runs alone and commits
// (only an endless stream of new writers to the same rows could keep it
// losing, and the bound below ends that); while it holds the lock it runs
// again at once, keeping its place.
//
// The lock is taken on a dedicated connection BEFORE BEGIN, and the
// transaction runs on that connection: PostgreSQL takes a SERIALIZABLE
// transaction's snapshot at its first statement, so a lock taken inside
// the transaction (pg_advisory_xact_lock) would take the snapshot before
// waiting and lose again to whatever committed meanwhile. Within a process
// the losers queue for the connection in Go first, so that they do not
// hold pool connections while they wait. The lock is released after
// commit or rollback even if ctx has ended; a connection whose release
// fails is discarded, never put back in the pool still holding it.
//
// Running again is bounded by ctx, or by retryBudget if ctx has no
// deadline: then InTx returns an error saying so, wrapping the last
// conflict.
func (db *DB) InTx(ctx context.Context, f func(*Tx) error) error {
	if db.Dialect != Postgres {
		return db.inTx(ctx, db.W, nil, f)
	}
	err := db.inTx(ctx, db.W, serializable, f)
	if err == nil || !Retryable(err) {
		return err
	}
	return db.retryInTx(ctx, err, f)
}

var serializable = &sql.TxOptions{Isolation: sql.LevelSerializable}

// retryInTx runs f again, under retryLock, until it commits, fails for
// another reason than a conflict, or the retry's time is up; lost is the
// first attempt's conflict.
func (db *DB) retryInTx(ctx context.Context, lost error, f func(*Tx) error) error {
	rctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, retryBudget)
		defer cancel()
	}
	// gaveUp wraps the last conflict lost and what ended the retries.
	gaveUp := func(attempts int, err error) error {
		return fmt.Errorf("sqldb: transaction given up after %d attempts that lost serialization conflicts: %w",
			attempts, errors.Join(lost, err, rctx.Err()))
	}
	queue := db.retryQueue()
	select {
	case queue <- struct{}{}:
		defer func() { <-queue }()
	case <-rctx.Done():
		return gaveUp(1, nil)
	}
	conn, err := db.W.Conn(rctx)
	if err != nil {
		return gaveUp(1, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(rctx, `SELECT pg_advisory_lock($1)`, retryLock); err != nil {
		// The lock may have been granted as the wait was cancelled.
		discard(conn)
		return gaveUp(1, fmt.Errorf("take the retry lock: %w", err))
	}
	defer unlock(ctx, conn, retryLock)
	for attempts := 2; ; attempts++ {
		err := db.inTx(ctx, conn, serializable, f)
		switch {
		case err == nil:
			return nil
		case rctx.Err() != nil:
			if Retryable(err) {
				lost = err
				err = nil
			}
			return gaveUp(attempts, err)
		case !Retryable(err):
			return err
		}
		lost = err
	}
}

// retryQueue is the queue of this process's transactions waiting to run
// again under retryLock: a channel of capacity one.
func (db *DB) retryQueue() chan struct{} {
	db.retryOnce.Do(func() { db.retry = make(chan struct{}, 1) })
	return db.retry
}

// unlock releases the session advisory lock key that conn holds, even if
// ctx has ended. If that fails conn may still hold it: conn is discarded
// rather than put back in the pool, where the lock would live on with it.
func unlock(ctx context.Context, conn *sql.Conn, key int64) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var released bool
	if err := conn.QueryRowContext(uctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil || !released {
		discard(conn)
	}
}

// discard closes conn's connection to the database instead of returning it
// to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}

// beginner is a *sql.DB or a *sql.Conn.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func (db *DB) inTx(ctx context.Context, on beginner, opts *sql.TxOptions, f func(*Tx) error) error {
	tx, err := on.BeginTx(ctx, opts)
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
	if db.Dialect == Postgres {
		conn, err := db.W.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		key := lockKey("migrate " + table)
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			discard(conn) // the lock may have been granted as the wait was cancelled
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer unlock(ctx, conn, key)
	}
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	for v := 1; v < len(migrations); v++ {
		err := db.inTx(ctx, db.W, nil, func(tx *Tx) error {
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

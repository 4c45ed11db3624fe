// Package sqlitedb holds what every SQLite store of Portcullis does the
// same way (the registry metadata, the audit log): versioned migrations
// and transactions. It belongs to no one component, hence internal/.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Migrate applies migrations[1:] in order, each in its own transaction,
// recording them in table (created if needed). Index 0 is unused so that
// a migration's index is its version. A shipped migration must never be
// edited: append a new one.
func Migrate(ctx context.Context, db *sql.DB, table string, migrations []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	for v := 1; v < len(migrations); v++ {
		err := InTx(ctx, db, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE version = ?`, v).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO `+table+`(version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// InTx runs f in a transaction, committing if it returns nil and rolling
// back otherwise.
func InTx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// Open opens the database file at path twice, as Portcullis's stores use
// SQLite: w, the single writer connection (SQLite allows one writer; a
// queue in database/sql is cheaper than SQLITE_BUSY retries, and
// _txlock=immediate takes the write lock at BEGIN), and r, a pool of
// readers (WAL readers never block the writer). Every connection gets the
// pragmas, e.g. "journal_mode(WAL)", "synchronous(FULL)".
func Open(path string, readers int, pragmas ...string) (w, r *sql.DB, err error) {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	if w, err = sql.Open("sqlite", dsn); err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if r, err = sql.Open("sqlite", dsn); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	return w, r, nil
}

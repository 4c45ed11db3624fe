// Package sqlstore implements metadata.Store in SQL, once for the two
// databases Portcullis runs on: SQLite, the embedded default (package
// registry/metadata/sqlite opens it), and PostgreSQL, which several
// replicas share (package registry/metadata/postgres). The queries are
// the same; the schemas differ only in types and collation, and
// sqldb.DB rewrites placeholders and runs PostgreSQL transactions
// SERIALIZABLE, so that a check-then-write (an immutable tag, a
// referenced blob) has exactly one winner across replicas.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// Store is a metadata.Store on a SQL database.
type Store struct {
	db *sqldb.DB
}

var _ metadata.Store = (*Store)(nil)

// Open applies the migrations of db's dialect and returns the store,
// which owns db from then on.
func Open(ctx context.Context, db *sqldb.DB) (*Store, error) {
	if err := db.MigrateSchema(ctx, "schema_migrations", SQLiteMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate metadata (%s): %w", db.Dialect, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the database (for health checks and tests).
func (s *Store) DB() *sqldb.DB { return s.db }

// limit is a LIMIT argument: n < 0 means all.
func limit(n int) int64 {
	if n < 0 {
		return math.MaxInt64
	}
	return int64(n)
}

func now() int64 { return time.Now().UnixNano() }

func ensureRepo(ctx context.Context, tx *sqldb.Tx, repo string) error {
	_, err := tx.Exec(ctx, `INSERT INTO repositories(name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING`, repo, now())
	return err
}

// exists reports whether query returns a row.
func (s *Store) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// namespaceWhere selects the repository prefix and those below it; the
// range keeps the primary key usable ('0' follows '/').
const namespaceWhere = `(repo = ?1 OR (repo >= CAST(?1 AS TEXT) || '/' AND repo < CAST(?1 AS TEXT) || '0'))`

// NamespaceUsage implements metadata.UsageCounter: the bytes of the
// distinct blobs linked into prefix or a repository below it, plus the
// bytes of their manifests.
func (s *Store) NamespaceUsage(ctx context.Context, prefix string) (int64, error) {
	var blobs, manifests int64
	err := s.db.QueryRow(ctx, `SELECT COALESCE(SUM(b.size), 0) FROM blobs b
		WHERE b.digest IN (SELECT digest FROM repo_blobs WHERE `+namespaceWhere+`)`, prefix).Scan(&blobs)
	if err == nil {
		err = s.db.QueryRow(ctx, `SELECT COALESCE(SUM(length(content)), 0) FROM manifests WHERE `+namespaceWhere, prefix).Scan(&manifests)
	}
	if err != nil {
		return 0, fmt.Errorf("usage of %s: %w", prefix, err)
	}
	return blobs + manifests, nil
}

// NamespaceHasBlob implements metadata.UsageCounter.
func (s *Store) NamespaceHasBlob(ctx context.Context, prefix string, d digest.Digest) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM repo_blobs WHERE digest = ?2 AND `+namespaceWhere+` LIMIT 1`, prefix, d.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob %s in %s: %w", d, prefix, err)
	}
	return true, nil
}

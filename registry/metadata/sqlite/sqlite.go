// Package sqlite opens the metadata store on SQLite through the pure-Go
// modernc.org/sqlite driver (no cgo). It is the embedded default: one file,
// WAL journal, synchronous=FULL so an acknowledged write survives a crash.
// The store itself is package sqlstore, shared with PostgreSQL.
package sqlite

import (
	"context"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlstore"
)

// Store is a metadata.Store on one SQLite file.
type Store = sqlstore.Store

// Open opens (creating if needed) the database at path and applies migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := sqldb.OpenSQLite(path, 16, "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(FULL)", "foreign_keys(1)")
	if err != nil {
		return nil, err
	}
	return sqlstore.Open(ctx, db)
}

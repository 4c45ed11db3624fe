// Package postgres opens the metadata store on PostgreSQL (through pgx),
// for several `portcullis serve` replicas sharing one database. The store
// itself is package sqlstore, shared with SQLite; migrations run at start-up
// under an advisory lock, so replicas may start together.
package postgres

import (
	"context"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlstore"
)

// Store is a metadata.Store on PostgreSQL.
type Store = sqlstore.Store

// Open connects to the database at dsn (a libpq URL or key=value string)
// and applies migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sqldb.OpenPostgres(ctx, dsn, 32)
	if err != nil {
		return nil, err
	}
	return sqlstore.Open(ctx, db)
}

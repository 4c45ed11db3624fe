package audit_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/audittest"
	"github.com/portcullis-dev/portcullis/internal/pgtest"
)

// TestSQLiteStore runs the stores' conformance suite on SQLite.
func TestSQLiteStore(t *testing.T) {
	t.Parallel()
	audittest.RunStore(t, audittest.Harness{
		Open: func(t *testing.T, opts ...audit.Option) *audit.Log {
			return open(t, func(ctx context.Context) (*audit.Log, error) {
				return audit.OpenSQLite(ctx, filepath.Join(t.TempDir(), "audit.db"), opts...)
			})
		},
		SetProbeRows: audit.SetProbeRows,
	})
}

// TestPostgresStore runs the stores' conformance suite on a real
// PostgreSQL server.
func TestPostgresStore(t *testing.T) {
	t.Parallel()
	pgtest.DSN(t) // skip (or fail under CI) before any subtest without PostgreSQL
	audittest.RunStore(t, audittest.Harness{
		Open: func(t *testing.T, opts ...audit.Option) *audit.Log {
			return open(t, func(ctx context.Context) (*audit.Log, error) {
				return audit.OpenPostgres(ctx, pgtest.DSN(t), opts...)
			})
		},
		SetProbeRows: audit.SetProbeRows,
	})
}

func open(t *testing.T, open func(context.Context) (*audit.Log, error)) *audit.Log {
	t.Helper()
	l, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

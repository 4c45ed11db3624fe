package sqldb_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/internal/sqldb"
)

// TestInTxPanicRollsBack: a panic inside a write transaction is its error,
// the transaction is rolled back at once (the next write does not wait for
// the write lock) and nothing it wrote is kept.
func TestInTxPanicRollsBack(t *testing.T) {
	db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "db.sqlite"), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background() // never cancelled: only the rollback frees the lock
	if _, err := db.Exec(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO t (x) VALUES (1)"); err != nil {
			return err
		}
		panic("mid-transaction")
	})
	var pe *panics.Error
	if !errors.As(err, &pe) {
		t.Fatalf("InTx = %v, want the recovered panic", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.InTx(wctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(wctx, "INSERT INTO t (x) VALUES (2)")
		return err
	}); err != nil {
		t.Fatalf("the next write: %v", err)
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM t WHERE x = 1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows of the panicked transaction: %d, %v", n, err)
	}
}

package sqldb_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
	"github.com/portcullis-dev/portcullis/internal/sqldb"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openPostgres(t *testing.T, conns int) *sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenPostgres(t.Context(), pgtest.DSN(t), conns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestPostgresInTxContention: transactions that all read and then write
// the same row conflict with one another whenever they overlap, so most of
// them lose at least once. Every one of them must still commit, each
// exactly once (the count is the number of transactions), however often
// it loses.
func TestPostgresInTxContention(t *testing.T) {
	t.Parallel()
	const writers = 64
	db := openPostgres(t, writers)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := db.Exec(ctx, `CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO counter (id, n) VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		attempts int
		read     sync.WaitGroup // the first attempts' reads
	)
	read.Add(writers)
	allRead := make(chan struct{})
	go func() { read.Wait(); close(allRead) }()
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			<-start
			first := true
			errs[i] = db.InTx(ctx, func(tx *sqldb.Tx) error {
				mu.Lock()
				attempts++
				mu.Unlock()
				var n int
				if err := tx.QueryRow(ctx, `SELECT n FROM counter WHERE id = 1`).Scan(&n); err != nil {
					return err
				}
				if first {
					// Every first attempt reads before any writes: all
					// but one of them lose.
					first = false
					read.Done()
					select {
					case <-allRead:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				// A slow transaction: it holds its snapshot a while.
				if _, err := tx.Exec(ctx, `SELECT pg_sleep(0.005)`); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE counter SET n = ? WHERE id = 1`, n+1)
				return err
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT n FROM counter WHERE id = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != writers {
		t.Errorf("count = %d, want %d", n, writers)
	}
	// The test is only worth something if the transactions conflicted.
	if attempts < 2*writers-1 {
		t.Errorf("%d attempts for %d transactions: fewer than the first attempts' conflicts", attempts, writers)
	}
	t.Logf("%d transactions, %d attempts", writers, attempts)
	wantNoAdvisoryLocks(t, db)
}

// TestPostgresInTxGivesUp: a transaction that loses every time (another
// session updates the row it read before it writes it) is run again only
// until its context ends, and then InTx says why. It does not leave the
// retry lock held: the next transaction that loses once gets through.
func TestPostgresInTxGivesUp(t *testing.T) {
	t.Parallel()
	db := openPostgres(t, 4)
	if _, err := db.Exec(t.Context(), `CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(t.Context(), `INSERT INTO counter (id, n) VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	// increment reads the counter, has another session update it while it
	// is read (outside the transaction, on another connection) while
	// interfere says so, and writes it.
	increment := func(ctx context.Context, attempts *int, interfere func() bool) func(*sqldb.Tx) error {
		return func(tx *sqldb.Tx) error {
			*attempts++
			var n int
			if err := tx.QueryRow(ctx, `SELECT n FROM counter WHERE id = 1`).Scan(&n); err != nil {
				return err
			}
			if interfere() {
				if _, err := db.Exec(ctx, `UPDATE counter SET n = n + 1000 WHERE id = 1`); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `UPDATE counter SET n = ? WHERE id = 1`, n+1)
			return err
		}
	}

	// The fifth attempt ends the context, as a caller giving up would.
	const giveUpAt = 5
	ctx, cancel := context.WithCancel(t.Context())
	attempts := 0
	err := db.InTx(ctx, increment(ctx, &attempts, func() bool {
		if attempts == giveUpAt {
			cancel()
		}
		return true
	}))
	cancel()
	if !errors.Is(err, context.Canceled) || !sqldb.Retryable(err) {
		t.Fatalf("InTx = %v, want it to give up when its context ends, with the conflict it lost", err)
	}
	if attempts != giveUpAt {
		t.Errorf("%d attempts, want %d: the lost transaction runs again until its context ends, then no more", attempts, giveUpAt)
	}
	t.Logf("%d attempts: %v", attempts, err)

	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	attempts = 0
	if err := db.InTx(ctx, increment(ctx, &attempts, func() bool { return attempts == 1 })); err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
	if attempts != 2 {
		t.Errorf("the next transaction: %d attempts, want 2 (one lost, one under the retry lock)", attempts)
	}
}

// wantNoAdvisoryLocks fails t if a session holds an advisory lock in db.
func wantNoAdvisoryLocks(t *testing.T, db *sqldb.DB) {
	t.Helper()
	var n int
	err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d advisory locks still held", n)
	}
}

package sqldb

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// Lead runs fn while this process leads the work called name, and returns
// when ctx ends. Of several replicas on one PostgreSQL database, one leads
// at a time: the one holding the session advisory lock for name. A leader
// that loses its connection (and with it the lock) has fn's context
// cancelled, and every replica keeps trying to lead every retry, so the
// work moves to another replica when its leader stops. On SQLite, which
// one process owns, fn just runs.
//
// Background work that must happen once for the whole deployment (garbage
// collection, audit checkpoints) runs under Lead.
func (db *DB) Lead(ctx context.Context, name string, retry time.Duration, log *slog.Logger, fn func(ctx context.Context)) {
	if db.Dialect != Postgres {
		fn(ctx)
		return
	}
	key := lockKey("lead " + name)
	for {
		if led := db.leadOnce(ctx, key, retry, fn); led {
			log.Info("no longer leading", "work", name)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// leadOnce takes the lock if it is free and runs fn until ctx ends or the
// connection holding the lock fails; it reports whether it led.
func (db *DB) leadOnce(ctx context.Context, key int64, check time.Duration, fn func(context.Context)) bool {
	conn, err := db.W.Conn(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil || !got {
		return false
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(lctx)
	}()
	t := time.NewTicker(check)
	defer t.Stop()
	for alive := true; alive; {
		select {
		case <-done:
			alive = false
		case <-ctx.Done():
			alive = false
		case <-t.C:
			alive = stillHeld(ctx, conn, key)
		}
	}
	cancel()
	<-done
	unlock(ctx, conn, key)
	return true
}

// stillHeld checks that the session holding the lock is alive: a session
// lock lasts as long as its session.
func stillHeld(ctx context.Context, conn *sql.Conn, _ int64) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return conn.PingContext(cctx) == nil
}

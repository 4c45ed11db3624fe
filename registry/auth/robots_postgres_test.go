package auth

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestRobotsSharedPostgres runs two robot stores on one PostgreSQL
// database, as two replicas do: a robot created on one authenticates on
// the other, its name stays unique across both, and a revocation on one
// is refused by the other once the other's view of the robots is older
// than the refresh interval (until then it answers from that view, without
// reading the database).
func TestRobotsSharedPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	open := func() *Robots {
		db, err := sqldb.OpenPostgres(ctx, dsn, 4)
		if err != nil {
			t.Fatal(err)
		}
		r, err := OpenRobotsDB(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		r.refresh = time.Hour // never on its own during the test: see outdate
		t.Cleanup(func() { r.Close() })
		return r
	}
	// outdate makes r's view of the robots older than the refresh
	// interval, as if that much time had passed since r read them.
	outdate := func(r *Robots) {
		r.mu.Lock()
		r.loaded = time.Now().Add(-r.refresh - time.Second)
		r.mu.Unlock()
	}
	a, b := open(), open()
	scopes := []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPush}}}
	tok, rb, err := a.Create(ctx, "ci", scopes, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	// b has not read the robots yet: its first authentication does.
	if r, err := b.Authenticate(ctx, tok); err != nil || r.ID != rb.ID {
		t.Fatalf("the other replica authenticates the new robot: %+v, %v", r, err)
	}
	if _, _, err := b.Create(ctx, "ci", scopes, 0, ""); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second active robot ci on the other replica: %v, want \"exists\"", err)
	}
	if _, err := a.Authenticate(ctx, tok[:len(tok)-2]+"xx"); err == nil {
		t.Fatal("a wrong secret authenticated")
	}
	if err := b.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok); err == nil {
		t.Fatal("the replica that revoked the robot still authenticates it")
	}
	if _, err := a.Authenticate(ctx, tok); err != nil {
		t.Fatalf("within the refresh interval the first replica answers from its view: %v", err)
	}
	outdate(a)
	if _, err := a.Authenticate(ctx, tok); err == nil {
		t.Fatal("the first replica still authenticates the revoked robot once its view is outdated")
	}
	if l, err := a.List(ctx); err != nil || len(l) != 1 || l[0].RevokedAt.IsZero() {
		t.Fatalf("List after the revocation: %+v, %v", l, err)
	}
}

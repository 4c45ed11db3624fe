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
// is refused by the other within the refresh interval.
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
		r.refresh = 100 * time.Millisecond
		t.Cleanup(func() { r.Close() })
		return r
	}
	a, b := open(), open()
	scopes := []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPush}}}
	tok, rb, err := a.Create(ctx, "ci", scopes, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 5s: %s", what)
			}
		}
	}
	until("the other replica authenticates the new robot", func() bool {
		r, err := b.Authenticate(ctx, tok)
		return err == nil && r.ID == rb.ID
	})
	if _, _, err := b.Create(ctx, "ci", scopes, 0, ""); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second active robot ci on the other replica: %v, want \"exists\"", err)
	}
	if _, err := a.Authenticate(ctx, tok[:len(tok)-2]+"xx"); err == nil {
		t.Fatal("a wrong secret authenticated")
	}
	if err := b.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	until("the first replica refuses the revoked robot", func() bool {
		_, err := a.Authenticate(ctx, tok)
		return err != nil
	})
	if l, err := a.List(ctx); err != nil || len(l) != 1 || l[0].RevokedAt.IsZero() {
		t.Fatalf("List after the revocation: %+v, %v", l, err)
	}
}

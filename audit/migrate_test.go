package audit

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
	"github.com/portcullis-dev/portcullis/internal/sqldb"
)

// TestMigrateEnforcement opens a log whose database was made by the
// schema before migration 3 (no enforcement column, the old
// records_running index), with a record the old code wrote: the log
// migrates, keeps verifying, and Running lists both the old allowed
// admission and a new one admitted in warn mode.
func TestMigrateEnforcement(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "audit.db")
		db, err := sqldb.OpenSQLite(path, 1)
		if err != nil {
			t.Fatal(err)
		}
		testMigrateEnforcement(t, db, func(opts ...Option) (*Log, error) {
			return OpenSQLite(context.Background(), path, opts...)
		}, func(t *testing.T) {
			// Read-only (audit running --data) is not migrated: it reads
			// the old schema as it is.
			l, err := OpenSQLite(context.Background(), path, ReadOnly())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			running, err := l.Running(context.Background(), "prod")
			if err != nil || len(running) != 1 || running[0].Record.Target.Name != "web" {
				t.Fatalf("read-only Running on the old schema: %+v, %v", running, err)
			}
			if p, err := l.Search(context.Background(), Filter{Namespace: "prod"}); err != nil || len(p.Entries) != 1 {
				t.Fatalf("read-only Search on the old schema: %+v, %v", p, err)
			}
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DSN(t)
		db, err := sqldb.OpenPostgres(context.Background(), dsn, 2)
		if err != nil {
			t.Fatal(err)
		}
		testMigrateEnforcement(t, db, func(opts ...Option) (*Log, error) {
			return OpenPostgres(context.Background(), dsn, opts...)
		}, nil)
	})
}

// readOnly, if not nil, is called on the old database before it is
// opened writable (and migrated).
func testMigrateEnforcement(t *testing.T, db *sqldb.DB, open func(...Option) (*Log, error), readOnly func(*testing.T)) {
	ctx := context.Background()
	if err := db.MigrateSchema(ctx, "audit_schema_migrations", sqliteMigrations[:3]); err != nil {
		t.Fatal(err)
	}
	old := Record{Time: t0, Action: ActionAdmit, Verdict: VerdictAllow, Subject: Subject{Repository: "prod/web", Digest: "sha256:a"},
		Target: Target{Namespace: "prod", Kind: "Deployment", Name: "web"}}
	leaf, err := encodeLeaf(0, old)
	if err != nil {
		t.Fatal(err)
	}
	c := ColumnsOf(old)
	// The INSERT of the schema before migration 3.
	if _, err := db.Exec(ctx, `INSERT INTO records(idx, leaf, leaf_hash, time_ns, action, verdict, repository, digest, tag,
		target_repository, namespace, kind, name, identity, kubernetes_user, service_account, policy_revision)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, 0, leaf, LeafHash(leaf), c.TimeNs, c.Action, c.Verdict, c.Repository, c.Digest, c.Tag,
		c.TargetRepo, c.Namespace, c.Kind, c.Name, c.Identity, c.KubernetesUser, c.ServiceAccount, c.PolicyRevision); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE tree_head SET size = 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if readOnly != nil {
		readOnly(t)
	}

	s, err := LoadOrCreateSigner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := open(WithSigner(s))
	if err != nil {
		t.Fatalf("open the old log: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	warned := Record{Time: t0, Action: ActionAdmit, Verdict: VerdictDeny, Enforcement: EnforcementWarn, Reasons: []string{"unsigned"},
		Subject: Subject{Repository: "prod/batch", Digest: "sha256:b"}, Target: Target{Namespace: "prod", Kind: "Job", Name: "batch"}}
	denied := warned
	denied.Enforcement, denied.Target.Name = "", "enforced"
	if _, err := l.AppendAll(ctx, []Record{warned, denied}); err != nil {
		t.Fatalf("append after migrating: %v", err)
	}
	running, err := l.Running(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range running {
		got = append(got, e.Record.Target.Name+"/"+e.Record.Verdict+"/"+e.Record.Enforcement)
	}
	slices.Sort(got)
	if want := []string{"batch/deny/warn", "web/allow/"}; !slices.Equal(got, want) {
		t.Errorf("running = %v, want %v", got, want)
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(ctx); err != nil || rep.Size != 3 {
		t.Fatalf("Verify after migrating: %+v, %v", rep, err)
	}
}

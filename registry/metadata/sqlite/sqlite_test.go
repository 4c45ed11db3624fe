package sqlite

import (
	"bytes"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/registry/metadata/metadatatest"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlstore"
)

// openTemp opens the database at path and closes it when the test ends.
func openTemp(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	metadatatest.Run(t, func(t *testing.T) metadata.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	ctx := t.Context()

	cfg := digest.FromString("config")
	content := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	m := &metadata.Manifest{
		Repository:   "a/b",
		Digest:       digest.FromBytes(content),
		MediaType:    "application/vnd.oci.image.manifest.v1+json",
		Content:      content,
		ArtifactType: "application/vnd.example",
		Annotations:  map[string]string{"k": "v"},
		Subject:      digest.FromString("subject"),
		Blobs:        []digest.Digest{cfg},
	}
	upload := metadata.Upload{ID: "f00d", Repository: "a/b", StartedAt: time.Unix(1700000000, 0)}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	err = errors.Join(
		s.LinkBlob(ctx, "a/b", cfg, 6),
		s.PutManifest(ctx, m, metadata.PutManifestOptions{Tag: "v1"}),
		s.CreateUpload(ctx, upload),
	)
	if cerr := s.Close(); cerr != nil {
		t.Fatalf("Close: %v", cerr)
	}
	if err != nil {
		t.Fatalf("writing: %v", err)
	}

	s = openTemp(t, path)
	if size, err := s.StatBlob(ctx, "a/b", cfg); err != nil || size != 6 {
		t.Errorf("StatBlob after reopen = %d, %v; want 6, nil", size, err)
	}
	if d, err := s.ResolveTag(ctx, "a/b", "v1"); err != nil || d != m.Digest {
		t.Errorf("ResolveTag after reopen = %s, %v; want %s", d, err, m.Digest)
	}
	got, err := s.GetManifest(ctx, "a/b", m.Digest)
	if err != nil {
		t.Fatalf("GetManifest after reopen: %v", err)
	}
	if !bytes.Equal(got.Content, m.Content) || got.ArtifactType != m.ArtifactType || got.Subject != m.Subject || !maps.Equal(got.Annotations, m.Annotations) {
		t.Errorf("GetManifest after reopen = %+v, want %+v", got, m)
	}
	if refs, err := s.Referrers(ctx, "a/b", m.Subject); err != nil || len(refs) != 1 || refs[0].Digest != m.Digest {
		t.Errorf("Referrers after reopen = %v, %v; want [%s]", refs, err, m.Digest)
	}
	if u, err := s.GetUpload(ctx, upload.ID); err != nil || u.Repository != upload.Repository || !u.StartedAt.Equal(upload.StartedAt) {
		t.Errorf("GetUpload after reopen = %+v, %v; want %+v", u, err, upload)
	}
	if repos, err := s.ListRepositories(ctx, "", -1); err != nil || !slices.Equal(repos, []string{"a/b"}) {
		t.Errorf("ListRepositories after reopen = %q, %v; want [a/b]", repos, err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	ctx := t.Context()
	d := digest.FromString("blob")

	// Opening runs the migrations; opening again must skip them and keep the data.
	for i := range 3 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		if i == 0 {
			err = s.LinkBlob(ctx, "repo", d, 4)
		}
		if cerr := s.Close(); cerr != nil || err != nil {
			t.Fatalf("Open #%d: %v", i, errors.Join(err, cerr))
		}
	}

	s := openTemp(t, path)
	countVersions := func() int {
		t.Helper()
		var n int
		if err := s.DB().W.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatalf("counting migrations: %v", err)
		}
		return n
	}
	if n := countVersions(); n != len(sqlstore.SQLiteMigrations)-1 {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(sqlstore.SQLiteMigrations)-1)
	}
	if err := s.DB().Migrate(ctx, "schema_migrations", sqlstore.SQLiteMigrations); err != nil {
		t.Fatalf("migrate on a migrated database: %v", err)
	}
	if n := countVersions(); n != len(sqlstore.SQLiteMigrations)-1 {
		t.Fatalf("schema_migrations has %d rows after migrating again, want %d", n, len(sqlstore.SQLiteMigrations)-1)
	}
	if size, err := s.StatBlob(ctx, "repo", d); err != nil || size != 4 {
		t.Fatalf("StatBlob after reopening = %d, %v; want 4, nil", size, err)
	}
}

func TestOpenUnwritablePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no such directory", "metadata.db")
	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) succeeded, want an error", path)
	}
}

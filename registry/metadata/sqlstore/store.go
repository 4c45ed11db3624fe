// Package sqlstore implements metadata.Store in SQL, once for the two
// databases Portcullis runs on: SQLite, the embedded default (package
// registry/metadata/sqlite opens it), and PostgreSQL, which several
// replicas share (package registry/metadata/postgres). The queries are
// the same; the schemas differ only in types and collation, and
// sqldb.DB rewrites placeholders and runs PostgreSQL transactions
// SERIALIZABLE, so that a check-then-write (an immutable tag, a
// referenced blob) has exactly one winner across replicas.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// Store is a metadata.Store on a SQL database.
type Store struct {
	db *sqldb.DB
}

var _ metadata.Store = (*Store)(nil)

// Open applies the migrations of db's dialect and returns the store,
// which owns db from then on.
func Open(ctx context.Context, db *sqldb.DB) (*Store, error) {
	if err := db.MigrateSchema(ctx, "schema_migrations", SQLiteMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate metadata (%s): %w", db.Dialect, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the database (for health checks and tests).
func (s *Store) DB() *sqldb.DB { return s.db }

// limit is a LIMIT argument: n < 0 means all.
func limit(n int) int64 {
	if n < 0 {
		return math.MaxInt64
	}
	return int64(n)
}

func now() int64 { return time.Now().UnixNano() }

func ensureRepo(ctx context.Context, tx *sqldb.Tx, repo string) error {
	_, err := tx.Exec(ctx, `INSERT INTO repositories(name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING`, repo, now())
	return err
}

// LinkBlob implements metadata.Blobs.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	return s.linkBlob(ctx, repo, d, size, false)
}

// LinkEvidenceBlob implements metadata.EvidenceBlobs.
func (s *Store) LinkEvidenceBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	return s.linkBlob(ctx, repo, d, size, true)
}

// EvidenceOnly implements metadata.EvidenceBlobs.
func (s *Store) EvidenceOnly(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	ok, err := s.exists(ctx, `SELECT 1 FROM repo_blobs WHERE repo = ? AND digest = ? AND evidence_only <> 0`, repo, d.String())
	if err != nil {
		return false, fmt.Errorf("blob %s in %s: %w", d, repo, err)
	}
	return ok, nil
}

// linkBlob links d into repo; an existing link keeps its kind.
func (s *Store) linkBlob(ctx context.Context, repo string, d digest.Digest, size int64, evidenceOnly bool) error {
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		t := now()
		if _, err := tx.Exec(ctx, `INSERT INTO blobs(digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT(digest) DO NOTHING`, d.String(), size, t); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO repo_blobs(repo, digest, created_at, evidence_only) VALUES (?, ?, ?, ?) ON CONFLICT(repo, digest) DO NOTHING`, repo, d.String(), t, boolInt(evidenceOnly))
		return err
	})
	if err != nil {
		return fmt.Errorf("link blob %s into %s: %w", d, repo, err)
	}
	return nil
}

// StatBlob implements metadata.Blobs.
func (s *Store) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	var size int64
	err := s.db.QueryRow(ctx, `SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repo = ? AND rb.digest = ?`, repo, d.String()).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("blob %s in %s: %w", d, repo, metadata.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s in %s: %w", d, repo, err)
	}
	return size, nil
}

// UnlinkBlob implements metadata.Blobs.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	res, err := s.db.Exec(ctx, `DELETE FROM repo_blobs WHERE repo = ? AND digest = ?`, repo, d.String())
	if err != nil {
		return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("blob %s in %s: %w", d, repo, metadata.ErrNotFound)
	}
	return nil
}

// PutManifest implements metadata.Manifests.
func (s *Store) PutManifest(ctx context.Context, m *metadata.Manifest, opts metadata.PutManifestOptions) error {
	var annotations string
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return fmt.Errorf("put manifest %s: %w", m.Digest, err)
		}
		annotations = string(b)
	}
	var subject any
	if m.Subject != "" {
		subject = m.Subject.String()
	}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := ensureRepo(ctx, tx, m.Repository); err != nil {
			return err
		}
		for _, b := range m.Blobs {
			var evidenceOnly int64
			err := tx.QueryRow(ctx, `SELECT evidence_only FROM repo_blobs WHERE repo = ? AND digest = ?`, m.Repository, b.String()).Scan(&evidenceOnly)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return &metadata.BlobUnknownError{Digest: b}
			case err != nil:
				return err
			case evidenceOnly != 0 && !opts.Evidence:
				return fmt.Errorf("blob %s: %w", b, metadata.ErrEvidenceOnly)
			}
		}
		for _, c := range m.Manifests {
			if err := mustExist(ctx, tx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`, m.Repository, c); err != nil {
				return err
			}
		}
		t := now()
		res, err := tx.Exec(ctx, `INSERT INTO manifests(repo, digest, media_type, content, artifact_type, annotations, subject, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(repo, digest) DO NOTHING`,
			m.Repository, m.Digest.String(), m.MediaType, m.Content, m.ArtifactType, annotations, subject, t)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			for kind, refs := range [][]digest.Digest{m.Blobs, m.Manifests} {
				for _, r := range refs {
					if _, err := tx.Exec(ctx, `INSERT INTO manifest_refs(repo, manifest, ref, kind) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
						m.Repository, m.Digest.String(), r.String(), kind); err != nil {
						return err
					}
				}
			}
		}
		if opts.Tag == "" {
			return nil
		}
		return setTag(ctx, tx, m.Repository, metadata.TagUpdate{Name: opts.Tag, Digest: m.Digest, Immutable: opts.ImmutableTags})
	})
	if err != nil {
		return fmt.Errorf("put manifest %s@%s: %w", m.Repository, m.Digest, err)
	}
	return nil
}

// setTag points a tag at a digest. A tag that is immutable (it was set so
// once) never moves, whatever u says; u.Immutable also refuses to move a
// mutable tag, and makes the tag immutable from now on.
func setTag(ctx context.Context, tx *sqldb.Tx, repo string, u metadata.TagUpdate) error {
	var cur string
	var immutable int64
	err := tx.QueryRow(ctx, `SELECT digest, immutable FROM tags WHERE repo = ? AND name = ?`, repo, u.Name).Scan(&cur, &immutable)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	case cur == u.Digest.String():
		if u.Immutable && immutable == 0 {
			_, err = tx.Exec(ctx, `UPDATE tags SET immutable = 1 WHERE repo = ? AND name = ?`, repo, u.Name)
		}
		return err
	case immutable != 0 || u.Immutable:
		return fmt.Errorf("tag %s points at %s: %w", u.Name, cur, metadata.ErrTagImmutable)
	}
	_, err = tx.Exec(ctx, `INSERT INTO tags(repo, name, digest, updated_at, immutable) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(repo, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at, immutable = excluded.immutable`,
		repo, u.Name, u.Digest.String(), now(), boolInt(u.Immutable))
	return err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func mustExist(ctx context.Context, tx *sqldb.Tx, query, repo string, d digest.Digest) error {
	var one int
	err := tx.QueryRow(ctx, query, repo, d.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return &metadata.BlobUnknownError{Digest: d}
	}
	return err
}

// GetManifest implements metadata.Manifests.
func (s *Store) GetManifest(ctx context.Context, repo string, d digest.Digest) (*metadata.Manifest, error) {
	m := &metadata.Manifest{Repository: repo, Digest: d}
	var annotations string
	var subject sql.NullString
	var created int64
	err := s.db.QueryRow(ctx, `SELECT media_type, content, artifact_type, annotations, subject, created_at FROM manifests WHERE repo = ? AND digest = ?`,
		repo, d.String()).Scan(&m.MediaType, &m.Content, &m.ArtifactType, &annotations, &subject, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("manifest %s in %s: %w", d, repo, metadata.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get manifest %s in %s: %w", d, repo, err)
	}
	if annotations != "" {
		if err := json.Unmarshal([]byte(annotations), &m.Annotations); err != nil {
			return nil, fmt.Errorf("get manifest %s in %s: annotations: %w", d, repo, err)
		}
	}
	if subject.Valid {
		m.Subject = digest.Digest(subject.String)
	}
	m.CreatedAt = time.Unix(0, created)
	return m, nil
}

// DeleteManifest implements metadata.Manifests.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var tag string
		err := tx.QueryRow(ctx, `SELECT name FROM tags WHERE repo = ? AND digest = ? AND immutable <> 0 LIMIT 1`, repo, d.String()).Scan(&tag)
		if err == nil {
			return fmt.Errorf("immutable tag %s points at it: %w", tag, metadata.ErrTagImmutable)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM manifests WHERE repo = ? AND digest = ?`, repo, d.String())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return metadata.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE repo = ? AND digest = ?`, repo, d.String()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM manifest_refs WHERE repo = ? AND manifest = ?`, repo, d.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("delete manifest %s in %s: %w", d, repo, err)
	}
	return nil
}

// Referrers implements metadata.Manifests.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest) ([]metadata.Descriptor, error) {
	rows, err := s.db.Query(ctx, `SELECT digest, media_type, length(content), artifact_type, annotations FROM manifests
		WHERE repo = ? AND subject = ? ORDER BY created_at, digest`, repo, d.String())
	if err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
	}
	defer rows.Close()
	var out []metadata.Descriptor
	for rows.Next() {
		var desc metadata.Descriptor
		var dg, annotations string
		if err := rows.Scan(&dg, &desc.MediaType, &desc.Size, &desc.ArtifactType, &annotations); err != nil {
			return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
		}
		desc.Digest = digest.Digest(dg)
		if annotations != "" {
			if err := json.Unmarshal([]byte(annotations), &desc.Annotations); err != nil {
				return nil, fmt.Errorf("referrers of %s in %s: annotations: %w", d, repo, err)
			}
		}
		out = append(out, desc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
	}
	return out, nil
}

// ResolveTag implements metadata.Tags.
func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	var d string
	err := s.db.QueryRow(ctx, `SELECT digest FROM tags WHERE repo = ? AND name = ?`, repo, tag).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("tag %s in %s: %w", tag, repo, metadata.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("resolve tag %s in %s: %w", tag, repo, err)
	}
	return digest.Digest(d), nil
}

// ListTags implements metadata.Tags.
func (s *Store) ListTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	var exists int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM repositories WHERE name = ?`, repo).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("repository %s: %w", repo, metadata.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	tags, err := s.names(ctx, `SELECT name FROM tags WHERE repo = ? AND name > ? ORDER BY name LIMIT ?`, repo, last, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return tags, nil
}

// DeleteTag implements metadata.Tags.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var immutable int64
		err := tx.QueryRow(ctx, `SELECT immutable FROM tags WHERE repo = ? AND name = ?`, repo, tag).Scan(&immutable)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return metadata.ErrNotFound
		case err != nil:
			return err
		case immutable != 0:
			return metadata.ErrTagImmutable
		}
		_, err = tx.Exec(ctx, `DELETE FROM tags WHERE repo = ? AND name = ?`, repo, tag)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete tag %s in %s: %w", tag, repo, err)
	}
	return nil
}

// ListRepositories implements metadata.Repositories.
func (s *Store) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	repos, err := s.names(ctx, `SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?`, last, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return repos, nil
}

// ListManifestRepositories implements metadata.ManifestRepositories.
func (s *Store) ListManifestRepositories(ctx context.Context, last string, n int) ([]string, error) {
	repos, err := s.names(ctx, `SELECT name FROM repositories r WHERE name > ?
		AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo = r.name) ORDER BY name LIMIT ?`, last, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return repos, nil
}

func (s *Store) names(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// CreateUpload implements metadata.Uploads.
func (s *Store) CreateUpload(ctx context.Context, u metadata.Upload) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO uploads(id, repo, started_at) VALUES (?, ?, ?)`, u.ID, u.Repository, u.StartedAt.UnixNano()); err != nil {
		return fmt.Errorf("create upload %s: %w", u.ID, err)
	}
	return nil
}

// GetUpload implements metadata.Uploads.
func (s *Store) GetUpload(ctx context.Context, id string) (metadata.Upload, error) {
	u := metadata.Upload{ID: id}
	var started int64
	err := s.db.QueryRow(ctx, `SELECT repo, started_at FROM uploads WHERE id = ?`, id).Scan(&u.Repository, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("upload %s: %w", id, metadata.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("get upload %s: %w", id, err)
	}
	u.StartedAt = time.Unix(0, started)
	return u, nil
}

// DeleteUpload implements metadata.Uploads.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM uploads WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("upload %s: %w", id, metadata.ErrNotFound)
	}
	return nil
}

// BlobKnown implements metadata.Blobs.
func (s *Store) BlobKnown(ctx context.Context, d digest.Digest) (bool, error) {
	ok, err := s.exists(ctx, `SELECT 1 FROM repo_blobs WHERE digest = ? AND evidence_only = 0 LIMIT 1`, d.String())
	if err != nil {
		return false, fmt.Errorf("blob %s known: %w", d, err)
	}
	return ok, nil
}

// BlobReferenced implements metadata.Blobs.
func (s *Store) BlobReferenced(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	ok, err := s.exists(ctx, `SELECT 1 FROM manifest_refs r JOIN manifests m ON m.repo = r.repo AND m.digest = r.manifest
		WHERE r.repo = ? AND r.ref = ? AND r.kind = 0 LIMIT 1`, repo, d.String())
	if err != nil {
		return false, fmt.Errorf("blob %s referenced in %s: %w", d, repo, err)
	}
	return ok, nil
}

// exists reports whether query returns a row.
func (s *Store) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ManifestRepositories implements metadata.Manifests.
func (s *Store) ManifestRepositories(ctx context.Context, d digest.Digest) ([]string, error) {
	repos, err := s.names(ctx, `SELECT repo FROM manifests WHERE digest = ? ORDER BY repo`, d.String())
	if err != nil {
		return nil, fmt.Errorf("repositories of manifest %s: %w", d, err)
	}
	return repos, nil
}

// Promote implements metadata.Manifests: the manifest rows, their
// references and blob links are copied within the database.
func (s *Store) Promote(ctx context.Context, p metadata.Promotion) error {
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := ensureRepo(ctx, tx, p.To); err != nil {
			return err
		}
		t := now()
		for _, d := range p.Manifests {
			if err := mustExist(ctx, tx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`, p.From, d); err != nil {
				return err
			}
			// Children of an index must be in the target already.
			rows, err := tx.Query(ctx, `SELECT ref FROM manifest_refs WHERE repo = ? AND manifest = ? AND kind = 1`, p.From, d.String())
			if err != nil {
				return err
			}
			var children []digest.Digest
			for rows.Next() {
				var c string
				if err := rows.Scan(&c); err != nil {
					rows.Close()
					return err
				}
				children = append(children, digest.Digest(c))
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, c := range children {
				if err := mustExist(ctx, tx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`, p.To, c); err != nil {
					return err
				}
			}
			stmts := []string{
				// A blob of the promoted manifest is linked by the promotion
				// now, whatever an earlier evidence upload linked.
				`INSERT INTO repo_blobs(repo, digest, created_at)
					SELECT CAST(? AS TEXT), ref, CAST(? AS BIGINT) FROM manifest_refs WHERE repo = ? AND manifest = ? AND kind = 0
					ON CONFLICT(repo, digest) DO UPDATE SET evidence_only = 0`,
				`INSERT INTO manifests(repo, digest, media_type, content, artifact_type, annotations, subject, created_at)
					SELECT CAST(? AS TEXT), digest, media_type, content, artifact_type, annotations, subject, CAST(? AS BIGINT) FROM manifests WHERE repo = ? AND digest = ?
					ON CONFLICT(repo, digest) DO NOTHING`,
				`INSERT INTO manifest_refs(repo, manifest, ref, kind)
					SELECT CAST(? AS TEXT), manifest, ref, kind FROM manifest_refs WHERE repo = ? AND manifest = ?
					ON CONFLICT DO NOTHING`,
			}
			args := [][]any{{p.To, t, p.From, d.String()}, {p.To, t, p.From, d.String()}, {p.To, p.From, d.String()}}
			for i, q := range stmts {
				if _, err := tx.Exec(ctx, q, args[i]...); err != nil {
					return err
				}
			}
		}
		for _, u := range p.Tags {
			if err := mustExist(ctx, tx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`, p.To, u.Digest); err != nil {
				return err
			}
			if err := setTag(ctx, tx, p.To, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("promote %s to %s: %w", p.From, p.To, err)
	}
	return nil
}

// ManifestParents implements metadata.Manifests.
func (s *Store) ManifestParents(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error) {
	names, err := s.names(ctx, `SELECT manifest FROM manifest_refs WHERE repo = ? AND ref = ? AND kind = 1 ORDER BY manifest`, repo, d.String())
	if err != nil {
		return nil, fmt.Errorf("parents of manifest %s in %s: %w", d, repo, err)
	}
	out := make([]digest.Digest, len(names))
	for i, n := range names {
		out[i] = digest.Digest(n)
	}
	return out, nil
}

// BlobRepositories lists the repositories linking blob d, in lexical
// order (the registry asks it to answer only about repositories a caller
// may read); links for evidence only do not count.
func (s *Store) BlobRepositories(ctx context.Context, d digest.Digest) ([]string, error) {
	repos, err := s.names(ctx, `SELECT repo FROM repo_blobs WHERE digest = ? AND evidence_only = 0 ORDER BY repo`, d.String())
	if err != nil {
		return nil, fmt.Errorf("repositories of blob %s: %w", d, err)
	}
	return repos, nil
}

// namespaceWhere selects the repository prefix and those below it; the
// range keeps the primary key usable ('0' follows '/').
const namespaceWhere = `(repo = ?1 OR (repo >= CAST(?1 AS TEXT) || '/' AND repo < CAST(?1 AS TEXT) || '0'))`

// NamespaceUsage implements metadata.UsageCounter: the bytes of the
// distinct blobs linked into prefix or a repository below it, plus the
// bytes of their manifests.
func (s *Store) NamespaceUsage(ctx context.Context, prefix string) (int64, error) {
	var blobs, manifests int64
	err := s.db.QueryRow(ctx, `SELECT COALESCE(SUM(b.size), 0) FROM blobs b
		WHERE b.digest IN (SELECT digest FROM repo_blobs WHERE `+namespaceWhere+`)`, prefix).Scan(&blobs)
	if err == nil {
		err = s.db.QueryRow(ctx, `SELECT COALESCE(SUM(length(content)), 0) FROM manifests WHERE `+namespaceWhere, prefix).Scan(&manifests)
	}
	if err != nil {
		return 0, fmt.Errorf("usage of %s: %w", prefix, err)
	}
	return blobs + manifests, nil
}

// NamespaceHasBlob implements metadata.UsageCounter.
func (s *Store) NamespaceHasBlob(ctx context.Context, prefix string, d digest.Digest) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM repo_blobs WHERE digest = ?2 AND `+namespaceWhere+` LIMIT 1`, prefix, d.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob %s in %s: %w", d, prefix, err)
	}
	return true, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

var _ metadata.Collector = (*Store)(nil)

// GCSnapshot implements metadata.Collector: five reads in one read-only
// transaction (one snapshot on both databases).
func (s *Store) GCSnapshot(ctx context.Context) (*metadata.GCSnapshot, error) {
	snap := &metadata.GCSnapshot{}
	err := s.db.ReadTx(ctx, func(tx *sqldb.Tx) error {
		if err := scanAll(ctx, tx, `SELECT repo, digest, COALESCE(subject, ''), length(content), created_at FROM manifests`, func(r *sql.Rows) error {
			var m metadata.GCManifest
			var d, subj string
			var t int64
			if err := r.Scan(&m.Repository, &d, &subj, &m.Size, &t); err != nil {
				return err
			}
			m.Digest, m.Subject, m.CreatedAt = digest.Digest(d), digest.Digest(subj), time.Unix(0, t)
			snap.Manifests = append(snap.Manifests, m)
			return nil
		}); err != nil {
			return err
		}
		if err := scanAll(ctx, tx, `SELECT repo, manifest, ref, kind FROM manifest_refs`, func(r *sql.Rows) error {
			var f metadata.GCRef
			var m, ref string
			if err := r.Scan(&f.Repository, &m, &ref, &f.Kind); err != nil {
				return err
			}
			f.Manifest, f.Ref = digest.Digest(m), digest.Digest(ref)
			snap.Refs = append(snap.Refs, f)
			return nil
		}); err != nil {
			return err
		}
		if err := scanAll(ctx, tx, `SELECT repo, name, digest, updated_at FROM tags`, func(r *sql.Rows) error {
			var g metadata.GCTag
			var d string
			var t int64
			if err := r.Scan(&g.Repository, &g.Name, &d, &t); err != nil {
				return err
			}
			g.Digest, g.UpdatedAt = digest.Digest(d), time.Unix(0, t)
			snap.Tags = append(snap.Tags, g)
			return nil
		}); err != nil {
			return err
		}
		if err := scanAll(ctx, tx, `SELECT repo, digest, created_at FROM repo_blobs`, func(r *sql.Rows) error {
			var l metadata.GCLink
			var d string
			var t int64
			if err := r.Scan(&l.Repository, &d, &t); err != nil {
				return err
			}
			l.Digest, l.CreatedAt = digest.Digest(d), time.Unix(0, t)
			snap.Links = append(snap.Links, l)
			return nil
		}); err != nil {
			return err
		}
		if err := scanAll(ctx, tx, `SELECT digest, size, created_at FROM blobs`, func(r *sql.Rows) error {
			var b metadata.GCBlob
			var d string
			var t int64
			if err := r.Scan(&d, &b.Size, &t); err != nil {
				return err
			}
			b.Digest, b.CreatedAt = digest.Digest(d), time.Unix(0, t)
			snap.Blobs = append(snap.Blobs, b)
			return nil
		}); err != nil {
			return err
		}
		return scanAll(ctx, tx, `SELECT id, repo, started_at FROM uploads`, func(r *sql.Rows) error {
			var u metadata.Upload
			var t int64
			if err := r.Scan(&u.ID, &u.Repository, &t); err != nil {
				return err
			}
			u.StartedAt = time.Unix(0, t)
			snap.Uploads = append(snap.Uploads, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("gc snapshot: %w", err)
	}
	return snap, nil
}

func scanAll(ctx context.Context, tx *sqldb.Tx, q string, f func(*sql.Rows) error) error {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// deleted runs a guarded DELETE in its own transaction and reports
// whether it removed a row.
func (s *Store) deleted(ctx context.Context, what string, f func(tx *sqldb.Tx) (sql.Result, error)) (bool, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := f(tx)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("gc: delete %s: %w", what, err)
	}
	return n > 0, nil
}

// DeleteManifestIfUnreferenced implements metadata.Collector.
func (s *Store) DeleteManifestIfUnreferenced(ctx context.Context, repo string, d digest.Digest, before time.Time) (bool, error) {
	return s.deleted(ctx, "manifest "+repo+"@"+d.String(), func(tx *sqldb.Tx) (sql.Result, error) {
		res, err := tx.Exec(ctx, `DELETE FROM manifests WHERE repo = ?1 AND digest = ?2 AND created_at < ?3
			AND NOT EXISTS (SELECT 1 FROM tags WHERE repo = ?1 AND digest = ?2)
			AND NOT EXISTS (SELECT 1 FROM manifest_refs r JOIN manifests p ON p.repo = r.repo AND p.digest = r.manifest
				WHERE r.repo = ?1 AND r.ref = ?2 AND r.kind = 1)
			AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repo = ?1 AND s.digest = manifests.subject)`,
			repo, d.String(), before.UnixNano())
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM manifest_refs WHERE repo = ? AND manifest = ?`, repo, d.String()); err != nil {
				return nil, err
			}
		}
		return res, nil
	})
}

// UnlinkBlobIfUnreferenced implements metadata.Collector.
func (s *Store) UnlinkBlobIfUnreferenced(ctx context.Context, repo string, d digest.Digest, before time.Time) (bool, error) {
	return s.deleted(ctx, "link "+repo+"@"+d.String(), func(tx *sqldb.Tx) (sql.Result, error) {
		return tx.Exec(ctx, `DELETE FROM repo_blobs WHERE repo = ?1 AND digest = ?2 AND created_at < ?3
			AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE repo = ?1 AND ref = ?2 AND kind = 0)`,
			repo, d.String(), before.UnixNano())
	})
}

// DeleteBlobIfUnlinked implements metadata.Collector.
func (s *Store) DeleteBlobIfUnlinked(ctx context.Context, d digest.Digest, before time.Time, deleteBytes func(context.Context) error) (bool, error) {
	return s.deleted(ctx, "blob "+d.String(), func(tx *sqldb.Tx) (sql.Result, error) {
		res, err := tx.Exec(ctx, `DELETE FROM blobs WHERE digest = ?1 AND created_at < ?2
			AND NOT EXISTS (SELECT 1 FROM repo_blobs WHERE digest = ?1)`, d.String(), before.UnixNano())
		if err != nil {
			return nil, err
		}
		// The row stays locked (PostgreSQL) or the write lock held
		// (SQLite) until the bytes are gone.
		if n, _ := res.RowsAffected(); n > 0 {
			if err := deleteBytes(ctx); err != nil {
				return nil, err
			}
		}
		return res, nil
	})
}

// DeleteTagIfAt implements metadata.Collector.
func (s *Store) DeleteTagIfAt(ctx context.Context, repo, tag string, d digest.Digest) (bool, error) {
	return s.deleted(ctx, "tag "+repo+":"+tag, func(tx *sqldb.Tx) (sql.Result, error) {
		return tx.Exec(ctx, `DELETE FROM tags WHERE repo = ? AND name = ? AND digest = ? AND immutable = 0`, repo, tag, d.String())
	})
}

// DeleteUploadIfBefore implements metadata.Collector.
func (s *Store) DeleteUploadIfBefore(ctx context.Context, id string, before time.Time) (bool, error) {
	return s.deleted(ctx, "upload "+id, func(tx *sqldb.Tx) (sql.Result, error) {
		return tx.Exec(ctx, `DELETE FROM uploads WHERE id = ? AND started_at < ?`, id, before.UnixNano())
	})
}

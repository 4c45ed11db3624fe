package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

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

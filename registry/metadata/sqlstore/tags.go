package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

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

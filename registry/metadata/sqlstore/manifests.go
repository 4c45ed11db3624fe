package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

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

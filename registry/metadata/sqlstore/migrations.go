package sqlstore

// SQLiteMigrations are applied in order, each in its own transaction, and
// recorded in schema_migrations. Never edit one that has shipped: append a
// new one. PostgreSQL gets them through sqldb.PostgresMigrations.
var SQLiteMigrations = []string{
	1: `
CREATE TABLE repositories (
	name       TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL
);
CREATE TABLE blobs (
	digest     TEXT PRIMARY KEY,
	size       INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE repo_blobs (
	repo       TEXT NOT NULL REFERENCES repositories(name),
	digest     TEXT NOT NULL REFERENCES blobs(digest),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (repo, digest)
);
CREATE INDEX repo_blobs_digest ON repo_blobs(digest);
CREATE TABLE manifests (
	repo          TEXT NOT NULL REFERENCES repositories(name),
	digest        TEXT NOT NULL,
	media_type    TEXT NOT NULL,
	content       BLOB NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	annotations   TEXT NOT NULL DEFAULT '',
	subject       TEXT,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (repo, digest)
);
CREATE INDEX manifests_subject ON manifests(repo, subject) WHERE subject IS NOT NULL;
CREATE TABLE manifest_refs (
	repo     TEXT NOT NULL,
	manifest TEXT NOT NULL,
	ref      TEXT NOT NULL,
	kind     INTEGER NOT NULL, -- 0 blob, 1 manifest
	PRIMARY KEY (repo, manifest, kind, ref)
);
CREATE INDEX manifest_refs_ref ON manifest_refs(ref);
CREATE TABLE tags (
	repo       TEXT NOT NULL REFERENCES repositories(name),
	name       TEXT NOT NULL,
	digest     TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (repo, name)
);
CREATE INDEX tags_digest ON tags(repo, digest);
CREATE TABLE uploads (
	id         TEXT PRIMARY KEY,
	repo       TEXT NOT NULL,
	started_at INTEGER NOT NULL
);
`,
	// A tag created immutable stays so whatever a later caller asks: no
	// write moves it and no delete removes it (docs/gate.md, I1).
	2: `ALTER TABLE tags ADD COLUMN immutable INTEGER NOT NULL DEFAULT 0;`,
	// A blob uploaded into a protected repository as evidence serves only
	// evidence manifests (metadata.EvidenceBlobs).
	3: `ALTER TABLE repo_blobs ADD COLUMN evidence_only INTEGER NOT NULL DEFAULT 0;`,
}

package audit

// postgresMigrations are sqliteMigrations in PostgreSQL's types, with
// text compared as bytes (COLLATE "C"). Never edit one that has shipped:
// append a new one (to both lists).
var postgresMigrations = []string{
	1: `
CREATE TABLE records (
	idx               BIGINT PRIMARY KEY,
	leaf              BYTEA NOT NULL,
	leaf_hash         BYTEA NOT NULL,
	time_ns           BIGINT NOT NULL,
	action            TEXT COLLATE "C" NOT NULL,
	verdict           TEXT COLLATE "C" NOT NULL,
	repository        TEXT COLLATE "C" NOT NULL,
	digest            TEXT COLLATE "C" NOT NULL,
	tag               TEXT COLLATE "C" NOT NULL,
	target_repository TEXT COLLATE "C" NOT NULL,
	namespace         TEXT COLLATE "C" NOT NULL,
	kind              TEXT COLLATE "C" NOT NULL,
	name              TEXT COLLATE "C" NOT NULL,
	identity          TEXT COLLATE "C" NOT NULL,
	kubernetes_user   TEXT COLLATE "C" NOT NULL,
	service_account   TEXT COLLATE "C" NOT NULL,
	policy_revision   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX records_digest ON records(digest);
CREATE INDEX records_repository ON records(repository);
CREATE INDEX records_target_repository ON records(target_repository);
CREATE INDEX records_namespace ON records(namespace);
CREATE INDEX records_identity ON records(identity);
CREATE INDEX records_kubernetes_user ON records(kubernetes_user);
CREATE INDEX records_service_account ON records(service_account);
CREATE INDEX records_policy_revision ON records(policy_revision);
CREATE INDEX records_time ON records(time_ns);
CREATE INDEX records_action_verdict ON records(action, verdict);
CREATE INDEX records_running ON records(namespace, kind, name, digest)
	WHERE action IN ('admit', 'break-glass') AND verdict = 'allow' AND kind <> '';
-- Perfect subtrees of level >= 1 (level 0 is records.leaf_hash).
CREATE TABLE tree_nodes (
	level INTEGER NOT NULL,
	idx   BIGINT NOT NULL,
	hash  BYTEA NOT NULL,
	PRIMARY KEY (level, idx)
);
CREATE TABLE tree_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size BIGINT NOT NULL
);
INSERT INTO tree_head(id, size) VALUES (1, 0);
CREATE TABLE checkpoints (
	size       BIGINT PRIMARY KEY,
	note       BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);
`,
	// A search bounded in time lists in (time, idx) order (searchByTime):
	// records_time serves it alone; with an equality filter on a selective
	// column, these make it a range scan of that value's records too.
	2: `
CREATE INDEX records_digest_time ON records(digest, time_ns);
CREATE INDEX records_policy_revision_time ON records(policy_revision, time_ns);
CREATE INDEX records_namespace_time ON records(namespace, time_ns);
`,
}

package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/portcullis-dev/portcullis/internal/sqldb"
)

// DBFile is the access control database under the data directory.
const DBFile = "auth.db"

// Robot is a named, scoped, expiring credential for automation (CI).
// Only a hash of its token is stored.
type Robot struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Scopes      []Scope   `json:"scopes"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	// ExpiresAt is zero for a robot that never expires.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`

	hash []byte
}

// Active reports whether the robot may authenticate at now.
func (r *Robot) Active(now time.Time) bool {
	return r.RevokedAt.IsZero() && (r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt))
}

// robotTokenPrefix starts every robot token, so that it is recognised
// (and found by secret scanners).
const robotTokenPrefix = "pcr_"

var robotNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// ErrRobotNotFound: no active robot has that name.
var ErrRobotNotFound = errors.New("no such robot")

// Robots stores robots in SQLite (<data>/auth.db), or in the PostgreSQL
// database replicas share (OpenRobotsDB). A server reads them again every
// few seconds, so robots created or revoked with the CLI (another process)
// or on another replica take effect without a restart.
type Robots struct {
	db *sqldb.DB

	refresh time.Duration
	mu      sync.Mutex
	byID    map[string]*Robot
	loaded  time.Time
}

var robotMigrations = []string{
	1: `
CREATE TABLE robots (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	hash        BLOB NOT NULL,
	scopes      TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL DEFAULT 0,
	revoked_at  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX robots_active_name ON robots(name) WHERE revoked_at = 0;
`,
}

// OpenRobots opens (creating if needed) the robot database at path.
func OpenRobots(ctx context.Context, path string) (*Robots, error) {
	db, err := sqldb.OpenSQLite(path, 4, "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(FULL)")
	if err != nil {
		return nil, err
	}
	s, err := OpenRobotsDB(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// OpenRobotsDB keeps robots in db (SQLite or PostgreSQL), which it owns
// from then on.
func OpenRobotsDB(ctx context.Context, db *sqldb.DB) (*Robots, error) {
	s := &Robots{db: db, refresh: 2 * time.Second}
	if err := db.MigrateSchema(ctx, "auth_migrations", robotMigrations); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate the robot store (%s): %w", db.Dialect, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Robots) Close() error { return s.db.Close() }

// Create stores a new robot and returns its token, which is shown once
// and never stored. ttl 0 means it never expires.
func (s *Robots) Create(ctx context.Context, name string, scopes []Scope, ttl time.Duration, description string) (string, *Robot, error) {
	name = strings.TrimPrefix(name, RobotPrefix)
	if !robotNameRE.MatchString(name) {
		return "", nil, fmt.Errorf("robot name %q: want lower-case letters, digits and . _ - inside", name)
	}
	if len(scopes) == 0 {
		return "", nil, errors.New("a robot needs at least one scope (NAMESPACE=ROLE,...)")
	}
	for _, sc := range scopes {
		if err := validateScope(sc.Namespace, sc.Roles); err != nil {
			return "", nil, err
		}
	}
	idb := make([]byte, 6)
	secret := make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	now := time.Now()
	r := &Robot{ID: hex.EncodeToString(idb), Name: name, Scopes: scopes, Description: description, CreatedAt: now}
	if ttl > 0 {
		r.ExpiresAt = now.Add(ttl)
	}
	token := robotTokenPrefix + r.ID + "_" + base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(token))
	sj, _ := json.Marshal(scopes)
	_, err := s.db.Exec(ctx, `INSERT INTO robots(id, name, hash, scopes, description, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Name, sum[:], string(sj), description, now.UnixNano(), unixNano(r.ExpiresAt))
	if err != nil {
		if sqldb.UniqueViolation(err) {
			return "", nil, fmt.Errorf("robot %s exists: revoke it first", name)
		}
		return "", nil, fmt.Errorf("create robot %s: %w", name, err)
	}
	s.invalidate()
	return token, r, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// List returns every robot, revoked ones included, by name.
func (s *Robots) List(ctx context.Context) ([]*Robot, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, hash, scopes, description, created_at, expires_at, revoked_at FROM robots ORDER BY name, created_at`)
	if err != nil {
		return nil, fmt.Errorf("list robots: %w", err)
	}
	defer rows.Close()
	var out []*Robot
	for rows.Next() {
		var r Robot
		var scopes string
		var created, expires, revoked int64
		if err := rows.Scan(&r.ID, &r.Name, &r.hash, &scopes, &r.Description, &created, &expires, &revoked); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(scopes), &r.Scopes); err != nil {
			return nil, fmt.Errorf("robot %s: scopes: %w", r.Name, err)
		}
		r.CreatedAt, r.ExpiresAt, r.RevokedAt = fromNano(created), fromNano(expires), fromNano(revoked)
		out = append(out, &r)
	}
	return out, rows.Err()
}

// Revoke revokes the active robot called name; its tokens, and the
// registry tokens issued to it, stop working.
func (s *Robots) Revoke(ctx context.Context, name string) error {
	name = strings.TrimPrefix(name, RobotPrefix)
	res, err := s.db.Exec(ctx, `UPDATE robots SET revoked_at = ? WHERE name = ? AND revoked_at = 0`, time.Now().UnixNano(), name)
	if err != nil {
		return fmt.Errorf("revoke robot %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("robot %s: %w", name, ErrRobotNotFound)
	}
	s.invalidate()
	return nil
}

// ActiveCount is the number of robots that may authenticate now.
func (s *Robots) ActiveCount(ctx context.Context) (int, error) {
	l, err := s.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range l {
		if r.Active(time.Now()) {
			n++
		}
	}
	return n, nil
}

func (s *Robots) invalidate() {
	s.mu.Lock()
	s.loaded = time.Time{}
	s.mu.Unlock()
}

// byIDNow returns the robot with id from a view at most s.refresh old.
func (s *Robots) byIDNow(ctx context.Context, id string) (*Robot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.loaded) > s.refresh {
		l, err := s.List(ctx)
		if err != nil {
			return nil, err
		}
		m := make(map[string]*Robot, len(l))
		for _, r := range l {
			m[r.ID] = r
		}
		s.byID, s.loaded = m, time.Now()
	}
	return s.byID[id], nil
}

// Authenticate returns the active robot whose token this is.
func (s *Robots) Authenticate(ctx context.Context, token string) (*Robot, error) {
	rest, ok := strings.CutPrefix(token, robotTokenPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 {
		return nil, errBadCredentials
	}
	r, err := s.byIDNow(ctx, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errBadCredentials
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], r.hash) != 1 {
		return nil, errBadCredentials
	}
	if !r.Active(time.Now()) {
		return nil, fmt.Errorf("robot %s is revoked or expired", r.Name)
	}
	return r, nil
}

// Active returns the robot with id if it may still authenticate.
func (s *Robots) Active(ctx context.Context, id string) (*Robot, bool) {
	r, err := s.byIDNow(ctx, id)
	if err != nil || r == nil || !r.Active(time.Now()) {
		return nil, false
	}
	return r, true
}

package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Htpasswd checks user names and passwords against an htpasswd file of
// bcrypt hashes (`htpasswd -B`), reloaded when it changes. Other hash
// schemes (MD5, SHA-1, crypt, plain) are refused when the file is read.
type Htpasswd struct {
	path string

	mu      sync.Mutex
	users   map[string][]byte
	version fileVersion
	checked time.Time
	// ok caches successful checks for a while (bcrypt is slow on purpose:
	// a client sending basic auth on every request must not pay it every
	// time). The key is a hash of user and password.
	ok map[[32]byte]time.Time
}

type fileVersion struct {
	mod  time.Time
	size int64
}

// htpasswdCacheTTL is how long a verified password is remembered.
const htpasswdCacheTTL = time.Minute

// dummyHash is compared against when the user is unknown, so that the
// answer takes as long as for a known user.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("portcullis-no-such-user"), bcrypt.DefaultCost)

// LoadHtpasswd reads path; every line is "user:bcrypt-hash".
func LoadHtpasswd(path string) (*Htpasswd, error) {
	h := &Htpasswd{path: path}
	if err := h.reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// ParseHtpasswd parses an htpasswd file's content.
func ParseHtpasswd(b []byte) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if strings.HasPrefix(user, RobotPrefix) {
			return nil, fmt.Errorf("line %d: user names starting with %q are robots'", n, RobotPrefix)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d (user %s): not a bcrypt hash (create it with htpasswd -B): %w", n, user, err)
		}
		users[user] = []byte(hash)
	}
	return users, sc.Err()
}

func (h *Htpasswd) reload() error {
	fi, err := os.Stat(h.path)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	v := fileVersion{fi.ModTime(), fi.Size()}
	if h.users != nil && v == h.version {
		return nil
	}
	b, err := os.ReadFile(h.path)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	users, err := ParseHtpasswd(b)
	if err != nil {
		return fmt.Errorf("htpasswd %s: %w", h.path, err)
	}
	h.users, h.version, h.ok = users, v, map[[32]byte]time.Time{}
	return nil
}

// Len is the number of users.
func (h *Htpasswd) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.users)
}

// Check reports whether password is user's. A file that changed is read
// again (at most once a second); one that no longer parses keeps the
// previous users.
func (h *Htpasswd) Check(user, password string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + password))
	h.mu.Lock()
	if now := time.Now(); now.Sub(h.checked) > time.Second {
		h.checked = now
		_ = h.reload()
	}
	if exp, ok := h.ok[key]; ok && time.Now().Before(exp) {
		h.mu.Unlock()
		return true
	}
	hash, known := h.users[user]
	h.mu.Unlock()
	if !known {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil {
		return false
	}
	h.mu.Lock()
	if len(h.ok) > 10000 {
		clear(h.ok)
	}
	h.ok[key] = time.Now().Add(htpasswdCacheTTL)
	h.mu.Unlock()
	return true
}

var errBadCredentials = errors.New("invalid user name or password")

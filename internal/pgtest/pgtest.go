// Package pgtest gives tests a real PostgreSQL server: the one named by
// PORTCULLIS_TEST_POSTGRES (a libpq URL of a role that may create
// databases), or else a throwaway cluster of Debian's postgresql package,
// made with initdb in a temporary directory and started on a free loopback
// port for the test binary's lifetime. Each test gets a database of its own.
//
// Without PostgreSQL's programs a test is skipped, except under CI=true,
// where it fails: .ci/tools.sh installs them.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

var (
	once    sync.Once
	server  *cluster
	baseURL string
	initErr error
	dbSeq   atomic.Int64
)

// Main runs the tests of a package that uses DSN and stops the cluster it
// started: call it from TestMain, os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if server != nil {
		server.stop()
	}
	return code
}

// DSN returns the URL of a new, empty database for t, dropped when t ends.
func DSN(t testing.TB) string {
	t.Helper()
	once.Do(func() { baseURL, initErr = start() })
	if initErr != nil {
		if errors.Is(initErr, errNoPostgres) && os.Getenv("CI") != "true" {
			t.Skipf("PostgreSQL: %v", initErr)
		}
		t.Fatalf("PostgreSQL: %v", initErr)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	admin, err := sql.Open("pgx", baseURL)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(context.Background(), `CREATE DATABASE `+name); err != nil {
		t.Fatalf("PostgreSQL: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", baseURL)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	return withDatabase(baseURL, name)
}

func withDatabase(base, name string) string {
	i := strings.LastIndex(base, "/")
	rest := ""
	if q := strings.Index(base[i:], "?"); q >= 0 {
		rest = base[i+q:]
	}
	return base[:i+1] + name + rest
}

var errNoPostgres = errors.New("no PostgreSQL server programs (install Debian's postgresql, or set PORTCULLIS_TEST_POSTGRES)")

func start() (string, error) {
	if u := os.Getenv("PORTCULLIS_TEST_POSTGRES"); u != "" {
		return u, nil
	}
	bin, err := findBin()
	if err != nil {
		return "", err
	}
	c, err := newCluster(bin)
	if err != nil {
		return "", err
	}
	server = c
	return c.url, nil
}

// findBin finds the directory of initdb and postgres: on PATH, else in
// Debian's /usr/lib/postgresql/VERSION/bin (newest first).
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errNoPostgres
}

type cluster struct {
	dir  string
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// newCluster makes and starts a cluster. PostgreSQL refuses to run as root:
// then it runs as the postgres user the Debian package creates.
func newCluster(bin string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "portcullis-pg-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGTERM}
		return cmd
	}
	// C collation: the registry lists names in byte order, as OCI asks.
	if out, err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "--locale=C", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// fsync off: a test cluster need not survive a power loss.
	cmd := run("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
		"-c", "shared_buffers=64MB")
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &cluster{dir: dir, cmd: cmd, url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(c.done) }()
	db, err := sql.Open("pgx", c.url)
	if err != nil {
		c.stop()
		return nil, err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.PingContext(context.Background())
		if err == nil {
			return c, nil
		}
		select {
		case <-c.done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			c.stop()
			return nil, fmt.Errorf("postgres exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("postgres not ready after 30s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) stop() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	os.RemoveAll(c.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

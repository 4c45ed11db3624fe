package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCLIConventions: every subcommand parses its flags one way (docs/cli.md):
// -h prints the usage and the flags on stdout and exits 0, a stray
// argument or an unknown flag is one line on stderr and exit 2, and
// nothing is done.
func TestCLIConventions(t *testing.T) {
	t.Parallel()
	commands := [][]string{
		{"serve"}, {"verify"}, {"promote"}, {"scan"}, {"quota"}, {"gc"}, {"version"},
		{"audit"}, {"audit", "query"}, {"audit", "running"}, {"audit", "verify"}, {"audit", "export"}, {"audit", "prove"},
		{"db"}, {"db", "import"}, {"db", "status"},
		{"policy"}, {"policy", "test"}, {"policy", "eval"},
		{"robot"}, {"robot", "create"}, {"robot", "list"}, {"robot", "revoke"},
		{"keys"}, {"keys", "export"}, {"keys", "import"},
	}
	// The table covers every command of the top-level usage.
	_, top, _ := runCLI(t, "-h")
	for _, line := range strings.Split(top, "\n") {
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "  ") || len(f) < 2 {
			continue
		}
		if !slices.ContainsFunc(commands, func(c []string) bool { return c[0] == f[0] }) {
			t.Errorf("command %q of the usage is not tried", f[0])
		}
	}
	for _, cmd := range commands {
		name := strings.Join(cmd, " ")
		t.Run(name+" -h", func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append(cmd, "-h")...)
			if code != exitOK || !strings.Contains(out, "usage: portcullis "+cmd[0]) || errOut != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", code, out, errOut)
			}
			if name != "version" && name != "policy" && name != "keys" && !strings.Contains(out, "  -") {
				t.Errorf("usage lists no flags:\n%s", out)
			}
		})
		if len(cmd) == 1 && (cmd[0] == "audit" || cmd[0] == "db" || cmd[0] == "policy" || cmd[0] == "robot" || cmd[0] == "keys") {
			continue // a group: its subcommands take the flags
		}
		t.Run(name+" --no-such-flag", func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append(cmd, "--no-such-flag")...)
			if code != exitFailed || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "no-such-flag") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line naming the flag", code, out, errOut)
			}
		})
	}
	// A stray argument is refused wherever it is, before anything is done.
	data := t.TempDir()
	for _, args := range [][]string{
		{"serve", "extra", "--data", data, "--addr", "127.0.0.1:1"},
		{"gc", "--data", data, "extra", "--dry-run"},
		{"quota", "--data", data, "extra"},
		{"db", "status", "--data", data, "extra"},
		{"audit", "verify", "--data", data, "extra"},
		{"policy", "eval", "--input", "x.json", "extra"},
		{"robot", "list", "--data", data, "extra"},
		{"keys", "export", "--data", data, "--to", filepath.Join(data, "k.tar"), "extra"},
		{"keys", "import", "--data", data, "--from", "k.tar", "extra"},
		{"verify", "a", "b"},
		{"promote", "a", "b", "c"},
		{"scan", "a", "b"},
		{"version", "extra"},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != exitFailed || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "unexpected argument") {
			t.Errorf("portcullis %s: exit %d, stdout %q, stderr %q; want 2 and one line", strings.Join(args, " "), code, out, errOut)
		}
	}
	if entries, err := os.ReadDir(data); err != nil || len(entries) != 0 {
		t.Errorf("refused commands wrote into the data directory: %v %v", entries, err)
	}
}

// TestGCGracePeriodZero is findings 2 and 3 of the promises issue: flags
// after a stray argument are not dropped (so --dry-run is never lost), and
// --grace-period 0s (or gc.gracePeriod: 0s) protects nothing instead of
// meaning 24h.
func TestGCGracePeriodZero(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServer(t, data)
	pushBlob(t, newClient(t), s, "staging/app", []byte("an unreferenced blob"))
	s.Stop()
	// gc prints its report; blobs counts the blobs it deleted (or would).
	gc := func(args ...string) (code int, blobs int) {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"gc", "--data", data, "--json"}, args...)...)
		if code != exitOK {
			if errOut == "" {
				t.Fatalf("gc %v: exit %d with nothing on stderr", args, code)
			}
			return code, -1
		}
		var rep struct{ Blobs []string }
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("gc --json: %v\n%s", err, out)
		}
		return code, len(rep.Blobs)
	}
	collectable := func() int {
		t.Helper()
		_, n := gc("--grace-period", "0s", "--dry-run")
		return n
	}
	if n := collectable(); n != 1 {
		t.Fatalf("gc --grace-period 0s --dry-run would delete %d blobs, want the one pushed", n)
	}
	// The default grace period (24h) protects the fresh blob.
	if code, n := gc(); code != exitOK || n != 0 || collectable() != 1 {
		t.Fatalf("gc with the default grace period: exit %d, deleted %d blobs", code, n)
	}
	// A stray argument before --dry-run is an error, not a real collection.
	if code, _ := gc("--grace-period", "0s", "extra", "--dry-run"); code != exitFailed || collectable() != 1 {
		t.Fatalf("gc with a stray argument: exit %d; want 2 and nothing deleted", code)
	}
	// gc.gracePeriod: 0s in portcullis.yaml works as the flag does.
	cfg := filepath.Join(t.TempDir(), "portcullis.yaml")
	writeFile(t, cfg, []byte("gc:\n  gracePeriod: 0s\n"))
	if code, n := gc("--config", cfg); code != exitOK || n != 1 || collectable() != 0 {
		t.Fatalf("gc with gracePeriod: 0s: exit %d, deleted %d blobs; want the one pushed", code, n)
	}
	// A retention rule that cannot take effect fails at start (finding 11).
	writeFile(t, cfg, []byte("gc:\n  retention:\n    - namespace: staging\n      keepPattern: 'v[0-9'\n"))
	code, _, errOut := runCLI(t, "gc", "--data", data, "--config", cfg)
	if code != exitFailed || !strings.Contains(errOut, "keepPattern") {
		t.Errorf("gc with an invalid keepPattern: exit %d, %q", code, errOut)
	}
	if _, err := tryStartServer(t, t.TempDir(), "--config", cfg); err == nil || !strings.Contains(err.Error(), "keepPattern") {
		t.Errorf("serve with an invalid keepPattern: %v, want it refused at start", err)
	}
}

// TestMissingDataDirectory is from the promises issue: a command that
// works on a server's data directory says in one line that the directory
// is missing (not "unable to open database file (14)"), and creates
// nothing; serve creates the data directory when its parent exists, and
// only then.
func TestMissingDataDirectory(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	missing := filepath.Join(root, "no-such-dir")
	for _, args := range [][]string{
		{"gc", "--data", missing},
		{"gc", "--data", missing, "--dry-run"},
		{"quota", "--data", missing},
		{"robot", "list", "--data", missing},
		{"robot", "create", "--data", missing, "--name", "ci", "--scope", "staging=push"},
		{"robot", "revoke", "--data", missing, "ci"},
		{"audit", "query", "--data", missing},
		{"audit", "verify", "--data", missing},
		{"db", "status", "--data", missing},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != exitFailed || out != "" || strings.Count(errOut, "\n") != 1 ||
			!strings.Contains(errOut, "data directory "+missing+" does not exist") || strings.Contains(errOut, "(14)") {
			t.Errorf("portcullis %s: exit %d, stdout %q, stderr %q; want 2 and one line naming the directory", strings.Join(args, " "), code, out, errOut)
		}
	}
	// A directory that is not a server's: gc and quota do not make an
	// empty metadata.db and report about nothing.
	empty := t.TempDir()
	for _, args := range [][]string{{"gc", "--data", empty}, {"quota", "--data", empty}} {
		code, _, errOut := runCLI(t, args...)
		if code != exitFailed || !strings.Contains(errOut, "no metadata database") {
			t.Errorf("portcullis %s: exit %d, %q", strings.Join(args, " "), code, errOut)
		}
	}
	if entries, err := os.ReadDir(empty); err != nil || len(entries) != 0 {
		t.Errorf("refused commands wrote into %s: %v %v", empty, entries, err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a refused command created %s", missing)
	}
	// serve makes the data directory, not its parents.
	if _, err := tryStartServer(t, filepath.Join(missing, "data")); err == nil || !strings.Contains(err.Error(), "nor its parent") {
		t.Errorf("serve in a directory whose parent is missing: %v", err)
	}
	s, err := tryStartServer(t, missing)
	if err != nil {
		t.Fatalf("serve in a missing data directory whose parent exists: %v", err)
	}
	s.Stop()
	if _, err := os.Stat(filepath.Join(missing, "metadata.db")); err != nil {
		t.Errorf("serve did not create its data directory: %v", err)
	}
}

// TestRobotNeedsTheServersStore is from the promises issue: robot
// commands without --config write <data>/auth.db only into the data
// directory of a server keeping its metadata in SQLite (metadata.db in it),
// since a server with PostgreSQL metadata never reads auth.db; with
// --config a robot may be created before the server's first start.
func TestRobotNeedsTheServersStore(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	code, out, errOut := runCLI(t, "robot", "create", "--data", empty, "--name", "ci", "--scope", "staging=push")
	if code != exitFailed || out != "" || !strings.Contains(errOut, "give the server's --config") {
		t.Fatalf("robot create --data of no server: exit %d, %q %q", code, out, errOut)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("robot create wrote %v", entries)
	}
	// With the configuration, before the first start (the data directory
	// is created), then the server reads the robot.
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte("data: "+data+"\n"))
	code, token, errOut := runCLI(t, "robot", "create", "--config", cfg, "--name", "ci", "--scope", "staging=push")
	if code != exitOK || !strings.HasPrefix(token, "pcr_") {
		t.Fatalf("robot create --config: exit %d, %q %q", code, token, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "auth.db")); err != nil {
		t.Fatalf("robot create --config did not write the data directory's auth.db: %v", err)
	}
	// Once the server made its metadata.db, --data alone is enough.
	s := startServer(t, data)
	s.Stop()
	if code, out, errOut := runCLI(t, "robot", "list", "--data", data); code != exitOK || !strings.Contains(out, "robot$ci") {
		t.Fatalf("robot list --data: exit %d, %q %q", code, out, errOut)
	}
}

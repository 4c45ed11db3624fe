package main

// The docs runner: every shell block of README.md and docs/*.md is run
// against a real `portcullis serve` with the pinned tools, or is marked in
// the page as not run, with why. The convention is in docs/cli.md
// ("Executable documentation").

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// docPages returns README.md and docs/*.md, relative to root.
func docPages(t *testing.T, root string) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, p := range pages {
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
	}
	return out
}

// TestDocs runs every shell block of README.md and docs/*.md, page by
// page, each page in one bash session against its own server; it fails on
// a block that is neither run nor marked, on a command that fails, and on
// output that differs from what the page shows. -v lists the blocks that
// are not run and why.
func TestDocs(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	type page struct {
		file   string
		blocks []docBlock
	}
	var pages []page
	for _, file := range docPages(t, root) {
		content, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		blocks, errs := parseDocBlocks(file, string(content))
		for _, err := range errs {
			t.Error(err)
		}
		for _, b := range blocks {
			switch {
			case b.NotRun != "":
				t.Logf("not run: %s (%s): %s", b.where(), b.Lang, b.NotRun)
			case b.Serve:
				t.Logf("server start: %s: the runner serves with %q", b.where(), b.ServeArg)
			}
		}
		pages = append(pages, page{file, blocks})
	}
	if t.Failed() {
		t.FailNow()
	}
	bin := docsBin(t)
	for _, p := range pages {
		if !slices.ContainsFunc(p.blocks, func(b docBlock) bool { return b.NotRun == "" && !b.Serve }) {
			continue
		}
		t.Run(strings.ReplaceAll(p.file, "/", "_"), func(t *testing.T) {
			t.Parallel()
			runDocPage(t, root, bin, p.blocks)
		})
	}
}

// docsBin returns a directory for the front of a page session's PATH:
// `portcullis` (this test binary acting as the CLI) and `cosign` (the
// pinned cosign v3).
func docsBin(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", mainEnv, exe)
	if err := os.WriteFile(filepath.Join(dir, "portcullis"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := exec.LookPath("cosign3"); err == nil {
		if err := os.Symlink(p, filepath.Join(dir, "cosign")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// toolsOf returns the pinned tools the runnable blocks call.
func toolsOf(blocks []docBlock) []string {
	word := regexp.MustCompile(`[A-Za-z0-9_-]+`)
	seen := map[string]bool{}
	var out []string
	for _, b := range blocks {
		if b.NotRun != "" || b.Serve {
			continue
		}
		for _, w := range word.FindAllString(b.Body, -1) {
			if tool, ok := docTools[w]; ok && !seen[tool] {
				seen[tool] = true
				out = append(out, tool)
			}
		}
	}
	slices.Sort(out)
	return out
}

// pageScriptHead is the start of a page's session: it serves the registry
// on $DOCS_REG and the webhook on $DOCS_HOOK from ./portcullis-data, as
// `make run` does, and stops the server when the session ends.
const pageScriptHead = `set -o pipefail
__pid=
__n=0
__stop() {
	if [[ -n $__pid ]]; then kill -TERM "$__pid" 2>/dev/null; wait "$__pid"; __pid=; fi
}
__serve() {
	__stop
	__n=$((__n + 1))
	local log="$DOCS_STATE/server-$__n.log"
	: >"$log"
	portcullis serve --addr "$DOCS_REG" --webhook-addr "$DOCS_HOOK" --webhook-insecure-no-auth --data ./portcullis-data "$@" >"$log" 2>&1 &
	__pid=$!
	local deadline=$((SECONDS + 60))
	until grep -q 'msg="portcullis serving"' "$log" && grep -q 'msg="webhook serving"' "$log"; do
		if ! kill -0 "$__pid" 2>/dev/null || ((SECONDS > deadline)); then
			printf 'DOCS-FAIL %s: portcullis serve %s did not start:\n' "$__where" "$*"
			cat "$log"
			__pid=
			exit 1
		fi
		sleep 0.05
	done
}
__fail() {
	printf 'DOCS-FAIL %s\n' "$*"
	exit 1
}
trap __stop EXIT
`

// pageScript returns the bash script of one page's session and the console
// commands whose output it captures (out-N in $DOCS_STATE).
func pageScript(blocks []docBlock, state string, sub *strings.Replacer) (string, []consoleCommand, error) {
	var s strings.Builder
	s.WriteString(pageScriptHead)
	// The server as make run starts it, unless the page starts it itself
	// before its first command.
	if i := slices.IndexFunc(blocks, func(b docBlock) bool { return b.NotRun == "" }); i < 0 || !blocks[i].Serve {
		s.WriteString("__where=start\n__serve\n")
	}
	var cmds []consoleCommand
	for bi, b := range blocks {
		fmt.Fprintf(&s, "\n__where=%q\n", b.where())
		switch {
		case b.NotRun != "":
			continue
		case b.Serve:
			fmt.Fprintf(&s, "__serve %s\n", strings.Join(quoteAll(b.ServeArg), " "))
			continue
		case b.Lang == "console":
			cc, err := parseConsole(b)
			if err != nil {
				return "", nil, err
			}
			for _, c := range cc {
				n := len(cmds)
				file := filepath.Join(state, fmt.Sprintf("cmd-%d.sh", n))
				if err := os.WriteFile(file, []byte(sub.Replace(c.Command)+"\n"), 0o644); err != nil {
					return "", nil, err
				}
				fmt.Fprintf(&s, "__where=%q\n", fmt.Sprintf("%s:%d", b.File, c.Line))
				fmt.Fprintf(&s, "source %q >\"$DOCS_STATE/out-%d\" 2>&1\n__rc=$?\n", file, n)
				fmt.Fprintf(&s, "if ((__rc != %d)); then __fail \"$__where: exit status $__rc, the page says %d:\" \"$(cat \"$DOCS_STATE/out-%d\")\"; fi\n", c.WantExit, c.WantExit, n)
				cmds = append(cmds, c)
			}
		default:
			file := filepath.Join(state, fmt.Sprintf("block-%d.sh", bi))
			if err := os.WriteFile(file, []byte(sub.Replace(b.Body)+"\n"), 0o644); err != nil {
				return "", nil, err
			}
			fmt.Fprintf(&s, "set -eE\ntrap '__rc=$?; trap - ERR; __fail \"$__where: exit status $__rc: $BASH_COMMAND\"' ERR\n")
			fmt.Fprintf(&s, "source %q\n", file)
			s.WriteString("set +eE\ntrap - ERR\n")
		}
	}
	s.WriteString("\n__where=end\n")
	return s.String(), cmds, nil
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strconv.Quote(a)
	}
	return out
}

// runDocPage runs the blocks of one page in one bash session, in a working
// directory that looks like a checkout (the repository's top-level entries
// are linked into it) with HOME there too.
func runDocPage(t *testing.T, root, bin string, blocks []docBlock) {
	for _, tool := range toolsOf(blocks) {
		requireTool(t, tool)
	}
	work, state := t.TempDir(), t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, ".") && name != "bin" && name != "portcullis-data" {
			if err := os.Symlink(filepath.Join(root, name), filepath.Join(work, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	reg, err := restartableAddr()
	if err != nil {
		t.Fatal(err)
	}
	hook, err := restartableAddr()
	if err != nil {
		t.Fatal(err)
	}
	script, cmds, err := pageScript(blocks, state, docSubstitutions(reg, hook))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "HOME="+work, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"DOCS_REG="+reg, "DOCS_HOOK="+hook, "DOCS_STATE="+state)
	// Its own process group, so that a timeout ends the server too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s: %d blocks in %v", blocks[0].File, len(blocks), time.Since(start).Round(time.Millisecond))
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(state, "server-*.log"))
		if len(logs) > 1 {
			logs = logs[len(logs)-1:] // the server the failing command talked to
		}
		var tail strings.Builder
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			fmt.Fprintf(&tail, "--- %s\n%s", filepath.Base(l), lastLines(string(b), 20))
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("bash: %v", err)
		}
		t.Errorf("%s\n(session output above the failure, then the server's log)\n%s", failureOf(string(out)), tail.String())
	}
	sub := docSubstitutions(reg, hook)
	for n, c := range cmds {
		got, err := os.ReadFile(filepath.Join(state, fmt.Sprintf("out-%d", n)))
		if err != nil {
			break // the session stopped before this command
		}
		if len(c.Output) == 0 {
			continue
		}
		want := strings.Split(sub.Replace(strings.Join(c.Output, "\n")), "\n")
		gotLines := strings.Split(strings.TrimRight(string(got), "\n"), "\n")
		if !outputMatches(want, gotLines) {
			t.Errorf("%s:%d: $ %s\nthe page shows:\n%s\nit printed:\n%s", c.File(blocks), c.Line, c.Command, strings.Join(want, "\n"), got)
		}
	}
}

// File returns the page of a console command (all blocks of a session are
// of one page).
func (c consoleCommand) File(blocks []docBlock) string { return blocks[0].File }

// failureOf puts the DOCS-FAIL line of a session's output first.
func failureOf(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "DOCS-FAIL ") {
			return strings.TrimPrefix(sc.Text(), "DOCS-FAIL ") + "\n" + out
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestDemo runs `make demo`'s script, docs/demo.sh, with this binary as
// portcullis.
func TestDemo(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"crane", "cosign3", "curl"} {
		requireTool(t, tool)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := docsBin(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "docs", "demo.sh"))
	cmd.Env = append(os.Environ(), "PORTCULLIS="+filepath.Join(bin, "portcullis"), "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "demo: every step did what it says.") {
		t.Fatalf("docs/demo.sh: %v\n%s", err, out)
	}
	t.Logf("docs/demo.sh:\n%s", out)
}

// docPorts hands out the ports of the pages' servers: below the kernel's
// ephemeral range (32768-60999 by default), so that while a page restarts
// its server on the same port, no outgoing connection (crane, curl, the
// runner's own probes) and no other test's freeAddr (port 0) can take it.
var docPorts atomic.Int32

func init() { docPorts.Store(int32(20000 + rand.IntN(8000))) }

// restartableAddr is a loopback address for a page's server that it can
// stop and start again on: the next free port of docPorts.
func restartableAddr() (string, error) {
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", docPorts.Add(1))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr, nil
	}
	return "", errors.New("no free port below the ephemeral range")
}

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

// shellLangs are the info strings of the blocks the runner runs.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// docTools are the external commands a block may call, and the binary each
// needs on PATH (cosign is the pinned cosign v3).
var docTools = map[string]string{
	"crane": "crane", "cosign": "cosign3", "cosign2": "cosign2", "cosign3": "cosign3",
	"oras": "oras", "skopeo": "skopeo", "curl": "curl", "kubectl": "kubectl", "helm": "helm", "jq": "jq",
}

// docSubstitutions are the addresses the docs show and what the runner
// puts in their place: the addresses of its own server.
func docSubstitutions(reg, hook string) *strings.Replacer {
	return strings.NewReplacer(
		"127.0.0.1:5000", reg,
		"127.0.0.1:8443", hook,
		"https://portcullis.example.com", "http://"+reg,
	)
}

// docBlock is one fenced block of a Markdown page.
type docBlock struct {
	File string // path relative to the repository root
	Line int    // line of the opening fence, from 1
	Lang string
	Body string
	// NotRun is the reason of a <!-- not run: REASON --> marker.
	NotRun string
	// Serve is set by <!-- serve: FLAGS -->: the block is the reader's
	// server start, and the runner restarts its server with FLAGS instead.
	Serve    bool
	ServeArg []string
}

func (b docBlock) where() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

var (
	notRunMarker = regexp.MustCompile(`^<!--\s*not run:\s*(.+?)\s*-->$`)
	serveMarker  = regexp.MustCompile(`^<!--\s*serve:(.*?)-->$`)
	anyMarker    = regexp.MustCompile(`^<!--\s*(not run|serve)\b`)
	promptLine   = regexp.MustCompile(`^\$ `)
)

// parseDocBlocks returns the fenced blocks of a page, and an error for
// each breach of the convention: a fence without a language, a marker not
// followed by a shell block, a prompt in a block that is not console, an
// unclosed fence.
func parseDocBlocks(file, content string) ([]docBlock, []error) {
	var blocks []docBlock
	var errs []error
	lines := strings.Split(content, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if anyMarker.MatchString(trimmed) {
			next := ""
			if i+1 < len(lines) {
				next = strings.TrimSpace(lines[i+1])
			}
			if !strings.HasPrefix(next, "```") || !shellLangs[strings.TrimSpace(strings.TrimPrefix(next, "```"))] {
				errs = append(errs, fmt.Errorf("%s:%d: a marker must be on the line right before a shell block's opening fence", file, i+1))
			}
			continue
		}
		if !strings.HasPrefix(trimmed, "```") {
			continue
		}
		indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " "))]
		b := docBlock{File: file, Line: i + 1, Lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))}
		if i > 0 {
			prev := strings.TrimSpace(lines[i-1])
			if m := notRunMarker.FindStringSubmatch(prev); m != nil {
				b.NotRun = m[1]
			} else if m := serveMarker.FindStringSubmatch(prev); m != nil {
				b.Serve, b.ServeArg = true, strings.Fields(m[1])
			} else if anyMarker.MatchString(prev) {
				errs = append(errs, fmt.Errorf("%s:%d: malformed marker %q (want <!-- not run: REASON --> or <!-- serve: FLAGS -->)", file, i, prev))
			}
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == "```" {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if !closed {
			errs = append(errs, fmt.Errorf("%s:%d: fence never closed", file, b.Line))
			break
		}
		b.Body = strings.Join(body, "\n")
		switch {
		case b.Lang == "":
			errs = append(errs, fmt.Errorf("%s:%d: a fenced block needs a language: console, sh or bash for commands, text for output", file, b.Line))
		case !shellLangs[b.Lang] && slices.ContainsFunc(body, promptLine.MatchString):
			errs = append(errs, fmt.Errorf("%s:%d: a block with $ prompts is a console block", file, b.Line))
		}
		if shellLangs[b.Lang] {
			blocks = append(blocks, b)
		}
	}
	return blocks, errs
}

// consoleCommand is one `$ command` of a console block with the output the
// page shows for it.
type consoleCommand struct {
	Line     int // line of the prompt in the page
	Command  string
	Output   []string
	WantExit int
}

var exitLine = regexp.MustCompile(`^\[exit (\d+)\]$`)

// parseConsole splits a console block into its commands: a line starting
// with "$ " (continued by lines ending in a backslash) is a command, the
// lines up to the next prompt its output, "[exit N]" its exit status.
func parseConsole(b docBlock) ([]consoleCommand, error) {
	var cmds []consoleCommand
	lines := strings.Split(b.Body, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !promptLine.MatchString(line) {
			if len(cmds) == 0 {
				if strings.TrimSpace(line) == "" {
					continue
				}
				return nil, fmt.Errorf("%s:%d: a console block starts with a $ prompt", b.File, b.Line+1+i)
			}
			c := &cmds[len(cmds)-1]
			if m := exitLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
				c.WantExit, _ = strconv.Atoi(m[1])
				continue
			}
			c.Output = append(c.Output, line)
			continue
		}
		c := consoleCommand{Line: b.Line + 1 + i, Command: strings.TrimPrefix(line, "$ ")}
		for strings.HasSuffix(lines[i], `\`) && i+1 < len(lines) {
			i++
			c.Command += "\n" + lines[i]
		}
		cmds = append(cmds, c)
	}
	for i := range cmds {
		for len(cmds[i].Output) > 0 && strings.TrimSpace(cmds[i].Output[len(cmds[i].Output)-1]) == "" {
			cmds[i].Output = cmds[i].Output[:len(cmds[i].Output)-1]
		}
	}
	return cmds, nil
}

// outputMatches reports whether got matches the output a page shows: line
// by line, where "..." or "…" inside a line matches any text and a line
// that is only "..." matches any number of lines. Trailing spaces and
// trailing empty lines do not count.
func outputMatches(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	w := strings.TrimRight(want[0], " \t")
	if strings.TrimSpace(w) == "..." || strings.TrimSpace(w) == "…" {
		for k := 0; k <= len(got); k++ {
			if outputMatches(want[1:], got[k:]) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 || !lineMatches(w, strings.TrimRight(got[0], " \t")) {
		return false
	}
	return outputMatches(want[1:], got[1:])
}

var wildcard = regexp.MustCompile(`\.\.\.|…`)

func lineMatches(want, got string) bool {
	parts := wildcard.Split(want, -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `.*`) + `$`).MatchString(got)
}

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

func TestOutputMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		want, got string
		match     bool
	}{
		{"same", "a\nb", "a\nb", true},
		{"differs", "a\nb", "a\nc", false},
		{"wildcard in a line", "digest sha256:…", "digest sha256:0123", true},
		{"ascii wildcard", "x ... y", "x 1 2 y", true},
		{"line wildcard", "a\n...\nd", "a\nb\nc\nd", true},
		{"line wildcard, none", "a\n...\nd", "a\nd", true},
		{"missing line", "a\nb\nc", "a\nc", false},
		{"extra line", "a", "a\nb", false},
		{"regexp characters are literal", "a.b (c)", "aXb (c)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := outputMatches(strings.Split(tc.want, "\n"), strings.Split(tc.got, "\n")); got != tc.match {
				t.Errorf("outputMatches(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.match)
			}
		})
	}
}

func TestParseDocBlocks(t *testing.T) {
	t.Parallel()
	page := "text\n<!-- not run: needs a cluster -->\n```sh\nkubectl apply -f x\n```\n" +
		"<!-- serve: --config p.yaml -->\n```sh\nmake run CONFIG=p.yaml\n```\n" +
		"```console\n$ portcullis version\nportcullis …\n$ false\n[exit 1]\n```\n```yaml\na: b\n```\n"
	blocks, errs := parseDocBlocks("p.md", page)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(blocks) != 3 || blocks[0].NotRun != "needs a cluster" || !blocks[1].Serve || blocks[1].ServeArg[1] != "p.yaml" || blocks[2].Lang != "console" {
		t.Fatalf("blocks: %+v", blocks)
	}
	cmds, err := parseConsole(blocks[2])
	if err != nil || len(cmds) != 2 || cmds[0].Output[0] != "portcullis …" || cmds[1].WantExit != 1 || cmds[1].Line != 13 {
		t.Fatalf("console: %+v %v", cmds, err)
	}
	for name, bad := range map[string]string{
		"no language":        "```\nportcullis version\n```\n",
		"prompt in text":     "```text\n$ portcullis version\n```\n",
		"marker on nothing":  "<!-- not run: x -->\ntext\n",
		"marker before yaml": "<!-- not run: x -->\n```yaml\na: b\n```\n",
		"unclosed":           "```sh\nportcullis version\n",
	} {
		if _, errs := parseDocBlocks("p.md", bad); len(errs) == 0 {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestDemo runs `make demo`'s script, docs/demo.sh, with this binary as
// portcullis.
func TestDemo(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"crane", "cosign2", "cosign3", "curl"} {
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

package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// shellLangs are the info strings of the blocks the runner runs.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// docTools are the external commands a block may call, and the binary each
// needs on PATH (cosign is the pinned cosign v3).
var docTools = map[string]string{
	"crane": "crane", "cosign": "cosign3", "cosign3": "cosign3",
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

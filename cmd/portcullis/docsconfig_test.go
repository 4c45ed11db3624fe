package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// notConfigMarker, on the line before a ```yaml block of the docs, says
// the block is not portcullis.yaml, and why (docs/configuration.md).
var notConfigMarker = regexp.MustCompile(`^<!-- not portcullis\.yaml: (\S.*) -->$`)

// yamlBlock is a ```yaml block of a Markdown file.
type yamlBlock struct {
	file  string
	line  int // of the opening fence
	text  string
	notIt string // the marker's reason, if marked as not portcullis.yaml
}

// docYAMLBlocks returns the ```yaml blocks of README.md and docs/*.md.
func docYAMLBlocks(t *testing.T) []yamlBlock {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	var out []yamlBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "../../")
		var cur *yamlBlock
		prev := ""
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.TrimSpace(line) == "```yaml":
				cur = &yamlBlock{file: name, line: n}
				if m := notConfigMarker.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
					cur.notIt = m[1]
				}
			case cur != nil && strings.TrimSpace(line) == "```":
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				cur.text += line + "\n"
			}
			prev = line
		}
		if cur != nil {
			t.Errorf("%s:%d: a ```yaml block that is never closed", name, cur.line)
		}
	}
	return out
}

// TestDocsConfigExamples (issue 22): every ```yaml block of README.md and
// docs/*.md is portcullis.yaml (or a part of it) and loads, strictly, with
// its defaults filled in; or the line before it is
// <!-- not portcullis.yaml: WHY -->. A doc that shows a field that does not
// exist, a value of the wrong type or an unquoted word that would not
// parse fails here.
func TestDocsConfigExamples(t *testing.T) {
	t.Parallel()
	blocks := docYAMLBlocks(t)
	checked := 0
	for _, b := range blocks {
		if b.notIt != "" {
			t.Logf("%s:%d: not run: not portcullis.yaml: %s", b.file, b.line, b.notIt)
			continue
		}
		checked++
		path := filepath.Join(t.TempDir(), "portcullis.yaml")
		mustWrite(t, path, b.text)
		c, err := loadConfig(path)
		if err == nil {
			err = c.defaults()
		}
		if err != nil {
			// The block's line n is the file's line b.line+n.
			t.Errorf("%s:%d: this ```yaml block is not a portcullis.yaml that loads (mark it <!-- not portcullis.yaml: WHY --> if it is not one): %v",
				b.file, b.line, strings.ReplaceAll(err.Error(), path, "block"))
		}
	}
	if checked < 10 {
		t.Fatalf("only %d ```yaml blocks checked in the docs: the extraction is broken", checked)
	}
}

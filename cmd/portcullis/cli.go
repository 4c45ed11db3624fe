package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses of every subcommand (docs/cli.md).
const (
	exitOK     = 0 // done: allowed, verified, nothing wrong found
	exitDenied = 1 // done, and the answer is no: denied, or found wanting
	exitFailed = 2 // could not do it: bad usage, bad configuration, an error
)

// command is what every subcommand shares: its flags, one way to parse
// them, and one way to fail.
type command struct {
	name           string // "gc", "robot create"
	fs             *flag.FlagSet
	usage          string
	stdout, stderr io.Writer
}

// newCommand returns the command "portcullis NAME" whose -h prints usage
// and then the flags.
func newCommand(name, usage string, stdout, stderr io.Writer) *command {
	c := &command{name: name, fs: flag.NewFlagSet("portcullis "+name, flag.ContinueOnError), usage: usage, stdout: stdout, stderr: stderr}
	c.fs.SetOutput(io.Discard)
	return c
}

// printUsage writes the usage text and the flags to w.
func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, c.usage)
	if !strings.HasSuffix(c.usage, "\n") {
		fmt.Fprintln(w)
	}
	has := false
	c.fs.VisitAll(func(*flag.Flag) { has = true })
	if !has {
		return
	}
	if !strings.HasSuffix(strings.TrimRight(c.usage, "\n"), "flags:") {
		fmt.Fprintln(w, "\nflags:")
	}
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// parse parses the flags wherever they are among args (before, between or
// after the positional arguments) and returns the positional arguments,
// of which there must be between min and max (max < 0: no limit). When
// ok is false the command is over and code is its exit status: -h or
// --help printed the usage on stdout (0); a bad flag or a wrong number of
// arguments printed one line on stderr (2). A lone "--" ends the flags.
func (c *command) parse(args []string, min, max int) (pos []string, code int, ok bool) {
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.printUsage(c.stdout)
				return nil, exitOK, false
			}
			return nil, c.usageError("%v", err), false
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag.Parse stops at "--" and leaves it out of Args only when it
		// consumed it: everything after is positional.
		if len(args)-len(rest) > 0 && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, c.usageError("want at least %d argument%s, got %d", min, plural(min), len(pos)), false
	case max >= 0 && len(pos) > max:
		if max == 0 {
			return nil, c.usageError("unexpected argument %q", pos[0]), false
		}
		return nil, c.usageError("unexpected argument %q: want at most %d", pos[max], max), false
	}
	return pos, exitOK, true
}

// set reports whether flag name was given on the command line.
func (c *command) set(name string) bool {
	found := false
	c.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// usageError prints one line about a usage mistake and returns exitFailed.
func (c *command) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "portcullis %s: %s (see portcullis %s -h)\n", c.name, fmt.Sprintf(format, args...), c.name)
	return exitFailed
}

// fail prints err as one line and returns exitFailed: the command could
// not do what it was asked.
func (c *command) fail(err error) int {
	fmt.Fprintf(c.stderr, "portcullis %s: %v\n", c.name, err)
	return exitFailed
}

// exit maps err to an exit status: nil is done, anything else could not
// be done (printed by fail).
func (c *command) exit(err error) int {
	if err != nil {
		return c.fail(err)
	}
	return exitOK
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

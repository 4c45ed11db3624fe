package main

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/httpapi"
)

const auditUsage = `usage: portcullis audit <command> (--server URL | --data DIR | --config FILE) [flags]

commands:
  query     list decisions matching filters (--output table|json|csv)
  running   what is running: the latest allowed admission per workload and image
  verify    check the whole log against its signed checkpoints
  export    write decisions as JSON lines, oldest first
  prove     print a record with its inclusion proof, checked against the key

--server reads the API of a running 'portcullis serve' (a URL, or
host:port: https, or http on a loopback address); --data opens
DIR/audit.db read-only (a copy of the data directory is fine); --config
opens the decision log the server's portcullis.yaml names (SQLite or
PostgreSQL), read-only. The public
key is --pubkey FILE, by default DIR/audit-key.pub with --data.

Exit status: 0 ok, 1 verification failed, 2 error.
`

// auditSource is what the commands read: a local log or a server.
type auditSource interface {
	Search(ctx context.Context, f audit.Filter) (audit.Page, error)
	Running(ctx context.Context, namespace string) ([]audit.Entry, error)
	Prove(ctx context.Context, index, treeSize uint64) (audit.Proved, error)
	Verify(ctx context.Context) (audit.VerifyReport, error)
	Export(ctx context.Context, w io.Writer, f audit.Filter) error
}

var (
	_ auditSource = (*audit.Log)(nil)
	_ auditSource = (*httpapi.Client)(nil)
)

// errNotVerified marks failures that exit with 1.
var errNotVerified = errors.New("not verified")

func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	c := &auditCLI{cmd: newCommand("audit "+sub, auditUsage, stdout, stderr), stdout: stdout, stderr: stderr}
	var err error
	switch sub {
	case "query":
		err = c.query(ctx, args)
	case "running":
		err = c.running(ctx, args)
	case "verify":
		err = c.verify(ctx, args)
	case "export":
		err = c.export(ctx, args)
	case "prove":
		err = c.prove(ctx, args)
	case "-h", "--help", "help":
		c.cmd.name = "audit"
		c.flags("") // every command takes the source flags
		c.cmd.printUsage(stdout)
		return exitOK
	case "":
		c.cmd.name = "audit"
		return c.cmd.usageError("want a command: query, running, verify, export or prove")
	default:
		c.cmd.name = "audit"
		return c.cmd.usageError("unknown command %q", sub)
	}
	var done parseDone
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &done):
		return int(done)
	case errors.Is(err, audit.ErrTampered), errors.Is(err, audit.ErrProof), errors.Is(err, audit.ErrBadCheckpoint), errors.Is(err, errNotVerified):
		fmt.Fprintf(stderr, "portcullis audit %s: %v\n", sub, err)
		return exitDenied
	default:
		return c.cmd.fail(err)
	}
}

type auditCLI struct {
	cmd                *command
	stdout, stderr     io.Writer
	server, data       string
	configPath, pubkey string
	verifier           note.Verifier // set by open when a key is found
}

// flags returns the flag set of the command, with the source flags.
func (c *auditCLI) flags(string) *flag.FlagSet {
	fs := c.cmd.fs
	fs.StringVar(&c.server, "server", "", "a running portcullis server: https://host:port, or host:port (https, http on loopback)")
	fs.StringVar(&c.data, "data", "", "data directory holding audit.db (opened read-only)")
	fs.StringVar(&c.configPath, "config", "", "portcullis.yaml of the server: read its decision log (SQLite or PostgreSQL) directly")
	fs.StringVar(&c.pubkey, "pubkey", "", "audit public key file (note verifier key; default DIR/audit-key.pub with --data or --config)")
	return fs
}

// parseDone ends a command after its flags: -h (0), or a usage mistake
// already reported (2).
type parseDone int

func (d parseDone) Error() string { return fmt.Sprintf("exit %d", int(d)) }

func parseAuditFlags(c *auditCLI, args []string) error {
	if _, code, ok := c.cmd.parse(args, 0, 0); !ok {
		return parseDone(code)
	}
	return nil
}

// open returns the source; needKey makes a missing public key an error.
func (c *auditCLI) open(ctx context.Context, needKey bool) (auditSource, func(), error) {
	given := 0
	for _, s := range []string{c.server, c.data, c.configPath} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return nil, nil, errors.New("give exactly one of --server URL, --data DIR and --config FILE")
	}
	var cfg *Config
	if c.configPath != "" {
		var err error
		if cfg, err = offlineConfig(c.configPath, ""); err != nil {
			return nil, nil, err
		}
		c.data = cfg.Data
	}
	if c.server != "" {
		u, err := serverURL(c.server)
		if err != nil {
			return nil, nil, err
		}
		c.server = u
	}
	if c.data != "" && (cfg == nil || cfg.Metadata.Driver != "postgres") {
		if err := dataDir(c.data, false); err != nil {
			return nil, nil, err
		}
	}
	var v note.Verifier
	keyPath := c.pubkey
	if keyPath == "" && c.data != "" {
		keyPath = filepath.Join(c.data, audit.PublicKeyFile)
		if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) && !needKey {
			keyPath = ""
		}
	}
	if keyPath != "" {
		var err error
		if v, err = audit.LoadVerifier(keyPath); err != nil {
			return nil, nil, err
		}
		c.verifier = v
	} else if needKey {
		return nil, nil, errors.New("--pubkey FILE is required with --server (the audit public key you were given)")
	}
	if c.server != "" {
		return httpapi.NewClient(c.server, v, credentialClient()), func() {}, nil
	}
	opts := []audit.Option{audit.ReadOnly()}
	if v != nil {
		opts = append(opts, audit.WithVerifier(v))
	}
	if cfg == nil || cfg.Metadata.Driver != "postgres" {
		path := filepath.Join(c.data, "audit.db")
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("no audit log in %s: %w", c.data, err)
		}
	}
	if cfg == nil {
		cfg = &Config{Data: c.data}
	}
	l, err := openAudit(ctx, cfg, opts...)
	if err != nil {
		return nil, nil, err
	}
	return l, func() { l.Close() }, nil
}

// serverURL reads --server: a URL (http:// or https://), or host:port as
// crane and promote take it, which is https unless the host is loopback
// (a local `portcullis serve` speaks plain HTTP).
func serverURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		host := s
		if i := strings.IndexByte(host, '/'); i >= 0 {
			host = host[:i]
		}
		scheme := "https://"
		if isLoopback(host) {
			scheme = "http://"
		}
		s = scheme + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server %q: want host:port or a URL such as https://portcullis.example.com:5000", s)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// filterFlags adds the filter flags (named as the API's query parameters).
type filterFlags struct {
	f            audit.Filter
	since, until string
}

func (ff *filterFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&ff.f.Digest, "digest", "", "subject digest (sha256:...)")
	fs.StringVar(&ff.f.Repository, "repository", "", "subject or target repository")
	fs.StringVar(&ff.f.Action, "action", "", "push, promote, admit, break-glass or delete")
	fs.StringVar(&ff.f.Verdict, "verdict", "", "allow, deny or error")
	fs.StringVar(&ff.f.Actor, "actor", "", "identity, Kubernetes user or service account")
	fs.StringVar(&ff.f.PolicyRevision, "policy-revision", "", "policy bundle revision")
	fs.StringVar(&ff.f.Namespace, "namespace", "", "target namespace")
	fs.StringVar(&ff.since, "since", "", "from this time: RFC 3339, or a duration ago (24h)")
	fs.StringVar(&ff.until, "until", "", "before this time: RFC 3339, or a duration ago")
}

func (ff *filterFlags) filter(now time.Time) (audit.Filter, error) {
	f := ff.f
	var err error
	if f.Since, err = parseWhen(ff.since, now); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseWhen(ff.until, now); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	// The same validation as the API's.
	if _, err := httpapi.ParseFilter(httpapi.FilterValues(f)); err != nil {
		return f, err
	}
	return f, nil
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time or a duration", s)
	}
	return t, nil
}

func (c *auditCLI) query(ctx context.Context, args []string) error {
	fs := c.flags("query")
	var ff filterFlags
	ff.add(fs)
	output := fs.String("output", "table", "table, json or csv")
	limit := fs.Int("limit", 100, "at most this many records, newest first (0: all)")
	asc := fs.Bool("oldest-first", false, "list oldest first")
	if err := parseAuditFlags(c, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" && *output != "csv" {
		return fmt.Errorf("--output %q: want table, json or csv", *output)
	}
	f, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	f.Ascending = *asc
	src, closeSrc, err := c.open(ctx, false)
	if err != nil {
		return err
	}
	defer closeSrc()
	var entries []audit.Entry
	for {
		f.Limit = audit.MaxLimit
		if *limit > 0 {
			f.Limit = min(audit.MaxLimit, *limit-len(entries))
		}
		p, err := src.Search(ctx, f)
		if err != nil {
			return err
		}
		entries = append(entries, p.Entries...)
		if p.Next == "" || (*limit > 0 && len(entries) >= *limit) {
			break
		}
		if f.After, err = audit.ParseCursor(p.Next); err != nil {
			return err
		}
	}
	return printEntries(c.stdout, *output, entries)
}

func (c *auditCLI) running(ctx context.Context, args []string) error {
	fs := c.flags("running")
	ns := fs.String("namespace", "", "only this Kubernetes namespace")
	output := fs.String("output", "table", "table, json or csv")
	if err := parseAuditFlags(c, args); err != nil {
		return err
	}
	src, closeSrc, err := c.open(ctx, false)
	if err != nil {
		return err
	}
	defer closeSrc()
	entries, err := src.Running(ctx, *ns)
	if err != nil {
		return err
	}
	return printEntries(c.stdout, *output, entries)
}

func (c *auditCLI) verify(ctx context.Context, args []string) error {
	c.flags("verify")
	if err := parseAuditFlags(c, args); err != nil {
		return err
	}
	src, closeSrc, err := c.open(ctx, true)
	if err != nil {
		return err
	}
	defer closeSrc()
	rep, err := src.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "audit log verified: %d records, root %s, %d checkpoints (latest covers %d)\n",
		rep.Size, base64.StdEncoding.EncodeToString(rep.Root), rep.Checkpoints, rep.LatestCheckpoint)
	if rep.Unanchored > 0 {
		fmt.Fprintf(c.stdout, "warning: the last %d records are not covered by a signed checkpoint yet\n", rep.Unanchored)
	}
	return nil
}

func (c *auditCLI) export(ctx context.Context, args []string) error {
	fs := c.flags("export")
	var ff filterFlags
	ff.add(fs)
	if err := parseAuditFlags(c, args); err != nil {
		return err
	}
	f, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	src, closeSrc, err := c.open(ctx, false)
	if err != nil {
		return err
	}
	defer closeSrc()
	return src.Export(ctx, c.stdout, f)
}

func (c *auditCLI) prove(ctx context.Context, args []string) error {
	fs := c.flags("prove")
	index := fs.String("index", "", "the record's index (required)")
	treeSize := fs.Uint64("tree-size", 0, "prove against the checkpoint of this size (default: the latest)")
	if err := parseAuditFlags(c, args); err != nil {
		return err
	}
	i, err := strconv.ParseUint(*index, 10, 64)
	if err != nil {
		return errors.New("--index N is required (a record index)")
	}
	src, closeSrc, err := c.open(ctx, true)
	if err != nil {
		return err
	}
	defer closeSrc()
	p, err := src.Prove(ctx, i, *treeSize)
	if err != nil {
		return err
	}
	if p.Proof == nil {
		return fmt.Errorf("record %d is not covered by a signed checkpoint yet: try again after the next one", i)
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return err
	}
	cp, err := audit.VerifyProved(p, c.verifier)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "record %d is included in the checkpoint of %d records signed by %s\n", i, cp.Size, cp.Origin)
	return nil
}

var auditColumns = []string{"INDEX", "TIME", "ACTION", "VERDICT", "REPOSITORY", "DIGEST", "TARGET", "ACTOR", "POLICY", "REASONS"}

func auditRow(e audit.Entry, short bool) []string {
	r := e.Record
	target := r.Target.Repository
	if r.Target.Kind != "" {
		target = r.Target.Namespace + "/" + r.Target.Kind + "/" + r.Target.Name
	} else if target == "" {
		target = r.Target.Namespace
	}
	actor := strings.Join(nonEmpty(r.Actor.Identity, r.Actor.KubernetesUser, r.Actor.ServiceAccount), ",")
	reasons := strings.Join(r.Reasons, "; ")
	if r.Error != "" {
		reasons = strings.Join(nonEmpty(reasons, "error: "+r.Error), "; ")
	}
	if r.BreakGlassJustification != "" {
		reasons = strings.Join(nonEmpty(reasons, "break-glass: "+r.BreakGlassJustification), "; ")
	}
	if r.Enforcement != "" {
		// Admitted whatever the verdict (audit running lists it).
		reasons = strings.Join(nonEmpty("enforcement: "+r.Enforcement, reasons), "; ")
	}
	digest, policy := r.Subject.Digest, r.PolicyRevision
	if short {
		digest, policy = shorten(digest), shorten(policy)
	}
	return []string{strconv.FormatUint(e.Index, 10), r.Time.Format(time.RFC3339), r.Action, r.Verdict,
		r.Subject.Repository, digest, target, actor, policy, reasons}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// shorten keeps "sha256:" and 12 hex digits, as docker does.
func shorten(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

func printEntries(w io.Writer, output string, entries []audit.Entry) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if entries == nil {
			entries = []audit.Entry{}
		}
		return enc.Encode(entries)
	case "csv":
		cw := csv.NewWriter(w)
		header := make([]string, len(auditColumns))
		for i, c := range auditColumns {
			header[i] = strings.ToLower(c)
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		for _, e := range entries {
			if err := cw.Write(auditRow(e, false)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(auditColumns, "\t"))
		for _, e := range entries {
			fmt.Fprintln(tw, strings.Join(auditRow(e, true), "\t"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("--output %q: want table, json or csv", output)
}

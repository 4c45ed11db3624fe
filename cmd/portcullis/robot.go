package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/registry/auth"
	"github.com/portcullis-dev/portcullis/registry/quota"
)

const robotUsage = `usage: portcullis robot <create|list|revoke> [flags]

Robot accounts are named, scoped, expiring credentials for CI. They are
kept in <data>/auth.db (only a hash of each token); a running server sees
changes within seconds.

  create --name NAME --scope NS=ROLE[,ROLE] [--scope ...] [--expires 2160h]
         prints the token once: log in with user robot$NAME and the token
  list   every robot, revoked and expired ones included
  revoke NAME

flags:
`

func robotCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	c := newCommand("robot "+sub, robotUsage, stdout, stderr)
	fs := c.fs
	configPath := fs.String("config", "", "path to portcullis.yaml (where the server keeps its robots; see docs/access-control.md)")
	data := fs.String("data", "", "data directory (default ./portcullis-data)")
	name := fs.String("name", "", "create: the robot's name (lower case, digits, . _ -)")
	var scopes stringList
	fs.Var(&scopes, "scope", "create: NAMESPACE=ROLE[,ROLE] (roles: pull, push, promote, delete; audit-read, policy-admin on *); repeatable")
	expires := fs.Duration("expires", 90*24*time.Hour, "create: lifetime of the token; 0 never expires")
	description := fs.String("description", "", "create: what the robot is for")
	output := fs.String("output", "text", "list: text or json")
	var maxPos int
	switch sub {
	case "create", "revoke":
		maxPos = 1
	case "list":
	case "-h", "--help", "help":
		c.name = "robot"
		c.printUsage(stdout)
		return exitOK
	case "":
		c.name = "robot"
		return c.usageError("want a subcommand: create, list or revoke")
	default:
		c.name = "robot"
		return c.usageError("unknown subcommand %q", sub)
	}
	pos, code, ok := c.parse(args[1:], 0, maxPos)
	if !ok {
		return code
	}
	fail := c.fail
	cfg, err := offlineConfig(*configPath, *data)
	if err != nil {
		return fail(err)
	}
	if err := robotStore(cfg, *configPath != "", sub == "create"); err != nil {
		return fail(err)
	}
	robots, err := openRobots(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer robots.Close()
	switch sub {
	case "create":
		if *name == "" && len(pos) == 1 {
			*name, pos = pos[0], nil
		}
		if *name == "" || len(pos) > 0 {
			return fail(errors.New("create: give --name NAME and at least one --scope NS=ROLE"))
		}
		sc, err := auth.ParseScopes(scopes)
		if err != nil {
			return fail(err)
		}
		if *expires < 0 {
			return fail(errors.New("--expires must not be negative"))
		}
		token, r, err := robots.Create(ctx, *name, sc, *expires, *description)
		if err != nil {
			return fail(err)
		}
		exp := "never"
		if !r.ExpiresAt.IsZero() {
			exp = r.ExpiresAt.UTC().Format(time.RFC3339)
		}
		where := ""
		if *configPath == "" {
			// Without the server's configuration this is <data>/auth.db,
			// which a server keeping its metadata in PostgreSQL never reads.
			where = fmt.Sprintf(" in %s/%s (no --config: a server whose metadata is in PostgreSQL keeps its robots there, give --config)", cfg.Data, auth.DBFile)
		}
		fmt.Fprintf(stderr, "robot %s created%s (id %s, expires %s); the token is shown once:\n", r.Name, where, r.ID, exp)
		fmt.Fprintln(stdout, token)
		return 0
	case "list":
		if len(pos) > 0 {
			return fail(fmt.Errorf("list takes no arguments, got %q", pos))
		}
		l, err := robots.List(ctx)
		if err != nil {
			return fail(err)
		}
		if *output == "json" {
			if l == nil {
				l = []*auth.Robot{}
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(l)
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tSCOPES\tCREATED\tEXPIRES\tSTATE")
		now := time.Now()
		for _, r := range l {
			var sc []string
			for _, s := range r.Scopes {
				roles := make([]string, len(s.Roles))
				for i, ro := range s.Roles {
					roles[i] = string(ro)
				}
				sc = append(sc, s.Namespace+"="+strings.Join(roles, ","))
			}
			exp, state := "never", "active"
			if !r.ExpiresAt.IsZero() {
				exp = r.ExpiresAt.UTC().Format(time.RFC3339)
			}
			switch {
			case !r.RevokedAt.IsZero():
				state = "revoked " + r.RevokedAt.UTC().Format(time.RFC3339)
			case !r.Active(now):
				state = "expired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", auth.RobotPrefix+r.Name, r.ID, strings.Join(sc, " "), r.CreatedAt.UTC().Format(time.RFC3339), exp, state)
		}
		_ = tw.Flush()
		return 0
	case "revoke":
		if len(pos) != 1 {
			return fail(errors.New("revoke: give the robot's name"))
		}
		if err := robots.Revoke(ctx, pos[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "robot %s revoked\n", strings.TrimPrefix(pos[0], auth.RobotPrefix))
		return 0
	}
	return c.usageError("unknown subcommand %q", sub)
}

const quotaUsage = `usage: portcullis quota [--data DIR] [--config FILE] [--output text|json]

Prints the storage each namespace uses (the distinct blobs linked into its
repositories, plus their manifests) and its quota from portcullis.yaml.
Namespaces are the quotas' and the first path segment of every repository.
`

func quotaCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("quota", quotaUsage, stdout, stderr)
	configPath := c.fs.String("config", "", "path to portcullis.yaml (optional; its metadata database is the one read)")
	data := c.fs.String("data", "", "data directory (default ./portcullis-data)")
	output := c.fs.String("output", "text", "text or json")
	if _, code, ok := c.parse(args, 0, 0); !ok {
		return code
	}
	fail := c.fail
	cfg, err := offlineConfig(*configPath, *data)
	if err != nil {
		return fail(err)
	}
	if err := serverMetadata(cfg); err != nil {
		return fail(err)
	}
	meta, err := openMetadata(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer meta.Close()
	repos, err := meta.ListRepositories(ctx, "", -1)
	if err != nil {
		return fail(err)
	}
	seen := map[string]bool{}
	var namespaces []string
	for _, r := range repos {
		ns, _, _ := strings.Cut(r, "/")
		if !seen[ns] {
			seen[ns] = true
			namespaces = append(namespaces, ns)
		}
	}
	rules, err := cfg.Quotas.Rules()
	if err != nil {
		return fail(fmt.Errorf("config: quotas%w", err))
	}
	q, err := quota.New(rules, meta)
	if err != nil {
		return fail(err)
	}
	usage, err := q.Report(ctx, namespaces)
	if err != nil {
		return fail(err)
	}
	if *output == "json" {
		if usage == nil {
			usage = []quota.Usage{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(usage)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tUSED\tQUOTA\tUSE%")
	for _, u := range usage {
		limit, pct := "-", "-"
		if u.Limit > 0 {
			limit, pct = quota.FormatBytes(u.Limit), fmt.Sprintf("%.0f%%", float64(u.Used)*100/float64(u.Limit))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Namespace, quota.FormatBytes(u.Used), limit, pct)
	}
	_ = tw.Flush()
	return 0
}

// robotStore checks where the robots are before opening them. With
// PostgreSQL metadata they are in its database (--config says so). With
// SQLite they are in <data>/auth.db: without --config, --data must be the
// data directory of a server with SQLite metadata (metadata.db in it),
// since a server keeping metadata in PostgreSQL never reads auth.db and a
// robot written there would silently not exist; with --config, create
// may make the data directory of a server not started yet (so that it
// starts with authentication on).
func robotStore(cfg *Config, withConfig, create bool) error {
	switch {
	case cfg.Metadata.Driver == "postgres":
		return nil
	case withConfig && create:
		return dataDir(cfg.Data, true)
	case withConfig:
		return dataDir(cfg.Data, false)
	}
	if _, err := os.Stat(cfg.Metadata.SQLite.Path); err == nil {
		return nil
	}
	if err := dataDir(cfg.Data, false); err != nil {
		return err
	}
	return fmt.Errorf("%s holds no metadata.db, so it is not the data directory of a server keeping its metadata in SQLite: give the server's --config (with PostgreSQL metadata, robots are kept in that database)", cfg.Data)
}

// offlineConfig is the configuration of a command that works on a data
// directory (--config FILE, --data DIR overriding its data).
func offlineConfig(configPath, data string) (*Config, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	if data != "" {
		cfg.Data = data
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return cfg, nil
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/portcullis-dev/portcullis/scanner/trivy"
)

const dbUsage = `usage: portcullis db <import|status> [flags]

  import FILE|DIR|REF  store a vulnerability database: Trivy's db.tar.gz,
                       a directory with trivy.db and metadata.json, or the
                       OCI artifact Trivy publishes (e.g. mirrored into this
                       registry with oras or crane)
  status               print the stored database's version, age and source

flags (both):
`

// dbFlags locate the database: --db, else the config file's scanner.db,
// else <data>/trivy/db.
type dbFlags struct {
	configPath, data, db *string
}

func addDBFlags(fs *flag.FlagSet) dbFlags {
	return dbFlags{
		configPath: fs.String("config", "", "path to portcullis.yaml (optional)"),
		data:       fs.String("data", "", "data directory (default ./portcullis-data)"),
		db:         fs.String("db", "", "vulnerability database directory (default <data>/trivy/db)"),
	}
}

// config returns the configuration; create lets a missing data directory
// be made (import, before a server's first start) when the database is in
// it.
func (f dbFlags) config(create bool) (*Config, error) {
	cfg, err := loadConfig(*f.configPath)
	if err != nil {
		return nil, err
	}
	if *f.data != "" {
		cfg.Data = *f.data
	}
	if *f.db != "" {
		cfg.Scanner.DB = *f.db
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Scanner.DB == filepath.Join(cfg.Data, "trivy", "db") {
		if err := dataDir(cfg.Data, create); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func dbCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	c := newCommand("db "+sub, dbUsage, stdout, stderr)
	f := addDBFlags(c.fs)
	insecure := c.fs.Bool("allow-insecure-registry", false, "import: reach the registry over plain HTTP (loopback registries always are)")
	output := c.fs.String("output", "text", "text or json")
	switch sub {
	case "import":
		pos, code, ok := c.parse(args[1:], 1, 1)
		if !ok {
			return code
		}
		cfg, err := f.config(true)
		if err != nil {
			return c.fail(err)
		}
		cliLogger(stderr)
		st, err := trivy.Import(ctx, cfg.Scanner.DB, pos[0], trivy.ImportOptions{AllowInsecureRegistry: *insecure})
		if err != nil {
			return c.fail(err)
		}
		return c.exit(printStatus(stdout, st, *output, time.Duration(cfg.Scanner.MaxAge)))
	case "status":
		if _, code, ok := c.parse(args[1:], 0, 0); !ok {
			return code
		}
		cfg, err := f.config(false)
		if err != nil {
			return c.fail(err)
		}
		st, err := trivy.ReadStatus(cfg.Scanner.DB)
		if err != nil {
			return c.fail(err)
		}
		if err := printStatus(stdout, st, *output, time.Duration(cfg.Scanner.MaxAge)); err != nil {
			return c.fail(err)
		}
		if maxAge := time.Duration(cfg.Scanner.MaxAge); st.Age > maxAge {
			fmt.Fprintf(stderr, "portcullis db status: the database is %s old, over scanner.maxAge %s: scans will fail\n", st.Age.Round(time.Second), maxAge)
			return exitDenied
		}
		return exitOK
	case "-h", "--help", "help":
		c.name = "db"
		c.printUsage(stdout)
		return exitOK
	case "":
		c.name = "db"
		return c.usageError("want a subcommand: import or status")
	default:
		c.name = "db"
		return c.usageError("unknown subcommand %q", sub)
	}
}

// statusJSON is `db status --output json`: the age as a Go duration
// string and in whole seconds, not in nanoseconds.
type statusJSON struct {
	trivy.Status
	Age        string `json:"age"`
	AgeSeconds int64  `json:"ageSeconds"`
	MaxAge     string `json:"maxAge"`
	Fresh      bool   `json:"fresh"`
}

func printStatus(w io.Writer, st trivy.Status, output string, maxAge time.Duration) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(statusJSON{Status: st, Age: st.Age.Round(time.Second).String(), AgeSeconds: int64(st.Age / time.Second), MaxAge: maxAge.String(), Fresh: st.Age <= maxAge})
	case "text":
	default:
		return fmt.Errorf("--output %q: want text or json", output)
	}
	fresh := "ok"
	if st.Age > maxAge {
		fresh = "TOO OLD (max " + maxAge.String() + ")"
	}
	_, err := fmt.Fprintf(w, "directory:  %s\nversion:    %d\nbuilt at:   %s\nage:        %s (%s)\nsource:     %s\ndigest:     %s\n",
		st.Dir, st.Version, st.BuiltAt.UTC().Format(time.RFC3339), st.Age, fresh, st.Source, st.Digest)
	if err == nil && !st.ImportedAt.IsZero() {
		_, err = fmt.Fprintf(w, "imported:   %s\n", st.ImportedAt.UTC().Format(time.RFC3339))
	}
	return err
}

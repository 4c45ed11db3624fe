package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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

func (f dbFlags) config() (*Config, error) {
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
	return cfg, nil
}

func dbCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dbUsage)
		return errors.New("want a subcommand: import or status")
	}
	fs := flag.NewFlagSet("db "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dbUsage); fs.PrintDefaults() }
	f := addDBFlags(fs)
	insecure := fs.Bool("allow-insecure-registry", false, "import: reach the registry over plain HTTP (loopback registries always are)")
	output := fs.String("output", "text", "text or json")
	switch args[0] {
	case "import":
		src, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		cfg, err := f.config()
		if err != nil {
			return err
		}
		cliLogger(stderr)
		st, err := importDB(ctx, cfg.Scanner.DB, src, *insecure)
		if err != nil {
			return err
		}
		return printStatus(stdout, st, *output, time.Duration(cfg.Scanner.MaxAge))
	case "status":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return fmt.Errorf("status takes no arguments, got %q", fs.Args())
		}
		cfg, err := f.config()
		if err != nil {
			return err
		}
		st, err := trivy.ReadStatus(cfg.Scanner.DB)
		if err != nil {
			return err
		}
		if err := printStatus(stdout, st, *output, time.Duration(cfg.Scanner.MaxAge)); err != nil {
			return err
		}
		if maxAge := time.Duration(cfg.Scanner.MaxAge); st.Age > maxAge {
			return fmt.Errorf("the database is %s old, over scanner.maxAge %s: scans will fail", st.Age, maxAge)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, dbUsage)
		return nil
	default:
		fmt.Fprint(stderr, dbUsage)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
}

// importDB imports src: an existing file or directory, else an OCI
// reference to Trivy's DB artifact.
func importDB(ctx context.Context, dst, src string, insecure bool) (trivy.Status, error) {
	if fi, err := os.Stat(src); err == nil {
		if fi.IsDir() {
			return trivy.ImportDir(ctx, dst, src)
		}
		f, err := os.Open(src)
		if err != nil {
			return trivy.Status{}, err
		}
		defer f.Close()
		return trivy.ImportArchive(ctx, dst, f, src)
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(src, opts...)
	if err != nil {
		return trivy.Status{}, fmt.Errorf("%s is neither a file nor an image reference: %w", src, err)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx))
	if err != nil {
		return trivy.Status{}, fmt.Errorf("db import %s: %w", src, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return trivy.Status{}, fmt.Errorf("db import %s: not an OCI manifest: %w", src, err)
	}
	if m.Config.MediaType != trivy.MediaTypeDBConfig {
		return trivy.Status{}, fmt.Errorf("db import %s: config media type %q, want %q: not a Trivy DB artifact", src, m.Config.MediaType, trivy.MediaTypeDBConfig)
	}
	var layer *v1.Descriptor
	for i := range m.Layers {
		if m.Layers[i].MediaType == trivy.MediaTypeDBLayer {
			layer = &m.Layers[i]
			break
		}
	}
	if layer == nil {
		return trivy.Status{}, fmt.Errorf("db import %s: no layer of type %s", src, trivy.MediaTypeDBLayer)
	}
	l, err := remote.Layer(ref.Context().Digest(layer.Digest.String()), remote.WithContext(ctx))
	if err != nil {
		return trivy.Status{}, fmt.Errorf("db import %s: %w", src, err)
	}
	rc, err := l.Compressed() // verified against the digest as it is read
	if err != nil {
		return trivy.Status{}, fmt.Errorf("db import %s: %w", src, err)
	}
	defer rc.Close()
	return trivy.ImportArchive(ctx, dst, rc, ref.Context().Name()+"@"+desc.Digest.String())
}

func printStatus(w io.Writer, st trivy.Status, output string, maxAge time.Duration) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
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

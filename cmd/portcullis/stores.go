package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	s3 "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/registry/auth"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata/postgres"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlite"
	"github.com/portcullis-dev/portcullis/registry/metadata/sqlstore"
)

func (c *S3Config) defaults() {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccessKey == "" {
		c.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if c.SecretKey == "" {
		c.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
}

// dataDir checks that the data directory dir exists. With create (serve,
// and robot create with --config), a missing one is made when its parent
// exists: a mistyped path is an error, not a new tree of directories.
func dataDir(dir string, create bool) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("data directory %s is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("data directory: %w", err)
	case !create:
		return fmt.Errorf("data directory %s does not exist (portcullis serve --data %s creates it; give the server's --data or --config)", dir, dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return fmt.Errorf("data directory %s does not exist, nor its parent %s: create the parent first (only the data directory itself is created)", dir, parent)
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// serverMetadata checks, for a command that works on a server's stores
// offline (gc, quota, robot), that the configured metadata database is
// there: with SQLite, opening a missing file would create an empty one and
// answer about nothing.
func serverMetadata(cfg *Config) error {
	if cfg.Metadata.Driver == "postgres" {
		return nil
	}
	path := cfg.Metadata.SQLite.Path
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("metadata database: %w", err)
	}
	if err := dataDir(cfg.Data, false); err != nil {
		return err
	}
	return fmt.Errorf("no metadata database %s: %s is not the data directory of a portcullis server with SQLite metadata (give the server's --data, or its --config)", path, cfg.Data)
}

// openMetadata opens the configured metadata database.
func openMetadata(ctx context.Context, cfg *Config) (*sqlstore.Store, error) {
	if cfg.Metadata.Driver == "postgres" {
		return postgres.Open(ctx, cfg.Metadata.Postgres.DSN)
	}
	return sqlite.Open(ctx, cfg.Metadata.SQLite.Path)
}

// openBlobs opens the configured blob storage.
func openBlobs(ctx context.Context, cfg *Config) (*blobstore.Store, error) {
	switch cfg.Storage.Driver {
	case "inmemory":
		return blobstore.New(inmemory.New()), nil
	case "s3":
		c := cfg.Storage.S3
		params := map[string]any{
			"bucket":         c.Bucket,
			"region":         c.Region,
			"accesskey":      c.AccessKey,
			"secretkey":      c.SecretKey,
			"rootdirectory":  c.RootDirectory,
			"regionendpoint": c.Endpoint,
			"forcepathstyle": c.Endpoint != "",
			"secure":         true,
		}
		d, err := s3.FromParameters(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("storage s3: %w", err)
		}
		var opts []blobstore.Option
		if c.Redirect {
			opts = append(opts, blobstore.WithRedirects())
		}
		return blobstore.New(d, opts...), nil
	}
	root := cfg.Storage.Filesystem.RootDirectory
	return blobstore.New(filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}), blobstore.WithLocalRoot(root)), nil
}

// openAudit opens the decision history beside the metadata: in
// <data>/audit.db with SQLite, in the same database with PostgreSQL.
func openAudit(ctx context.Context, cfg *Config, opts ...audit.Option) (*audit.Log, error) {
	if cfg.Metadata.Driver == "postgres" {
		return audit.OpenPostgres(ctx, cfg.Metadata.Postgres.DSN, opts...)
	}
	return audit.OpenSQLite(ctx, filepath.Join(cfg.Data, "audit.db"), opts...)
}

// openRobots opens the robot accounts: in the PostgreSQL database the
// replicas share when metadata is there (so a robot created on one works
// on all), else in <data>/auth.db.
func openRobots(ctx context.Context, cfg *Config) (*auth.Robots, error) {
	if cfg.Metadata.Driver == "postgres" {
		db, err := sqldb.OpenPostgres(ctx, cfg.Metadata.Postgres.DSN, 4)
		if err != nil {
			return nil, err
		}
		return auth.OpenRobotsDB(ctx, db)
	}
	return auth.OpenRobots(ctx, filepath.Join(cfg.Data, auth.DBFile))
}

// leaderDB is the database whose locks elect the replica that runs the
// deployment's background work.
func leaderDB(meta *sqlstore.Store) *sqldb.DB { return meta.DB() }

package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/yamlconf"
	"github.com/portcullis-dev/portcullis/internal/yamltypes"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/quota"
	"github.com/portcullis-dev/portcullis/scanner"
)

// Duration is the shared YAML duration ("30s") of internal/yamltypes, for
// the sections still declared here until their packages own them.
type Duration = yamltypes.Duration

// Config is portcullis.yaml. Every field is optional; docs/configuration.md
// documents each one and its default. Unknown fields are an error. Fields
// tagged yamlconf:"path" are file paths: relative ones are relative to
// the file's directory (TestConfigPathsRelative sets each one).
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:5000.
	Addr string `json:"addr"`
	// Data is the directory for blobs and the metadata database. Default
	// ./portcullis-data (of the working directory, as --data).
	Data string `json:"data" yamlconf:"path"`
	// Log configures logging.
	Log LogConfig `json:"log"`
	// Storage selects where blob bytes live.
	Storage StorageConfig `json:"storage"`
	// Metadata selects the metadata database.
	Metadata MetadataConfig `json:"metadata"`
	// ShutdownTimeout is how long in-flight requests may run after SIGTERM. Default 30s.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// Trust names the authorities whose signatures count (trust.go).
	Trust TrustConfig `json:"trust"`
	// Gate says which namespaces are protected (gate.Config).
	Gate gate.Config `json:"gate"`
	// Webhook serves Kubernetes admission (webhook.go).
	Webhook WebhookConfig `json:"webhook"`
	// Policies maps targets to policy bundles (policy.Config).
	Policies policy.Config `json:"policies"`
	// Audit configures the decision history (docs/audit.md).
	Audit audit.Config `json:"audit"`
	// Scanner configures vulnerability scanning (scan.go).
	Scanner scanner.Config `json:"scanner"`
	// Auth is access control (access.go, docs/access-control.md).
	Auth AuthConfig `json:"auth"`
	// Quotas limit the storage of namespaces.
	Quotas quota.Config `json:"quotas,omitempty"`
	// TLS is the registry listener's certificate.
	TLS TLSConfig `json:"tls"`
	// GC configures online garbage collection (gc.go).
	GC registry.GCConfig `json:"gc"`
	// Tracing exports OpenTelemetry traces (tracing.go).
	Tracing TracingConfig `json:"tracing"`

	// src says where each setting was read, to place the errors of
	// settings checked after loading; nil without a file.
	src *yamlconf.Source
}

// at places err, whose message names the setting, at the line of the
// setting at path.
func (c *Config) at(path string, err error) error {
	if c.src == nil {
		return fmt.Errorf("config: %w", err)
	}
	return c.src.At(path, err)
}

// inSection places err, a package's Config.Validate error about its
// section at path, at the line of the setting it names.
func (c *Config) inSection(path string, err error) error {
	if fe, ok := errors.AsType[*yamltypes.FieldError](err); ok {
		sep := "."
		if strings.HasPrefix(fe.Path, "[") {
			sep = ""
		}
		return c.errorf(path+sep+fe.Path, "%w", fe.Err)
	}
	return c.errorf(path, "%w", err)
}

// errorf is an error about the setting at path ("log.format"), placed at
// its line in portcullis.yaml when the file set it.
func (c *Config) errorf(path, format string, args ...any) error {
	if c.src == nil {
		return fmt.Errorf("config: %s: %w", path, fmt.Errorf(format, args...))
	}
	return c.src.Errorf(path, format, args...)
}

// LogConfig configures log/slog.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `json:"level"`
	// Format is text or json. Default text.
	Format string `json:"format"`
}

// StorageConfig selects the blob storage driver.
type StorageConfig struct {
	// Driver is filesystem (default), s3 (S3-compatible object storage,
	// which replicas share) or inmemory (tests only: lost on exit).
	Driver string `json:"driver"`
	// S3 configures the s3 driver (distribution's S3 driver).
	S3 S3Config `json:"s3"`
	// Filesystem configures the filesystem driver.
	Filesystem struct {
		// RootDirectory defaults to <data>/blobs.
		RootDirectory string `json:"rootDirectory" yamlconf:"path"`
	} `json:"filesystem"`
}

// S3Config is the s3 storage driver's section.
type S3Config struct {
	// Bucket must exist.
	Bucket string `json:"bucket"`
	// Region defaults to us-east-1.
	Region string `json:"region"`
	// Endpoint is the URL of an S3-compatible server (path-style
	// addressing); empty means AWS.
	Endpoint string `json:"endpoint"`
	// AccessKey and SecretKey default to $AWS_ACCESS_KEY_ID and
	// $AWS_SECRET_ACCESS_KEY.
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
	// RootDirectory is a key prefix inside the bucket.
	RootDirectory string `json:"rootDirectory"`
	// Redirect answers blob GETs with a redirect to a pre-signed URL, so
	// clients download from the object store directly.
	Redirect bool `json:"redirect"`
}

// MetadataConfig selects the metadata database.
type MetadataConfig struct {
	// Driver is sqlite (default) or postgres (for several replicas; the
	// decision history then lives in the same database).
	Driver string `json:"driver"`
	// Postgres configures the postgres driver.
	Postgres struct {
		// DSN is a libpq URL or key=value string; default
		// $PORTCULLIS_POSTGRES_DSN.
		DSN string `json:"dsn"`
	} `json:"postgres"`
	// SQLite configures the SQLite database.
	SQLite struct {
		// Path defaults to <data>/metadata.db.
		Path string `json:"path" yamlconf:"path"`
	} `json:"sqlite"`
}

// loadConfig reads path (if not empty) strictly: an unknown field, a
// value of the wrong type or an unknown enumeration word is an error
// "FILE:LINE:COL: field.path: message". Relative paths are made relative
// to the file's directory. defaults fills in the rest.
func loadConfig(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		src, err := yamlconf.Decode(b, c, yamlconf.Options{File: path, Base: filepath.Dir(path)})
		if err != nil {
			return nil, err
		}
		c.src = src
	}
	return c, nil
}

// negativeDuration finds a negative Duration in v (a Config or part of
// one, at path): none of the settings has a meaning for one, and a
// default silently taking its place would hide the typo.
func negativeDuration(v reflect.Value, path string) (string, Duration, bool) {
	if d, ok := v.Interface().(Duration); ok {
		return path, d, d < 0
	}
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return negativeDuration(v.Elem(), path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if p, d, ok := negativeDuration(v.Field(i), join(name)); ok {
				return p, d, ok
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if p, d, ok := negativeDuration(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, d, ok
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if p, d, ok := negativeDuration(v.MapIndex(k), join(fmt.Sprint(k.Interface()))); ok {
				return p, d, ok
			}
		}
	}
	return "", 0, false
}

// defaults fills unset fields; call it after flags override the file.
func (c *Config) defaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:5000"
	}
	if c.Data == "" {
		c.Data = "portcullis-data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if _, err := logLevel(c.Log.Level); err != nil {
		return c.errorf("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Storage.Driver == "" {
		c.Storage.Driver = "filesystem"
	}
	if c.Storage.Filesystem.RootDirectory == "" {
		c.Storage.Filesystem.RootDirectory = filepath.Join(c.Data, "blobs")
	}
	if c.Metadata.Driver == "" {
		c.Metadata.Driver = "sqlite"
	}
	if c.Metadata.SQLite.Path == "" {
		c.Metadata.SQLite.Path = filepath.Join(c.Data, "metadata.db")
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(30e9)
	}
	if path, d, ok := negativeDuration(reflect.ValueOf(c).Elem(), ""); ok {
		return c.errorf(path, "%s: a duration must not be negative", time.Duration(d))
	}
	if err := c.Audit.Validate(); err != nil {
		return c.inSection("audit", err)
	}
	c.Gate.Defaults(c.Data)
	c.Scanner.Defaults(c.Data)
	if err := c.Scanner.Validate(); err != nil {
		return c.inSection("scanner", err)
	}
	switch c.Storage.Driver {
	case "filesystem", "inmemory":
	case "s3":
		if c.Storage.S3.Bucket == "" {
			return c.errorf("storage.driver", "s3 needs storage.s3.bucket")
		}
		c.Storage.S3.defaults()
	default:
		return c.errorf("storage.driver", "%q: want filesystem, s3 or inmemory", c.Storage.Driver)
	}
	switch c.Metadata.Driver {
	case "sqlite":
	case "postgres":
		if c.Metadata.Postgres.DSN == "" {
			c.Metadata.Postgres.DSN = os.Getenv("PORTCULLIS_POSTGRES_DSN")
		}
		if c.Metadata.Postgres.DSN == "" {
			return c.errorf("metadata.driver", "postgres needs metadata.postgres.dsn (or $PORTCULLIS_POSTGRES_DSN)")
		}
	default:
		return c.errorf("metadata.driver", "%q: want sqlite or postgres", c.Metadata.Driver)
	}
	if err := c.GC.Validate(); err != nil {
		return c.inSection("gc", err)
	}
	if err := c.Tracing.defaults(c.errorf); err != nil {
		return err
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return c.errorf("log.format", "%q: want text or json", c.Log.Format)
	}
	return c.check()
}

// check validates the settings that serve would otherwise check only when
// it gets to them (or a request would): every command that reads the file
// refuses them at start, at their line.
func (c *Config) check() error {
	if err := c.Gate.Validate(); err != nil {
		return c.inSection("gate", err)
	}
	if err := c.Quotas.Validate(); err != nil {
		return c.inSection("quotas", err)
	}
	for i, g := range c.Auth.Grants {
		if err := g.Validate(); err != nil {
			return c.errorf(fmt.Sprintf("auth.grants[%d]", i), "%w", err)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return c.errorf("tls", "certFile and keyFile go together")
	}
	if (c.Webhook.CertFile == "") != (c.Webhook.KeyFile == "") {
		return c.errorf("webhook", "certFile and keyFile go together")
	}
	if r := c.Auth.Realm; r != "" {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c.errorf("auth.realm", "%q: want the token endpoint's absolute URL, such as https://registry.example.com/portcullis/v1/token", r)
		}
	}
	return nil
}

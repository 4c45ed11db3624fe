package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/portcullis-dev/portcullis/policy"
)

// Config is portcullis.yaml. Every field is optional; docs/configuration.md
// documents each one and its default. Unknown fields are an error.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:5000.
	Addr string `json:"addr"`
	// Data is the directory for blobs and the metadata database. Default ./portcullis-data.
	Data string `json:"data"`
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
	// Gate says which namespaces are protected (gate.go).
	Gate GateConfig `json:"gate"`
	// Webhook serves Kubernetes admission (webhook.go).
	Webhook WebhookConfig `json:"webhook"`
	// Policies maps targets to policy bundles (policy.Config).
	Policies policy.Config `json:"policies"`
	// Audit configures the decision history (docs/audit.md).
	Audit AuditConfig `json:"audit"`
	// Scanner configures vulnerability scanning (scan.go).
	Scanner ScannerConfig `json:"scanner"`
	// Auth is access control (access.go, docs/access-control.md).
	Auth AuthConfig `json:"auth"`
	// Quotas limit the storage of namespaces.
	Quotas []QuotaConfig `json:"quotas,omitempty"`
	// TLS is the registry listener's certificate.
	TLS TLSConfig `json:"tls"`
	// GC configures online garbage collection (gc.go).
	GC GCConfig `json:"gc"`
	// Tracing exports OpenTelemetry traces (tracing.go).
	Tracing TracingConfig `json:"tracing"`
}

// ScannerConfig configures vulnerability scanning (docs/configuration.md).
type ScannerConfig struct {
	// DB is the vulnerability database directory that `portcullis db
	// import` fills. Default <data>/trivy/db.
	DB string `json:"db"`
	// MaxAge is how old the database may be before scans fail. Default 168h.
	MaxAge Duration `json:"maxAge"`
	// Workers is how many background scans run at once. Default 2.
	Workers int `json:"workers"`
	// QueueSize bounds the background scans waiting for a worker. Default 100.
	QueueSize int `json:"queueSize"`
	// ScanOnPush lists the repository prefixes whose pushes are scanned in
	// the background. Default ["staging/"]; [] turns scan on push off.
	ScanOnPush *[]string `json:"scanOnPush"`
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
		RootDirectory string `json:"rootDirectory"`
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
		Path string `json:"path"`
	} `json:"sqlite"`
}

// loadConfig reads path (if not empty) strictly and fills in defaults.
func loadConfig(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		c.Trust.relativeTo(filepath.Dir(path))
		c.policiesRelativeTo(filepath.Dir(path))
		c.authRelativeTo(filepath.Dir(path))
	}
	return c, nil
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
	c.Gate.defaults(c.Data)
	if err := c.Scanner.defaults(c.Data); err != nil {
		return err
	}
	switch c.Storage.Driver {
	case "filesystem", "inmemory":
	case "s3":
		if err := c.Storage.S3.defaults(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("config: storage.driver %q: want filesystem, s3 or inmemory", c.Storage.Driver)
	}
	switch c.Metadata.Driver {
	case "sqlite":
	case "postgres":
		if c.Metadata.Postgres.DSN == "" {
			c.Metadata.Postgres.DSN = os.Getenv("PORTCULLIS_POSTGRES_DSN")
		}
		if c.Metadata.Postgres.DSN == "" {
			return fmt.Errorf("config: metadata.driver postgres needs metadata.postgres.dsn (or $PORTCULLIS_POSTGRES_DSN)")
		}
	default:
		return fmt.Errorf("config: metadata.driver %q: want sqlite or postgres", c.Metadata.Driver)
	}
	if err := c.GC.defaults(); err != nil {
		return err
	}
	if err := c.Tracing.defaults(); err != nil {
		return err
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	return nil
}

// policiesRelativeTo makes relative bundle and webhook file paths relative to dir (the
// configuration file's directory).
func (c *Config) policiesRelativeTo(dir string) {
	fix := func(s *policy.SetConfig) {
		if s.Bundle != "" && !filepath.IsAbs(s.Bundle) && !strings.HasPrefix(s.Bundle, policy.OCIScheme) {
			s.Bundle = filepath.Join(dir, s.Bundle)
		}
	}
	fix(&c.Policies.Default)
	for i := range c.Policies.Sets {
		fix(&c.Policies.Sets[i])
	}
	for _, f := range []*string{&c.Webhook.CertFile, &c.Webhook.KeyFile, &c.Webhook.Auth.ClientCAFile, &c.Webhook.Auth.TokenFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(dir, *f)
		}
	}
	if k := c.Webhook.Kubernetes; k != nil && k.Kubeconfig != "" && !filepath.IsAbs(k.Kubeconfig) {
		k.Kubeconfig = filepath.Join(dir, k.Kubeconfig)
	}
	for i, r := range c.Webhook.Registries {
		if r.DockerConfig != "" && !filepath.IsAbs(r.DockerConfig) {
			c.Webhook.Registries[i].DockerConfig = filepath.Join(dir, r.DockerConfig)
		}
	}
}

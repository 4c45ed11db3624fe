package scanner

import (
	"path/filepath"
	"time"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
)

// DefaultDBMaxAge is how old the vulnerability database may be by default.
// Aqua rebuilds Trivy's every 6 hours; a week leaves room for an
// air-gapped mirror.
const DefaultDBMaxAge = 7 * 24 * time.Hour

// Config is the scanner section of portcullis.yaml
// (docs/configuration.md): the database the scanner reads and the
// background queue that scans on push.
type Config struct {
	// DB is the vulnerability database directory that `portcullis db
	// import` fills. Default <data>/trivy/db.
	DB string `json:"db" yamlconf:"path"`
	// MaxAge is how old the database may be before scans fail. Default 168h.
	MaxAge yamltypes.Duration `json:"maxAge"`
	// Workers is how many background scans run at once. Default 2.
	Workers int `json:"workers"`
	// QueueSize bounds the background scans waiting for a worker. Default 100.
	QueueSize int `json:"queueSize"`
	// ScanOnPush lists the repository prefixes whose pushes are scanned in
	// the background. Default ["staging/"]; [] turns scan on push off.
	ScanOnPush *[]string `json:"scanOnPush"`
}

// Defaults fills in what the section leaves unset; dataDir is the server's
// data directory.
func (c *Config) Defaults(dataDir string) {
	if c.DB == "" {
		c.DB = filepath.Join(dataDir, "trivy", "db")
	}
	if c.MaxAge == 0 {
		c.MaxAge = yamltypes.Duration(DefaultDBMaxAge)
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.QueueSize == 0 {
		c.QueueSize = 100
	}
	if c.ScanOnPush == nil {
		c.ScanOnPush = &[]string{"staging/"}
	}
}

// Validate checks the section; an error is a *yamltypes.FieldError naming
// the setting inside it.
func (c *Config) Validate() error {
	switch {
	case c.MaxAge < 0:
		return yamltypes.Errorf("maxAge", "%s: must be positive", time.Duration(c.MaxAge))
	case c.Workers < 0:
		return yamltypes.Errorf("workers", "%d: must be positive", c.Workers)
	case c.QueueSize < 0:
		return yamltypes.Errorf("queueSize", "%d: must be positive", c.QueueSize)
	}
	return nil
}

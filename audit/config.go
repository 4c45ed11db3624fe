package audit

import (
	"time"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
)

// Config is the audit section of portcullis.yaml (docs/configuration.md).
type Config struct {
	// CheckpointEvery and CheckpointInterval: a signed checkpoint once
	// this many records were appended, or this long after the first
	// record it does not cover yet (defaults 1000 and 1m). A record can be
	// proven once a checkpoint covers it.
	CheckpointEvery    int                `json:"checkpointEvery,omitempty"`
	CheckpointInterval yamltypes.Duration `json:"checkpointInterval,omitempty"`
}

// Validate checks the section; an error is a *yamltypes.FieldError naming
// the setting inside it.
func (c Config) Validate() error {
	switch {
	case c.CheckpointEvery < 0:
		return yamltypes.Errorf("checkpointEvery", "%d: must not be negative", c.CheckpointEvery)
	case c.CheckpointInterval < 0:
		return yamltypes.Errorf("checkpointInterval", "%s: must not be negative", time.Duration(c.CheckpointInterval))
	}
	return nil
}

// Options are the log options the section sets (none when it sets
// nothing: the log's defaults).
func (c Config) Options() []Option {
	if c.CheckpointEvery == 0 && c.CheckpointInterval == 0 {
		return nil
	}
	n, d := c.CheckpointEvery, time.Duration(c.CheckpointInterval)
	if n == 0 {
		n = 1000
	}
	if d == 0 {
		d = time.Minute
	}
	return []Option{WithCheckpointEvery(n, d)}
}

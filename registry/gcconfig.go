package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
)

// DefaultGCAge is the grace period and the upload age of a "gc" section
// that does not set them.
const DefaultGCAge = 24 * time.Hour

// GCConfig is the "gc" section of portcullis.yaml (docs/scale-out.md):
// when the collector runs by itself, what it protects, and which tags the
// retention rules keep. Options turns it into the collector's GCOptions.
type GCConfig struct {
	// Interval runs a collection this often on the replica that leads
	// (default 0: only `portcullis gc` collects).
	Interval yamltypes.Duration `json:"interval,omitempty"`
	// GracePeriod protects anything younger (default 24h; 0s protects
	// nothing, for a registry no one is pushing to).
	GracePeriod *yamltypes.Duration `json:"gracePeriod,omitempty"`
	// UploadMaxAge: older upload sessions are abandoned (default 24h).
	UploadMaxAge yamltypes.Duration `json:"uploadMaxAge,omitempty"`
	// Rate caps deletions per second (default 0: no cap).
	Rate float64 `json:"rate,omitempty"`
	// Retention rules untag what they do not keep.
	Retention []RetentionRule `json:"retention,omitempty"`
}

// Validate checks the section; its errors name the setting
// ("retention[1]", "rate").
func (c GCConfig) Validate() error {
	for _, d := range []struct {
		name string
		d    yamltypes.Duration
	}{{"interval", c.Interval}, {"gracePeriod", c.gracePeriod()}, {"uploadMaxAge", c.UploadMaxAge}} {
		if d.d < 0 {
			return yamltypes.Errorf(d.name, "%s: a duration must not be negative", d.d)
		}
	}
	if c.Rate < 0 {
		return yamltypes.Errorf("rate", "%v: must not be negative", c.Rate)
	}
	for i, r := range c.Retention {
		if err := r.Validate(); err != nil {
			return yamltypes.Errorf(fmt.Sprintf("retention[%d]", i), "%w", err)
		}
	}
	return nil
}

func (c GCConfig) gracePeriod() yamltypes.Duration {
	if c.GracePeriod == nil {
		return yamltypes.Duration(DefaultGCAge)
	}
	return *c.GracePeriod
}

// NeedsAdmissions reports whether a retention rule keeps tags by their
// admissions (keepAdmittedWithin), so that Options needs an Admitted.
func (c GCConfig) NeedsAdmissions() bool {
	for _, r := range c.Retention {
		if r.KeepAdmittedWithin > 0 {
			return true
		}
	}
	return false
}

// Options are the collector's options for this section. admitted answers
// the keepAdmittedWithin rules (the audit log's AdmittedSince); it may be
// nil when NeedsAdmissions is false.
func (c GCConfig) Options(admitted func(ctx context.Context, d digest.Digest, since time.Time) (bool, error), dryRun bool) GCOptions {
	upload := c.UploadMaxAge.D()
	if upload == 0 {
		upload = DefaultGCAge
	}
	return GCOptions{
		GracePeriod:  c.gracePeriod().D(),
		UploadMaxAge: upload,
		Rate:         c.Rate,
		DryRun:       dryRun,
		Retention:    c.Retention,
		Admitted:     admitted,
	}
}

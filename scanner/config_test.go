package scanner

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.Defaults("data")
	if c.DB != filepath.Join("data", "trivy", "db") || time.Duration(c.MaxAge) != DefaultDBMaxAge ||
		c.Workers != 2 || c.QueueSize != 100 || c.ScanOnPush == nil || len(*c.ScanOnPush) != 1 || (*c.ScanOnPush)[0] != "staging/" {
		t.Fatalf("defaults = %+v", c)
	}
	off := []string{}
	set := Config{DB: "/srv/db", MaxAge: yamltypes.Duration(time.Hour), Workers: 4, QueueSize: 10, ScanOnPush: &off}
	want := set
	set.Defaults("data")
	if set.DB != want.DB || set.MaxAge != want.MaxAge || set.Workers != 4 || set.QueueSize != 10 || len(*set.ScanOnPush) != 0 {
		t.Fatalf("Defaults overwrote a setting: %+v", set)
	}
	if err := set.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", set, err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for path, c := range map[string]Config{
		"maxAge":    {MaxAge: yamltypes.Duration(-time.Hour)},
		"workers":   {Workers: -1},
		"queueSize": {QueueSize: -1},
	} {
		err := c.Validate()
		fe, ok := errors.AsType[*yamltypes.FieldError](err)
		if !ok || fe.Path != path {
			t.Errorf("Validate(%+v) = %v, want an error about %s", c, err, path)
		}
	}
}

package gate

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.Defaults("/srv/p")
	want := DefaultConfig()
	if len(c.Staging) != 1 || c.Staging[0] != want.Staging[0] || len(c.Protected) != 1 || c.Protected[0].Prefix != "prod" {
		t.Fatalf("namespaces %+v", c)
	}
	if c.VSAKey != filepath.Join("/srv/p", "vsa.key") || c.EvidenceTimeout.D() != 10*time.Second || c.CacheSize != 4096 ||
		c.CacheTTL.D() != 10*time.Minute || c.VSAMaxAge.D() != 24*time.Hour {
		t.Fatalf("defaults %+v", c)
	}
	set := Config{Protected: []Protected{{Prefix: "live"}}, VSAKey: "/k", CacheTTL: yamltypes.Duration(time.Second)}
	set.Defaults("/srv/p")
	if len(set.Staging) != 0 || set.Protected[0].Prefix != "live" || set.VSAKey != "/k" || set.CacheTTL.D() != time.Second {
		t.Fatalf("set values were replaced: %+v", set)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c          Config
		path, want string
	}{
		{Config{Protected: []Protected{{Prefix: "/"}}}, "protected[0].prefix", "needs a prefix"},
		{Config{Staging: []string{"prod/ci"}, Protected: []Protected{{Prefix: "prod"}}}, "protected[0].prefix", `"prod" overlaps the staging prefix "prod/ci"`},
		{Config{EvidenceTimeout: yamltypes.Duration(-time.Second)}, "evidenceTimeout", "-1s: a duration must not be negative"},
		{Config{CacheTTL: yamltypes.Duration(-time.Second)}, "cacheTTL", "must not be negative"},
		{Config{VSAMaxAge: yamltypes.Duration(-time.Second)}, "vsaMaxAge", "must not be negative"},
		{Config{CacheSize: -1}, "cacheSize", "-1: must not be negative"},
	} {
		err := tc.c.Validate()
		fe, ok := errors.AsType[*yamltypes.FieldError](err)
		if !ok || fe.Path != tc.path || !strings.Contains(fe.Err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s: %s", tc.c, err, tc.path, tc.want)
		}
	}
	d := DefaultConfig()
	d.Defaults("")
	if err := d.Validate(); err != nil {
		t.Fatalf("the default configuration: %v", err)
	}
}

package quota

import (
	"errors"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
)

func TestParseBytes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"1048576": 1 << 20, "500MiB": 500 << 20, "10GB": 10e9, "1.5 KiB": 1536, "0": 0} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ten", "-1", "5XB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q): no error", in)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{512: "512 B", 4096: "4.0 KiB", 1536 << 20: "1.5 GiB"} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (Config{{Namespace: "staging", Size: "10GiB"}, {Namespace: "team/a", Size: "1MB"}}).Validate(); err != nil {
		t.Fatalf("a good section: %v", err)
	}
	for name, tc := range map[string]struct {
		c    Config
		path string
	}{
		"no namespace": {Config{{Size: "1GiB"}}, "[0]"},
		"bad size":     {Config{{Namespace: "staging", Size: "1GiB"}, {Namespace: "prod", Size: "lots"}}, "[1].size"},
		"zero size":    {Config{{Namespace: "staging", Size: "0"}}, "[0].size"},
		"twice":        {Config{{Namespace: "staging", Size: "1GiB"}, {Namespace: "staging/", Size: "2GiB"}}, "[1].namespace"},
		"bad name":     {Config{{Namespace: "Staging!", Size: "1GiB"}}, "[0].namespace"},
	} {
		err := tc.c.Validate()
		fe, ok := errors.AsType[*yamltypes.FieldError](err)
		if !ok || fe.Path != tc.path {
			t.Errorf("%s: %v, want an error at %s", name, err, tc.path)
		}
	}
	if q, err := (Config{}).Open(nil); q != nil || err != nil {
		t.Errorf("an empty section opens %v, %v; want no check", q, err)
	}
}

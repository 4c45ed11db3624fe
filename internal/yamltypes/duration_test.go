package yamltypes

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDurationRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"30s", "1m30s", "0s", "-1s", "24h0m0s"} {
		var d Duration
		if err := json.Unmarshal([]byte(`"`+s+`"`), &d); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		want, _ := time.ParseDuration(s)
		if d.D() != want {
			t.Fatalf("%s: got %s, want %s", s, d, want)
		}
		b, err := json.Marshal(d)
		if err != nil || string(b) != `"`+want.String()+`"` {
			t.Fatalf("%s: marshalled %s, %v", s, b, err)
		}
	}
}

func TestDurationRefuses(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`30`:     `duration: want a string like "30s"`,
		`"soon"`: `time: invalid duration "soon"`,
		`"30"`:   `missing unit`,
	} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

func TestFieldError(t *testing.T) {
	t.Parallel()
	err := Errorf("protected[0].prefix", "is required (%d)", 1)
	var fe *FieldError
	if !errors.As(fmt.Errorf("gate: %w", err), &fe) || fe.Path != "protected[0].prefix" || fe.Err.Error() != "is required (1)" {
		t.Fatalf("%#v", fe)
	}
	if err.Error() != "protected[0].prefix: is required (1)" {
		t.Fatalf("%q", err)
	}
}

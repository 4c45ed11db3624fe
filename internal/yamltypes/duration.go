// Package yamltypes holds what the packages' serialisable Config structs
// share: value types written in portcullis.yaml as text (a Duration is
// "30s"), and FieldError, which places a Validate error at its setting. It
// imports only the standard library, so that every package may use it
// (internal/yamlconf, which decodes the file, links YAML).
package yamltypes

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as "30s" in YAML (and JSON).
type Duration time.Duration

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is d as time.Duration prints it ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalJSON implements json.Unmarshaler: a string that
// time.ParseDuration accepts.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

package yamlconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`want a string like "30s"`)
	}
	v, err := time.ParseDuration(s)
	*d = duration(v)
	return err
}

type mode string

func (m *mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "enforce", "warn", "off":
		*m = mode(b)
		return nil
	}
	return fmt.Errorf("%q: want enforce, warn or off", b)
}

type Embedded struct {
	Shared string `json:"shared"`
}

type logConfig struct {
	Level  string `json:"level"`
	Format string `json:"format"`
}

type item struct {
	Name  string   `json:"name"`
	Keys  []string `json:"keys" yamlconf:"path"`
	Count *int     `json:"count,omitempty"`
}

type config struct {
	Embedded
	Addr       string            `json:"addr"`
	Log        logConfig         `json:"log"`
	Timeout    duration          `json:"timeout"`
	Mode       mode              `json:"mode"`
	Modes      map[string]mode   `json:"modes"`
	Labels     map[string]string `json:"labels"`
	Enabled    bool              `json:"enabled"`
	Ratio      float64           `json:"ratio"`
	Small      int8              `json:"small"`
	Items      []item            `json:"items"`
	File       string            `json:"file" yamlconf:"path"`
	Opt        *string           `json:"opt" yamlconf:"path"`
	Until      time.Time         `json:"until"`
	Plain      string            `json:"plain"`
	Ignored    string            `json:"-"`
	unexported string
}

func TestDecode(t *testing.T) {
	t.Parallel()
	doc := `
shared: s
addr: 127.0.0.1:5000
log: {level: debug, format: json}
timeout: 30s
mode: off
modes: {a: off, b: warn, c: on}
labels: {x: yes, y: 3, z: 1.5}
enabled: true
ratio: 1
small: -8
items:
- {name: one, keys: [k/a.pub, /abs/b.pub, oci://reg/x], count: 2}
file: f.pem
opt: o.pem
until: 2026-12-01T00:00:00Z
plain: rel/not-a-path
`
	var c config
	src, err := Decode([]byte(doc), &c, Options{File: "c.yaml", Base: "/etc/p"})
	if err == nil {
		t.Fatalf("modes.c: on is not a mode, yet decoded: %+v", c)
	}
	if want := `c.yaml:7:29: modes.c: "on": want enforce, warn or off`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	doc = strings.Replace(doc, "c: on", "c: enforce", 1)
	c = config{}
	src, err = Decode([]byte(doc), &c, Options{File: "c.yaml", Base: "/etc/p"})
	if err != nil {
		t.Fatal(err)
	}
	two := 2
	opt := "/etc/p/o.pem"
	want := config{
		Embedded: Embedded{Shared: "s"}, Addr: "127.0.0.1:5000", Log: logConfig{"debug", "json"},
		Timeout: duration(30 * time.Second), Mode: "off", Modes: map[string]mode{"a": "off", "b": "warn", "c": "enforce"},
		Labels: map[string]string{"x": "yes", "y": "3", "z": "1.5"}, Enabled: true, Ratio: 1, Small: -8,
		Items: []item{{Name: "one", Keys: []string{"/etc/p/k/a.pub", "/abs/b.pub", "oci://reg/x"}, Count: &two}},
		File:  "/etc/p/f.pem", Opt: &opt, Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Plain: "rel/not-a-path",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", c, want)
	}
	if p, ok := src.Pos("items[0].keys[1]"); !ok || p != (Pos{13, 31}) {
		t.Fatalf("items[0].keys[1] at %v %v, want 13:31", p, ok)
	}
	if err := src.Errorf("log.format", "%q: want text", "json"); err.Error() != `c.yaml:4:29: log.format: "json": want text` {
		t.Fatalf("Errorf: %q", err)
	}
	if err := src.Errorf("tls.certFile", "needed"); err.Error() != `c.yaml: tls.certFile: needed` {
		t.Fatalf("Errorf of an unset field: %q", err)
	}
	if err := src.At("items[0]", errors.New("items[0] (one) is odd")); err.Error() != `c.yaml:13:3: items[0] (one) is odd` {
		t.Fatalf("At: %q", err)
	}
	if err := (*Source)(nil).Errorf("tls.certFile", "needed"); err.Error() != `tls.certFile: needed` {
		t.Fatalf("Errorf of a nil source: %q", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", "log:\n  lvl: debug\n", "c.yaml:2:3: log.lvl: unknown field (known: level, format)"},
		{"unknown top-level field", "adress: x\n", "c.yaml:1:1: adress: unknown field (known: shared, addr, log, timeout, mode, modes, labels, enabled, ratio, small, items, file, opt, until, plain)"},
		{"json:\"-\" is unknown", "Ignored: x\n", "c.yaml:1:1: Ignored: unknown field"},
		{"unexported is unknown", "unexported: x\n", "c.yaml:1:1: unexported: unknown field"},
		{"case matters", "Addr: x\n", "c.yaml:1:1: Addr: unknown field"},
		{"wrong type: int", "items:\n- name: a\n  count: many\n", `c.yaml:3:10: items[0].count: want an integer, got "many"`},
		{"wrong type: bool", "enabled: off\n", `c.yaml:1:10: enabled: want true or false, got "off"`},
		{"wrong type: string", "addr: [a]\n", "c.yaml:1:7: addr: want a string, got a list"},
		{"wrong type: struct", "log: debug\n", `c.yaml:1:6: log: want a mapping (fields: level, format), got "debug"`},
		{"wrong type: list", "items: {name: a}\n", "c.yaml:1:8: items: want a list, got a mapping"},
		{"overflow", "small: 300\n", "c.yaml:1:8: small: 300 is out of range"},
		{"bad duration", "timeout: soon\n", `c.yaml:1:10: timeout: time: invalid duration "soon"`},
		{"duration as a number", "timeout: 30\n", `c.yaml:1:10: timeout: want a string like "30s"`},
		{"bad enumeration", "mode: of\n", `c.yaml:1:7: mode: "of": want enforce, warn or off`},
		{"bad time", "until: tomorrow\n", `c.yaml:1:8: until: parsing time`},
		{"duplicate", "addr: a\naddr: b\n", "c.yaml:2:1: addr: given twice (first at line 1)"},
		{"syntax", "log:\n  level: [a\n", "c.yaml:"},
		{"two documents", "addr: a\n---\naddr: b\n", "c.yaml:3:1: a second YAML document"},
		{"several errors", "lvl: a\nfmt: b\nsmall: x\n", "c.yaml:1:1: lvl: unknown field (known: shared, addr, log, timeout, mode, modes, labels, enabled, ratio, small, items, file, opt, until, plain) (and 2 more errors)"},
		{"not a mapping", "- a\n", "c.yaml:1:1: want a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c config
			_, err := Decode([]byte(tc.doc), &c, Options{File: "c.yaml"})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want one starting %q", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *Error", err)
			}
		})
	}
}

func TestDecodeEmptyAndNull(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		c := config{Addr: "kept"}
		if _, err := Decode([]byte(doc), &c, Options{}); err != nil || c.Addr != "kept" {
			t.Fatalf("%q: %v, addr %q", doc, err, c.Addr)
		}
	}
	c := config{Addr: "kept", Items: []item{{}}}
	if _, err := Decode([]byte("addr: ~\nitems: null\nlog:\n"), &c, Options{}); err != nil || c.Addr != "kept" || c.Items != nil {
		t.Fatalf("null: %v, %+v", err, c)
	}
}

// TestDecodeZeroPointer: a pointer set to a zero value is set (gc's
// gracePeriod: 0s must not read as "not set").
func TestDecodeZeroPointer(t *testing.T) {
	t.Parallel()
	var c config
	if _, err := Decode([]byte("items: [{name: a, count: 0}]\n"), &c, Options{}); err != nil || c.Items[0].Count == nil || *c.Items[0].Count != 0 {
		t.Fatalf("%v, %+v: count: 0 must be a non-nil pointer to 0", err, c.Items)
	}
}

func TestDecodeAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	doc := "base: &b {level: debug, format: text}\n"
	type withBase struct {
		Base logConfig `json:"base"`
		Log  logConfig `json:"log"`
	}
	var c withBase
	if _, err := Decode([]byte(doc+"log:\n  <<: *b\n  format: json\n"), &c, Options{}); err != nil {
		t.Fatal(err)
	}
	if c.Log != (logConfig{"debug", "json"}) {
		t.Fatalf("merged %+v", c.Log)
	}
	if _, err := Decode([]byte(doc+"log:\n  <<: *b\n  lvl: x\n"), &c, Options{File: "c.yaml"}); err == nil || !strings.HasPrefix(err.Error(), "c.yaml:4:3: log.lvl: unknown field") {
		t.Fatalf("unknown field next to a merge: %v", err)
	}
}

func TestDecodeNoBase(t *testing.T) {
	t.Parallel()
	var c config
	if _, err := Decode([]byte("file: f.pem\n"), &c, Options{}); err != nil || c.File != "f.pem" {
		t.Fatalf("%v, %q: without a base, paths stay as written", err, c.File)
	}
	if _, err := Decode([]byte("file: f.pem\n"), &c, Options{Base: "rel/dir"}); err != nil || c.File != filepath.Join("rel/dir", "f.pem") {
		t.Fatalf("%v, %q", err, c.File)
	}
}

func TestPathFields(t *testing.T) {
	t.Parallel()
	got := PathFields(reflect.TypeFor[config]())
	want := []string{"items[].keys", "file", "opt"}
	if !slices.Equal(got, want) {
		t.Fatalf("PathFields = %q, want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("log: {level: debug}\nitems: [{name: a, keys: [x]}]\n")
	f.Add("a: &a [*a]\n")
	f.Add("<<: {addr: x}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		var c config
		_, _ = Decode([]byte(doc), &c, Options{File: "f.yaml", Base: "/b"})
	})
}

// A billion laughs: nine levels of aliases of ten aliases each are 10^9
// values. The decoder stops at maxValues instead of expanding them, both
// into typed fields and into json.Unmarshaler leaves (any).
func TestDecodeAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("A0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "A%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("Bomb: *a9\n")
	// The same through merge keys: each level merges the one below ten times.
	var m strings.Builder
	m.WriteString("M0: &m0 {k: v}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&m, "M%d: &m%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				m.WriteString(", ")
			}
			fmt.Fprintf(&m, "*m%d", i-1)
		}
		m.WriteString("]}\n")
	}
	targets := map[string]any{
		"typed": &struct {
			A0, A1, A2, A3, A4, A5, A6, A7, A8 any
			A9                                 [][][][][][][][][][]string
			Bomb                               [][][][][][][][][][]string
		}{},
		"any": &map[string]json.RawMessage{},
	}
	merged := &struct{ M0, M1, M2, M3, M4, M5, M6, M7, M8, M9 map[string]string }{}
	for name, tt := range map[string]struct {
		doc string
		v   any
	}{"typed": {b.String(), targets["typed"]}, "any": {b.String(), targets["any"]}, "merge": {m.String(), merged}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte(tt.doc), tt.v, Options{File: "bomb.yaml"})
			if err == nil || !strings.Contains(err.Error(), "aliases") {
				t.Fatalf("Decode of an alias bomb: %v, want an error about aliases", err)
			}
		})
	}
}

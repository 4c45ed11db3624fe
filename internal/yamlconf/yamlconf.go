// Package yamlconf decodes a YAML configuration file into Go structs that
// carry json tags, strictly, and says where it is wrong: every error is
// "FILE:LINE:COL: field.path: message".
//
// The document is read as YAML 1.2 (go.yaml.in/yaml/v3): only true and
// false are booleans, so an unquoted off, on, yes or no is a string
// wherever a string is wanted. Field names are the json tags (exact case);
// an unknown field is an error that lists the known ones. Leaves whose type
// implements json.Unmarshaler (time.Time, durations) receive their value as
// JSON, encoding.TextUnmarshaler ones its text, and their errors are
// placed at their value. Fields tagged `yamlconf:"path"` (string, *string,
// []string, and maps of them) are file paths: a relative one is made
// relative to Options.Base, unless it has a URL scheme (oci://...).
package yamlconf

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Options configure Decode.
type Options struct {
	// File names the document in errors.
	File string
	// Base, if not empty, is the directory that relative paths (fields
	// tagged yamlconf:"path") are relative to.
	Base string
}

// Pos is a position in the document (1-based).
type Pos struct{ Line, Column int }

// Error is one error of a document: where, which field, what.
type Error struct {
	File string
	Pos  Pos // zero when unknown
	// Path is the field's path: "log.level", "trust.authorities[0].keys[1]",
	// "webhook.namespaces.shop"; empty for the document itself.
	Path string
	Err  error
	// More counts the further errors of the document (not described).
	More int
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Pos.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Pos.Line)
			if e.Pos.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Pos.Column)
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	switch e.More {
	case 0:
	case 1:
		b.WriteString(" (and 1 more error)")
	default:
		fmt.Fprintf(&b, " (and %d more errors)", e.More)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Source remembers where each field was set, to place errors found after
// decoding (a setting validated against others). A nil *Source knows no
// positions.
type Source struct {
	file string
	pos  map[string]Pos
}

// Pos is where the value of the field at path was written.
func (s *Source) Pos(path string) (Pos, bool) {
	if s == nil {
		return Pos{}, false
	}
	p, ok := s.pos[path]
	return p, ok
}

// Errorf returns an *Error about the field at path, placed where the file
// set it (or without a position, if it did not).
func (s *Source) Errorf(path, format string, args ...any) error {
	e := &Error{Path: path, Err: fmt.Errorf(format, args...)}
	if s != nil {
		e.File = s.file
		e.Pos = s.pos[path]
	}
	return e
}

// At places err, whose message names the field itself, where the field at
// path was set (the file alone, if it was not).
func (s *Source) At(path string, err error) error {
	e := &Error{Err: err}
	if s != nil {
		e.File = s.file
		e.Pos = s.pos[path]
	}
	return e
}

// Decode reads the YAML document data into v, a non-nil pointer. An empty
// document (or one of comments only) leaves v as it is.
func Decode(data []byte, v any, o Options) (*Source, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, fmt.Errorf("yamlconf: Decode needs a non-nil pointer, not %T", v)
	}
	d := &decoder{o: o, src: &Source{file: o.File, pos: map[string]Pos{}}}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return d.src, nil
		}
		return nil, d.syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, d.syntaxError(err)
		}
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		return nil, &Error{File: o.File, Pos: Pos{at.Line, at.Column}, Err: errors.New("a second YAML document: the file holds one")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d.value(root, rv.Elem(), "", false, 0)
	if len(d.errs) > 0 {
		e := d.errs[0]
		e.More = len(d.errs) - 1
		return nil, e
	}
	return d.src, nil
}

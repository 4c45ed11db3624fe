package yamlconf

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places a parser's error ("yaml: line 3: ...") at its line.
func (d *decoder) syntaxError(err error) error {
	e := &Error{File: d.o.File, Err: err}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Pos.Line, _ = strconv.Atoi(m[1])
		e.Err = errors.New(m[2])
	}
	return e
}

type decoder struct {
	o    Options
	src  *Source
	errs []*Error
	// values counts the nodes decoded, aliases expanded: see maxValues.
	values int
}

// maxValues bounds the values one document decodes to, aliases and merge
// keys expanded: a configuration file has a few thousand, while a few
// lines of nested aliases (a "billion laughs") expand to 10^9.
const maxValues = 100_000

// errTooManyValues is the one error of a document over maxValues.
var errTooManyValues = fmt.Errorf("more than %d values with aliases expanded: use fewer aliases (anchors and merge keys)", maxValues)

// spend counts n; it reports false, recording the error once, when the
// document has decoded more than maxValues.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	d.values++
	if d.values == maxValues+1 {
		d.failErr(n, path, errTooManyValues)
	}
	return d.values <= maxValues
}

func (d *decoder) fail(n *yaml.Node, path string, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.o.File, Pos: Pos{n.Line, n.Column}, Path: path, Err: fmt.Errorf(format, args...)})
}

func (d *decoder) failErr(n *yaml.Node, path string, err error) {
	d.errs = append(d.errs, &Error{File: d.o.File, Pos: Pos{n.Line, n.Column}, Path: path, Err: err})
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxDepth bounds nesting (and alias chains).
const maxDepth = 100

// value decodes n into v (settable). path is v's field path; isPath says
// v's strings are file paths.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, isPath bool, depth int) {
	if depth > maxDepth {
		d.fail(n, path, "nested too deeply")
		return
	}
	if !d.spend(n, path) {
		return
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
		depth++
	}
	if path != "" {
		d.src.pos[path] = Pos{n.Line, n.Column}
	}
	if isNull(n) {
		// As encoding/json: null leaves a value as it is, and empties
		// pointers, maps and slices.
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	}
	if v.Kind() != reflect.Pointer && v.CanAddr() {
		switch pv := v.Addr(); {
		case pv.Type().Implements(jsonUnmarshaler):
			b, err := d.toJSON(n, depth)
			if err == nil {
				err = pv.Interface().(json.Unmarshaler).UnmarshalJSON(b)
			}
			if err != nil {
				d.failErr(n, path, err)
			}
			return
		case pv.Type().Implements(textUnmarshaler):
			if n.Kind != yaml.ScalarNode {
				d.fail(n, path, "want a single value, got %s", describe(n))
				return
			}
			if err := pv.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
				d.failErr(n, path, err)
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path, isPath, depth+1)
	case reflect.Struct:
		d.structValue(n, v, path, depth)
	case reflect.Map:
		d.mapValue(n, v, path, isPath, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.value(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i), isPath, depth+1)
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", describe(n))
			return
		}
		s := n.Value
		if isPath {
			s = d.resolve(s)
		}
		v.SetString(s)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "want an integer, got %s", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&u) != nil {
			d.fail(n, path, "want a non-negative integer, got %s", describe(n))
			return
		}
		if v.OverflowUint(u) {
			d.fail(n, path, "%d is out of range", u)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			d.fail(n, path, "want a number, got %s", describe(n))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || v.OverflowFloat(f) {
			d.fail(n, path, "%s is out of range", n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		if v.NumMethod() != 0 {
			d.fail(n, path, "cannot decode into %s", v.Type())
			return
		}
		b, err := d.toJSON(n, depth)
		if err != nil {
			d.failErr(n, path, err)
			return
		}
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			d.failErr(n, path, err)
			return
		}
		v.Set(reflect.ValueOf(&x).Elem())
	default:
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

// resolve makes a relative path relative to the base directory.
func (d *decoder) resolve(p string) string {
	if d.o.Base == "" || p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
		return p
	}
	return filepath.Join(d.o.Base, p)
}

func (d *decoder) structValue(n *yaml.Node, v reflect.Value, path string, depth int) {
	fs := fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping (fields: %s), got %s", strings.Join(fs.names, ", "), describe(n))
		return
	}
	for _, p := range d.pairs(n, path, depth) {
		name := p.key.Value
		fp := join(path, name)
		f, ok := fs.byName[name]
		if !ok {
			d.fail(p.key, fp, "unknown field (known: %s)", strings.Join(fs.names, ", "))
			continue
		}
		fv, ok := fieldByIndex(v, f.index)
		if !ok {
			d.fail(p.key, fp, "cannot set a field of an embedded nil pointer to an unexported type")
			continue
		}
		d.value(p.value, fv, fp, f.path, depth+1)
	}
}

func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, path string, isPath bool, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	kt, et := v.Type().Key(), v.Type().Elem()
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range d.pairs(n, path, depth) {
		fp := join(path, p.key.Value)
		k := reflect.New(kt).Elem()
		switch {
		case reflect.PointerTo(kt).Implements(textUnmarshaler):
			if err := k.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(p.key.Value)); err != nil {
				d.failErr(p.key, fp, err)
				continue
			}
		case kt.Kind() == reflect.String:
			k.SetString(p.key.Value)
		default:
			d.fail(p.key, fp, "cannot decode a key into %s", kt)
			continue
		}
		e := reflect.New(et).Elem()
		if old := v.MapIndex(k); old.IsValid() {
			e.Set(old)
		}
		d.value(p.value, e, fp, isPath, depth+1)
		v.SetMapIndex(k, e)
	}
}

type pair struct{ key, value *yaml.Node }

// pairs are a mapping's key-value pairs, merge keys (<<) expanded (the
// mapping's own keys win); a key given twice is an error.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var merged, own []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a key must be a single value, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(val, path, depth)...)
			continue
		}
		if first, ok := seen[k.Value]; ok {
			d.fail(k, join(path, k.Value), "given twice (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, val})
	}
	var out []pair
	mseen := map[string]bool{}
	for _, p := range merged {
		if seen[p.key.Value] == nil && !mseen[p.key.Value] {
			mseen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return append(out, own...)
}

func (d *decoder) mergePairs(n *yaml.Node, path string, depth int) []pair {
	if depth > maxDepth {
		d.fail(n, path, "nested too deeply")
		return nil
	}
	if !d.spend(n, path) {
		return nil
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.pairs(n, path, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, e := range n.Content {
			out = append(out, d.mergePairs(e, path, depth+1)...)
		}
		return out
	}
	d.fail(n, path, "a merge (<<) wants a mapping, got %s", describe(n))
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe says what n is, for errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if len(n.Value) > 40 {
			return strconv.Quote(n.Value[:40] + "...")
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// toJSON is n as JSON: what a json.Unmarshaler expects.
func (d *decoder) toJSON(n *yaml.Node, depth int) ([]byte, error) {
	x, err := d.toAny(n, depth)
	if err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

func (d *decoder) toAny(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	if d.values++; d.values > maxValues {
		return nil, errTooManyValues
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := d.toAny(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := []any{}
		for _, e := range n.Content {
			v, err := d.toAny(e, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			b, _ := strconv.ParseBool(strings.ToLower(n.Value))
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%s is not a number JSON can hold", n.Value)
			}
			var i int64
			if n.Decode(&i) == nil {
				return i, nil
			}
			return f, nil
		}
		return n.Value, nil
	}
	return nil, errors.New("empty value")
}

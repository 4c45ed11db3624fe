package policy

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// value converts the input to OPA's value form, exactly as its JSON
// encoding would decode (TestPolicyInputValue checks this), but without
// going through JSON text: on a realistic input that round trip cost more
// than the policy evaluation.
func inputValue(in *contract.Input) (ast.Value, error) {
	c := converter{fields: map[reflect.Type][]field{}, shared: map[sharedKey]ast.Value{}}
	v, err := c.toValue(reflect.ValueOf(in))
	if err != nil {
		return nil, fmt.Errorf("policy: convert input: %w", err)
	}
	return v, nil
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// converter converts one value. It remembers the fields of each struct type,
// and the values of pointers and slices it has converted: the input shares
// them (an SBOM attestation's components are also evidence.sbom's), and OPA
// does not modify its input, so they are converted once.
type converter struct {
	fields map[reflect.Type][]field
	shared map[sharedKey]ast.Value
}

type sharedKey struct {
	t   reflect.Type
	ptr uintptr
	len int
}

// field is a struct field as encoding/json sees it.
type field struct {
	index     int
	name      string
	key       *ast.Term // name, shared by every object of the type
	omitEmpty bool
	omitZero  bool
	embedded  bool // an embedded struct (or pointer to one) to flatten
}

func (c *converter) structFields(t reflect.Type) []field {
	if fs, ok := c.fields[t]; ok {
		return fs
	}
	fs := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		embedded := f.Anonymous && name == "" && ft.Kind() == reflect.Struct
		if !embedded && !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs = append(fs, field{index: i, name: name, key: ast.StringTerm(name), omitEmpty: hasOpt(opts, "omitempty"), omitZero: hasOpt(opts, "omitzero"), embedded: embedded})
	}
	c.fields[t] = fs
	return fs
}

// toValue follows encoding/json's rules for the kinds of values the input
// holds: structs with json tags (omitempty, omitzero, "-", embedded structs),
// maps with string keys, slices, pointers, interfaces and scalars. Types with
// their own JSON encoding other than time.Time and json.RawMessage are
// encoded with encoding/json.
func (c *converter) toValue(v reflect.Value) (ast.Value, error) {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return ast.NullValue, nil
		}
		return c.toValue(v.Elem())
	case reflect.Pointer:
		if v.IsNil() {
			return ast.NullValue, nil
		}
		if v.Type().Elem().Kind() != reflect.Struct && v.Type().Implements(jsonMarshalerType) {
			return viaJSON(v)
		}
		return c.memo(v, func() (ast.Value, error) { return c.toValue(v.Elem()) })
	case reflect.Slice:
		if !v.IsNil() && v.Len() > 0 {
			return c.memo(v, func() (ast.Value, error) { return c.convert(v) })
		}
	}
	return c.convert(v)
}

func (c *converter) memo(v reflect.Value, convert func() (ast.Value, error)) (ast.Value, error) {
	k := sharedKey{t: v.Type(), ptr: v.Pointer()}
	if v.Kind() == reflect.Slice {
		k.len = v.Len()
	}
	if val, ok := c.shared[k]; ok {
		return val, nil
	}
	val, err := convert()
	if err != nil {
		return nil, err
	}
	c.shared[k] = val
	return val, nil
}

func (c *converter) convert(v reflect.Value) (ast.Value, error) {
	t := v.Type()
	switch {
	case t == timeType:
		return ast.String(v.Interface().(time.Time).Format(time.RFC3339Nano)), nil
	case t == rawMessageType:
		if v.Len() == 0 {
			return ast.NullValue, nil
		}
		return ast.ValueFromReader(bytes.NewReader(v.Bytes()))
	case t.Implements(jsonMarshalerType) || (t.Kind() != reflect.String && t.Implements(textMarshalerType)):
		return viaJSON(v)
	}
	switch v.Kind() {
	case reflect.Struct:
		obj := ast.NewObjectWithCapacity(len(c.structFields(t)))
		if err := c.addFields(obj, v); err != nil {
			return nil, err
		}
		return obj, nil
	case reflect.Map:
		if v.IsNil() {
			return ast.NullValue, nil
		}
		if t.Key().Kind() != reflect.String {
			return viaJSON(v)
		}
		obj := ast.NewObjectWithCapacity(v.Len())
		for it := v.MapRange(); it.Next(); {
			ev, err := c.toValue(it.Value())
			if err != nil {
				return nil, err
			}
			obj.Insert(ast.StringTerm(it.Key().String()), ast.NewTerm(ev))
		}
		return obj, nil
	case reflect.Slice:
		if v.IsNil() {
			return ast.NullValue, nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return viaJSON(v) // base64, as encoding/json
		}
		fallthrough
	case reflect.Array:
		terms := make([]*ast.Term, v.Len())
		for i := range terms {
			ev, err := c.toValue(v.Index(i))
			if err != nil {
				return nil, err
			}
			terms[i] = ast.NewTerm(ev)
		}
		return ast.NewArray(terms...), nil
	case reflect.String:
		return ast.String(v.String()), nil
	case reflect.Bool:
		return ast.Boolean(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return ast.Number(strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return ast.Number(strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return floatValue(v.Float(), t.Bits())
	default:
		return nil, fmt.Errorf("cannot convert a %s", t)
	}
}

// addFields adds a struct's fields to obj, flattening embedded structs.
func (c *converter) addFields(obj ast.Object, v reflect.Value) error {
	for _, f := range c.structFields(v.Type()) {
		fv := v.Field(f.index)
		if f.embedded {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			if err := c.addFields(obj, fv); err != nil {
				return err
			}
			continue
		}
		if (f.omitEmpty && isEmpty(fv)) || (f.omitZero && fv.IsZero()) {
			continue
		}
		val, err := c.toValue(fv)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		obj.Insert(f.key, ast.NewTerm(val))
	}
	return nil
}

func hasOpt(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// isEmpty is encoding/json's omitempty test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// floatValue formats f as encoding/json does.
func floatValue(f float64, bits int) (ast.Value, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("unsupported number %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	return ast.Number(strconv.FormatFloat(f, format, -1, bits)), nil
}

func viaJSON(v reflect.Value) (ast.Value, error) {
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return nil, err
	}
	return ast.ValueFromReader(bytes.NewReader(b))
}

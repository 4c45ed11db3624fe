package yamlconf

import (
	"reflect"
	"strings"
)

// field is a settable field of a struct type, by its json name.
type field struct {
	index []int
	path  bool
}

type fieldSet struct {
	byName map[string]field
	names  []string
}

// fieldsOf lists t's fields as encoding/json sees them: json names, the
// fields of embedded structs without a tag promoted, "-" skipped. (Not
// cached: a configuration file is read once.)
func fieldsOf(t reflect.Type) *fieldSet {
	fs := &fieldSet{byName: map[string]field{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, tagged := f.Tag.Lookup("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" && tag == "-" {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, idx)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if !tagged || name == "" {
				name = f.Name
			}
			if _, dup := fs.byName[name]; dup {
				continue // the shallower field wins, as in encoding/json
			}
			fs.byName[name] = field{index: idx, path: hasPathTag(f)}
			fs.names = append(fs.names, name)
		}
	}
	walk(t, nil)
	return fs
}

func hasPathTag(f reflect.StructField) bool {
	for opt := range strings.SplitSeq(f.Tag.Get("yamlconf"), ",") {
		if opt == "path" {
			return true
		}
	}
	return false
}

// fieldByIndex is v's field at index, allocating embedded nil pointers.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, false
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// PathFields lists the field paths of t (a struct type) tagged
// yamlconf:"path", written as Decode names fields, with [] for any list
// element and * for any map key: "trust.authorities[].keys[]".
func PathFields(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, path string, depth int)
	walk = func(t reflect.Type, path string, depth int) {
		if depth > maxDepth {
			return
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice:
			walk(t.Elem(), path+"[]", depth+1)
		case reflect.Map:
			walk(t.Elem(), join(path, "*"), depth+1)
		case reflect.Struct:
			if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
				return
			}
			fs := fieldsOf(t)
			for _, name := range fs.names {
				f := fs.byName[name]
				sf := t.FieldByIndex(f.index)
				if f.path {
					out = append(out, join(path, name))
					continue
				}
				walk(sf.Type, join(path, name), depth+1)
			}
		}
	}
	walk(t, "", 0)
	return out
}

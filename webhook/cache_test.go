package webhook

import (
	"reflect"
	"testing"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

// TestRequestKeyCoversRequest: changing any field of contract.Request that
// policy sees, or either revision, changes the decision cache key; a new
// field nobody added to requestKey fails here (I4: each cache key
// contains everything its decision depends on).
func TestRequestKeyCoversRequest(t *testing.T) {
	base := contract.Request{Target: contract.Target{Registry: &contract.RegistryTarget{}, Kubernetes: &contract.KubernetesTarget{}},
		Actor: contract.Actor{Identity: &contract.Identity{}}}
	baseKey := requestKey(&base, "p", "t")
	if requestKey(&base, "p2", "t") == baseKey || requestKey(&base, "p", "t2") == baseKey || requestKey(&base, "pt", "") == baseKey {
		t.Fatal("the revisions are not in the key")
	}
	var walk func(path string, v reflect.Value)
	n := 0
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if !f.IsExported() || f.Name == "LeftBehind" { // a promotion's; policy does not see it
					continue
				}
				if f.Name == "Enforcement" { // recorded from the current request, not the cached one
					if k := requestKey(&contract.Request{Enforcement: "warn"}, "p", "t"); k != requestKey(&contract.Request{}, "p", "t") {
						t.Error("Enforcement is in the decision cache key: a namespace switched between warn and enforce would not reuse its decisions")
					}
					continue
				}
				walk(path+"."+f.Name, v.Field(i))
			}
			return
		case reflect.Pointer:
			walk(path, v.Elem())
			return
		}
		before := requestKey(&base, "p", "t")
		old := reflect.ValueOf(v.Interface())
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Slice:
			v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), reflect.ValueOf("x").Convert(v.Type().Elem())))
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), reflect.ValueOf("v").Convert(v.Type().Elem()))
			v.Set(m)
		default:
			t.Fatalf("%s: %s fields are not covered by this test", path, v.Kind())
		}
		n++
		if requestKey(&base, "p", "t") == before {
			t.Errorf("%s is not in the decision cache key", path)
		}
		v.Set(old)
	}
	walk("Request", reflect.ValueOf(&base).Elem())
	if n < 15 {
		t.Fatalf("only %d fields checked", n)
	}
	// Values do not run into each other.
	a := contract.Request{Repository: "ab", Tag: "c"}
	b := contract.Request{Repository: "a", Tag: "bc"}
	if requestKey(&a, "", "") == requestKey(&b, "", "") {
		t.Fatal("field boundaries are not in the key")
	}
}

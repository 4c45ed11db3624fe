package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

const inputDoc = "../docs/policy-input.md"

// The doc's example sits between these lines.
const (
	exampleStart = "<!-- example: testdata/policy/inputs/allowed.json (kept in step by TestPolicyInputDoc; go test ./policy -update rewrites it) -->\n```json\n"
	exampleEnd   = "```\n"
)

// TestPolicyInputDoc keeps docs/policy-input.md and the Go types in step:
// its example is the marshalled fixture input, and it names every JSON
// field of the input types.
func TestPolicyInputDoc(t *testing.T) {
	doc, err := os.ReadFile(inputDoc)
	if err != nil {
		t.Fatal(err)
	}
	want := marshalIndent(t, allowedFixture().input())
	before, rest, ok := bytes.Cut(doc, []byte(exampleStart))
	if !ok {
		t.Fatalf("%s has no example block starting with %q", inputDoc, exampleStart)
	}
	example, after, ok := bytes.Cut(rest, []byte(exampleEnd))
	if !ok {
		t.Fatalf("%s: example block is not closed", inputDoc)
	}
	if *update {
		out := append(append(append(before, exampleStart...), want...), exampleEnd...)
		if err := os.WriteFile(inputDoc, append(out, after...), 0o644); err != nil {
			t.Fatal(err)
		}
		example = want
	}
	if !bytes.Equal(example, want) {
		t.Errorf("%s: the example differs from the fixture input (go test ./policy -run TestPolicyInputDoc -update):\n%s", inputDoc, want)
	}
	var v any
	if err := json.Unmarshal(example, &v); err != nil {
		t.Errorf("example is not JSON: %v", err)
	}

	var missing []string
	for _, name := range jsonFieldNames(reflect.TypeFor[contract.Input](), map[reflect.Type]bool{}) {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not document these input fields (as `name`): %s", inputDoc, strings.Join(missing, ", "))
	}
}

// jsonFieldNames lists the JSON names of t's fields, recursively, except
// inside interfaces (the attest predicates, documented by package attest)
// and time.Time.
func jsonFieldNames(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() || seen[t] {
		return nil
	}
	seen[t] = true
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
		out = append(out, jsonFieldNames(f.Type, seen)...)
	}
	return out
}

// TestPolicyInputValue: the input OPA evaluates is exactly the input's
// JSON encoding, the documented contract.
func TestPolicyInputValue(t *testing.T) {
	inputs := map[string]*contract.Input{"realistic": realisticInput(), "no evidence": NewInput(contract.ActionPush, contract.Subject{Repository: "a", Digest: "sha256:00"}, contract.Target{}, contract.Actor{}, nil, nil, fixtureNow)}
	for _, sc := range scenarios {
		f := allowedFixture()
		sc.change(f)
		inputs[sc.name] = f.input()
	}
	for name, in := range inputs {
		got, err := inputValue(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ast.ValueFromReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(want) != 0 {
			t.Errorf("%s: converted input differs from its JSON:\n got %v\nwant %v", name, got, want)
		}
	}
}

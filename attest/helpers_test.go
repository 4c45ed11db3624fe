package attest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// imageDigest is the subject digest used throughout the fixtures.
const imageDigest = "sha256:9b2d8f1c6a4e3b7d5f0c2a8e6b4d1f3a7c9e5b2d8f0a6c4e1b3d5f7a9c2e4b6d"

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// wantErr checks err against a wanted substring; "" means no error.
func wantErr(t *testing.T, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
	return err == nil
}

func mustEqual(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("got:\n%s\nwant:\n%s", g, w)
	}
}

// mutateJSON decodes a JSON object, applies f and re-encodes it, for
// building malformed variants of the fixtures.
func mutateJSON(tb testing.TB, b []byte, f func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// predicateOf returns the raw predicate of a statement fixture.
func predicateOf(tb testing.TB, statement []byte) json.RawMessage {
	tb.Helper()
	st, err := ParseStatement(statement)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Predicate
}

// field returns m[k] as a map, for mutateJSON callbacks.
func field(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		m = m[k].(map[string]any)
	}
	return m
}

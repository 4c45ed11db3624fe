package attest

import (
	"testing"
)

func TestParseStatement(t *testing.T) {
	v01 := readFixture(t, "statement-slsa-v0.2.json")
	v1 := readFixture(t, "statement-slsa-v1.json")
	subjectDigest := map[string]string{"sha256": imageDigest[len("sha256:"):]}

	tests := []struct {
		name          string
		in            []byte
		wantType      string
		wantPredicate bool
		wantErr       string
	}{
		{name: "v0.1", in: v01, wantType: StatementV01, wantPredicate: true},
		{name: "v1", in: v1, wantType: StatementV1, wantPredicate: true},
		{
			name:     "no predicate",
			in:       mutateJSON(t, v1, func(m map[string]any) { delete(m, "predicate") }),
			wantType: StatementV1,
		},
		{
			name:     "null predicate",
			in:       mutateJSON(t, v1, func(m map[string]any) { m["predicate"] = nil }),
			wantType: StatementV1,
		},
		{
			name:          "subject without name (v1 allows it)",
			in:            mutateJSON(t, v1, func(m map[string]any) { m["subject"] = []any{map[string]any{"digest": subjectDigest}} }),
			wantType:      StatementV1,
			wantPredicate: true,
		},
		{name: "bad JSON", in: v1[:len(v1)/2], wantErr: "unexpected end of JSON input"},
		{name: "not an object", in: []byte(`"https://in-toto.io/Statement/v1"`), wantErr: "cannot unmarshal string"},
		{
			name:    "unknown _type",
			in:      mutateJSON(t, v1, func(m map[string]any) { m["_type"] = "https://in-toto.io/Statement/v2" }),
			wantErr: `unknown _type "https://in-toto.io/Statement/v2"`,
		},
		{
			name:    "missing _type",
			in:      mutateJSON(t, v1, func(m map[string]any) { delete(m, "_type") }),
			wantErr: "_type is missing",
		},
		{
			name:    "_type of wrong type",
			in:      mutateJSON(t, v1, func(m map[string]any) { m["_type"] = 1 }),
			wantErr: "cannot unmarshal number",
		},
		{
			name:    "missing predicateType",
			in:      mutateJSON(t, v1, func(m map[string]any) { delete(m, "predicateType") }),
			wantErr: "predicateType is missing",
		},
		{
			name:    "missing subject",
			in:      mutateJSON(t, v1, func(m map[string]any) { delete(m, "subject") }),
			wantErr: "no subject",
		},
		{
			name:    "empty subject",
			in:      mutateJSON(t, v1, func(m map[string]any) { m["subject"] = []any{} }),
			wantErr: "no subject",
		},
		{
			name:    "subject is an object",
			in:      mutateJSON(t, v1, func(m map[string]any) { m["subject"] = map[string]any{"name": "x", "digest": subjectDigest} }),
			wantErr: "cannot unmarshal object",
		},
		{
			name: "subject without digest",
			in: mutateJSON(t, v1, func(m map[string]any) {
				m["subject"] = []any{map[string]any{"name": "a", "digest": subjectDigest}, map[string]any{"name": "b"}}
			}),
			wantErr: `subject[1] "b": digest is empty`,
		},
		{
			name:    "subject with empty digest",
			in:      mutateJSON(t, v1, func(m map[string]any) { m["subject"] = []any{map[string]any{"name": "a", "digest": map[string]any{}}} }),
			wantErr: "digest is empty",
		},
		{
			name: "digest with empty value",
			in: mutateJSON(t, v1, func(m map[string]any) {
				m["subject"] = []any{map[string]any{"name": "a", "digest": map[string]any{"sha256": ""}}}
			}),
			wantErr: `digest "sha256" has an empty value`,
		},
		{
			name: "digest with numeric value",
			in: mutateJSON(t, v1, func(m map[string]any) {
				m["subject"] = []any{map[string]any{"name": "a", "digest": map[string]any{"sha256": 12}}}
			}),
			wantErr: "cannot unmarshal number",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ParseStatement(tt.in)
			if !wantErr(t, err, tt.wantErr) {
				return
			}
			if st.Type != tt.wantType {
				t.Errorf("Type = %q, want %q", st.Type, tt.wantType)
			}
			if got := st.Predicate != nil; got != tt.wantPredicate {
				t.Errorf("has predicate = %v, want %v", got, tt.wantPredicate)
			}
			if !st.HasSubjectDigest(imageDigest) {
				t.Errorf("HasSubjectDigest(%s) = false", imageDigest)
			}
		})
	}
}

func TestHasSubjectDigest(t *testing.T) {
	st := &Statement{Subject: []Subject{
		{Name: "ghcr.io/acme/app", Digest: map[string]string{"sha256": "abc123", "sha512": "def456"}},
		{Name: "ghcr.io/acme/app-debug", Digest: map[string]string{"sha256": "0f0f"}},
	}}
	tests := []struct {
		digest string
		want   bool
	}{
		{"sha256:abc123", true},
		{"sha512:def456", true},
		{"sha256:0f0f", true},
		{"sha256:ABC123", true},
		{"sha256:abc12", false},
		{"sha256:abc1234", false},
		{"sha512:abc123", false},
		{"sha384:abc123", false},
		{"abc123", false},
		{"sha256:", false},
		{":abc123", false},
		{"", false},
		{"sha256:abc123:extra", false},
	}
	for _, tt := range tests {
		t.Run(tt.digest, func(t *testing.T) {
			if got := st.HasSubjectDigest(tt.digest); got != tt.want {
				t.Fatalf("HasSubjectDigest(%q) = %v, want %v", tt.digest, got, tt.want)
			}
		})
	}
}

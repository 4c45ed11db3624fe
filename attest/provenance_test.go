package attest

import (
	"encoding/json"
	"testing"
)

const (
	acmeCommit = "4c1f0b2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
	golangBase = "6c5c9590f169f77c8046e45c611d3b28fe477789acd8d3762d23d4744de69812"
)

func TestParseProvenance(t *testing.T) {
	v02 := predicateOf(t, readFixture(t, "statement-slsa-v0.2.json"))
	v1 := predicateOf(t, readFixture(t, "statement-slsa-v1.json"))

	tests := []struct {
		name          string
		predicateType string
		raw           []byte
		want          *Provenance
		wantErr       string
	}{
		{
			name:          "v0.2 GitHub container generator",
			predicateType: PredicateSLSAProvenanceV02,
			raw:           v02,
			want: &Provenance{
				SLSAVersion:      "0.2",
				BuilderID:        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v1.10.0",
				BuildType:        "https://github.com/slsa-framework/slsa-github-generator/container@v1",
				SourceRepository: "https://github.com/acme/app",
				SourceRef:        "refs/heads/main",
				SourceRevision:   acmeCommit,
				Parameters:       map[string]any{"event_inputs": map[string]any{"release": "v1.4.2"}},
				Materials: []Material{
					{URI: "git+https://github.com/acme/app@refs/heads/main", Digest: map[string]string{"sha1": acmeCommit}},
					{URI: "pkg:docker/golang@1.23.4-alpine3.20", Digest: map[string]string{"sha256": golangBase}},
				},
			},
		},
		{
			name:          "v1 GitHub Actions workflow",
			predicateType: PredicateSLSAProvenanceV1,
			raw:           v1,
			want: &Provenance{
				SLSAVersion:      "1.0",
				BuilderID:        "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2",
				BuildType:        "https://actions.github.io/buildtypes/workflow/v1",
				SourceRepository: "https://github.com/acme/app",
				SourceRef:        "refs/tags/v1.4.2",
				SourceRevision:   acmeCommit,
				Parameters: map[string]any{"workflow": map[string]any{
					"ref": "refs/tags/v1.4.2", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml",
				}},
				Materials: []Material{{URI: "git+https://github.com/acme/app@refs/tags/v1.4.2", Digest: map[string]string{"gitCommit": acmeCommit}}},
			},
		},
		{
			name:          "v0.2 source from materials when configSource has no digest",
			predicateType: PredicateSLSAProvenanceV02,
			raw: mutateJSON(t, v02, func(m map[string]any) {
				field(m, "invocation")["configSource"] = map[string]any{"uri": "git+https://github.com/acme/other@refs/heads/dev"}
				m["materials"] = []any{
					map[string]any{"uri": "pkg:docker/golang@1.23.4-alpine3.20", "digest": map[string]any{"sha256": golangBase}},
					map[string]any{"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": map[string]any{"sha1": acmeCommit}},
				}
			}),
			want: &Provenance{
				SLSAVersion:      "0.2",
				BuilderID:        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v1.10.0",
				BuildType:        "https://github.com/slsa-framework/slsa-github-generator/container@v1",
				SourceRepository: "https://github.com/acme/app",
				SourceRef:        "refs/heads/main",
				SourceRevision:   acmeCommit,
				Parameters:       map[string]any{"event_inputs": map[string]any{"release": "v1.4.2"}},
				Materials: []Material{
					{URI: "pkg:docker/golang@1.23.4-alpine3.20", Digest: map[string]string{"sha256": golangBase}},
					{URI: "git+https://github.com/acme/app@refs/heads/main", Digest: map[string]string{"sha1": acmeCommit}},
				},
			},
		},
		{
			name:          "v0.2 repository without revision from configSource",
			predicateType: PredicateSLSAProvenanceV02,
			raw: mutateJSON(t, v02, func(m map[string]any) {
				field(m, "invocation")["configSource"] = map[string]any{"uri": "git+https://github.com/acme/app@refs/heads/main"}
				delete(field(m, "invocation"), "parameters")
				delete(m, "materials")
			}),
			want: &Provenance{
				SLSAVersion:      "0.2",
				BuilderID:        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v1.10.0",
				BuildType:        "https://github.com/slsa-framework/slsa-github-generator/container@v1",
				SourceRepository: "https://github.com/acme/app",
				SourceRef:        "refs/heads/main",
			},
		},
		{
			name:          "v1 docker buildx configSource",
			predicateType: PredicateSLSAProvenanceV1,
			raw: mutateJSON(t, v1, func(m map[string]any) {
				bd := field(m, "buildDefinition")
				bd["buildType"] = "https://mobyproject.org/buildkit@v1"
				bd["externalParameters"] = map[string]any{
					"configSource": map[string]any{
						"uri":    "https://github.com/acme/app.git#refs/tags/v1.4.2",
						"digest": map[string]any{"sha1": acmeCommit},
						"path":   "Dockerfile",
					},
					"request": map[string]any{"frontend": "dockerfile.v0"},
				}
				bd["resolvedDependencies"] = []any{
					map[string]any{"uri": "pkg:docker/golang@1.23.4-alpine3.20?platform=linux%2Famd64", "digest": map[string]any{"sha256": golangBase}},
				}
				field(m, "runDetails", "builder")["id"] = "https://github.com/acme/app/actions/runs/7342234567/attempts/1"
			}),
			want: &Provenance{
				SLSAVersion:      "1.0",
				BuilderID:        "https://github.com/acme/app/actions/runs/7342234567/attempts/1",
				BuildType:        "https://mobyproject.org/buildkit@v1",
				SourceRepository: "https://github.com/acme/app.git",
				SourceRef:        "refs/tags/v1.4.2",
				SourceRevision:   acmeCommit,
				Parameters: map[string]any{
					"configSource": map[string]any{
						"uri":    "https://github.com/acme/app.git#refs/tags/v1.4.2",
						"digest": map[string]any{"sha1": acmeCommit},
						"path":   "Dockerfile",
					},
					"request": map[string]any{"frontend": "dockerfile.v0"},
				},
				Materials: []Material{{URI: "pkg:docker/golang@1.23.4-alpine3.20?platform=linux%2Famd64", Digest: map[string]string{"sha256": golangBase}}},
			},
		},
		{
			name:          "v1 source from workflow parameters without resolved dependencies",
			predicateType: PredicateSLSAProvenanceV1,
			raw: mutateJSON(t, v1, func(m map[string]any) {
				delete(field(m, "buildDefinition"), "resolvedDependencies")
			}),
			want: &Provenance{
				SLSAVersion:      "1.0",
				BuilderID:        "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2",
				BuildType:        "https://actions.github.io/buildtypes/workflow/v1",
				SourceRepository: "https://github.com/acme/app",
				SourceRef:        "refs/tags/v1.4.2",
				Parameters: map[string]any{"workflow": map[string]any{
					"ref": "refs/tags/v1.4.2", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml",
				}},
			},
		},
		{name: "v0.2 bad JSON", predicateType: PredicateSLSAProvenanceV02, raw: v02[:40], wantErr: "slsa provenance v0.2: unexpected end of JSON input"},
		{name: "v1 bad JSON", predicateType: PredicateSLSAProvenanceV1, raw: []byte(`{"buildDefinition":}`), wantErr: "slsa provenance v1: invalid character"},
		{name: "v0.2 null", predicateType: PredicateSLSAProvenanceV02, raw: []byte(`null`), wantErr: "predicate is empty"},
		{name: "v1 missing", predicateType: PredicateSLSAProvenanceV1, raw: nil, wantErr: "predicate is empty"},
		{name: "v1 array", predicateType: PredicateSLSAProvenanceV1, raw: []byte(`[]`), wantErr: "cannot unmarshal array"},
		{
			name:          "v0.2 missing builder id",
			predicateType: PredicateSLSAProvenanceV02,
			raw:           mutateJSON(t, v02, func(m map[string]any) { delete(m, "builder") }),
			wantErr:       "slsa provenance v0.2: builder id is missing",
		},
		{
			name:          "v0.2 builder of wrong type",
			predicateType: PredicateSLSAProvenanceV02,
			raw:           mutateJSON(t, v02, func(m map[string]any) { m["builder"] = "https://github.com/actions/runner" }),
			wantErr:       "cannot unmarshal string",
		},
		{
			name:          "v0.2 missing buildType",
			predicateType: PredicateSLSAProvenanceV02,
			raw:           mutateJSON(t, v02, func(m map[string]any) { delete(m, "buildType") }),
			wantErr:       "buildType is missing",
		},
		{
			name:          "v0.2 parameters not an object",
			predicateType: PredicateSLSAProvenanceV02,
			raw:           mutateJSON(t, v02, func(m map[string]any) { field(m, "invocation")["parameters"] = []any{"--release"} }),
			wantErr:       "invocation.parameters: want a JSON object",
		},
		{
			name:          "v0.2 bad build timestamp",
			predicateType: PredicateSLSAProvenanceV02,
			raw:           mutateJSON(t, v02, func(m map[string]any) { field(m, "metadata")["buildStartedOn"] = "yesterday" }),
			wantErr:       "cannot parse",
		},
		{
			name:          "v0.2 materials of wrong type",
			predicateType: PredicateSLSAProvenanceV02,
			raw:           mutateJSON(t, v02, func(m map[string]any) { m["materials"] = "git+https://github.com/acme/app" }),
			wantErr:       "cannot unmarshal string",
		},
		{
			name:          "v1 missing builder id",
			predicateType: PredicateSLSAProvenanceV1,
			raw:           mutateJSON(t, v1, func(m map[string]any) { delete(field(m, "runDetails"), "builder") }),
			wantErr:       "slsa provenance v1: builder id is missing",
		},
		{
			name:          "v1 missing buildType",
			predicateType: PredicateSLSAProvenanceV1,
			raw:           mutateJSON(t, v1, func(m map[string]any) { delete(field(m, "buildDefinition"), "buildType") }),
			wantErr:       "buildType is missing",
		},
		{
			name:          "v1 externalParameters not an object",
			predicateType: PredicateSLSAProvenanceV1,
			raw:           mutateJSON(t, v1, func(m map[string]any) { field(m, "buildDefinition")["externalParameters"] = "main" }),
			wantErr:       "externalParameters: want a JSON object",
		},
		{
			name:          "v1 digest of wrong type",
			predicateType: PredicateSLSAProvenanceV1,
			raw: mutateJSON(t, v1, func(m map[string]any) {
				field(m, "buildDefinition")["resolvedDependencies"] = []any{map[string]any{"uri": "git+https://x", "digest": []any{"abc"}}}
			}),
			wantErr: "cannot unmarshal array",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePredicate(tt.predicateType, tt.raw)
			if !wantErr(t, err, tt.wantErr) {
				return
			}
			if got.Kind() != KindProvenance {
				t.Fatalf("Kind() = %q", got.Kind())
			}
			mustEqual(t, got, tt.want)
		})
	}
}

func TestProvenanceJSON(t *testing.T) {
	p, err := ParsePredicate(PredicateSLSAProvenanceV1, predicateOf(t, readFixture(t, "statement-slsa-v1.json")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"slsaVersion", "builderId", "buildType", "sourceRepository", "sourceRef", "sourceRevision", "parameters", "materials"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}

func TestSplitSourceURI(t *testing.T) {
	tests := []struct {
		uri, repo, ref string
	}{
		{"git+https://github.com/acme/app@refs/heads/main", "https://github.com/acme/app", "refs/heads/main"},
		{"git+https://github.com/acme/app", "https://github.com/acme/app", ""},
		{"https://github.com/acme/app.git#refs/tags/v1.0.0", "https://github.com/acme/app.git", "refs/tags/v1.0.0"},
		{"git+ssh://git@github.com/acme/app@refs/heads/main", "ssh://git@github.com/acme/app", "refs/heads/main"},
		{"git+ssh://git@github.com/acme/app", "ssh://git@github.com/acme/app", ""},
		{"git+https://gitlab.example/group/sub/app@4c1f0b2a", "https://gitlab.example/group/sub/app", "4c1f0b2a"},
		{"github.com/acme/app@main", "github.com/acme/app", "main"},
		{"git+https://github.com", "https://github.com", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			repo, ref := splitSourceURI(tt.uri)
			if repo != tt.repo || ref != tt.ref {
				t.Fatalf("splitSourceURI(%q) = %q, %q; want %q, %q", tt.uri, repo, ref, tt.repo, tt.ref)
			}
		})
	}
}

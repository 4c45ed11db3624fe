package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	slsa02 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v0.2"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
)

// Provenance is SLSA build provenance, normalized across SLSA v0.2 and v1.
type Provenance struct {
	// SLSAVersion is "0.2" or "1.0".
	SLSAVersion string `json:"slsaVersion"`
	// BuilderID identifies the build platform (v0.2 builder.id, v1
	// runDetails.builder.id), e.g.
	// "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0".
	BuilderID string `json:"builderId"`
	// BuildType is a URI naming the build's schema (v0.2 buildType, v1
	// buildDefinition.buildType).
	BuildType string `json:"buildType"`
	// SourceRepository is the source the build started from, without a
	// "git+" prefix nor a ref, e.g. "https://github.com/acme/app". Empty if
	// the provenance does not say. See SourceRevision for where it is found.
	SourceRepository string `json:"sourceRepository,omitempty"`
	// SourceRef is the ref named with the source, e.g. "refs/heads/main".
	SourceRef string `json:"sourceRef,omitempty"`
	// SourceRevision is the source's git commit. It comes from the first
	// resource with a "gitCommit" or "sha1" digest among: for v1,
	// resolvedDependencies then externalParameters.configSource; for v0.2,
	// invocation.configSource then materials. Failing that, for v1 the
	// repository and ref (no revision) come from
	// externalParameters.workflow (GitHub Actions build types).
	SourceRevision string `json:"sourceRevision,omitempty"`
	// Parameters are the build's user-controlled parameters: v1
	// externalParameters, v0.2 invocation.parameters.
	Parameters map[string]any `json:"parameters,omitempty"`
	// Materials are the build's inputs: v1 resolvedDependencies, v0.2
	// materials.
	Materials []Material `json:"materials,omitempty"`
}

// Kind returns KindProvenance.
func (*Provenance) Kind() string { return KindProvenance }

// Material is one input of a build.
type Material struct {
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

func parseProvenanceV02(raw json.RawMessage) (*Provenance, error) {
	var p slsa02.ProvenancePredicate
	if err := decodePredicate(raw, &p); err != nil {
		return nil, fmt.Errorf("attest: slsa provenance v0.2: %w", err)
	}
	params, err := asObject(p.Invocation.Parameters)
	if err != nil {
		return nil, fmt.Errorf("attest: slsa provenance v0.2: invocation.parameters: %w", err)
	}
	out := &Provenance{
		SLSAVersion: "0.2",
		BuilderID:   p.Builder.ID,
		BuildType:   p.BuildType,
		Parameters:  params,
	}
	if err := out.check(); err != nil {
		return nil, fmt.Errorf("attest: slsa provenance v0.2: %w", err)
	}
	cs := p.Invocation.ConfigSource
	candidates := []Material{{URI: cs.URI, Digest: cs.Digest}}
	for _, m := range p.Materials {
		out.Materials = append(out.Materials, Material{URI: m.URI, Digest: m.Digest})
	}
	candidates = append(candidates, out.Materials...)
	if !out.setSource(candidates) && cs.URI != "" {
		out.SourceRepository, out.SourceRef = splitSourceURI(cs.URI)
	}
	return out, nil
}

func parseProvenanceV1(raw json.RawMessage) (*Provenance, error) {
	var p slsa1.ProvenancePredicate
	if err := decodePredicate(raw, &p); err != nil {
		return nil, fmt.Errorf("attest: slsa provenance v1: %w", err)
	}
	bd := p.BuildDefinition
	params, err := asObject(bd.ExternalParameters)
	if err != nil {
		return nil, fmt.Errorf("attest: slsa provenance v1: buildDefinition.externalParameters: %w", err)
	}
	out := &Provenance{
		SLSAVersion: "1.0",
		BuilderID:   p.RunDetails.Builder.ID,
		BuildType:   bd.BuildType,
		Parameters:  params,
	}
	if err := out.check(); err != nil {
		return nil, fmt.Errorf("attest: slsa provenance v1: %w", err)
	}
	for _, d := range bd.ResolvedDependencies {
		uri := d.URI
		if uri == "" {
			uri = d.Name
		}
		out.Materials = append(out.Materials, Material{URI: uri, Digest: d.Digest})
	}
	candidates := append([]Material(nil), out.Materials...)
	if cs, ok := params["configSource"].(map[string]any); ok {
		candidates = append(candidates, Material{URI: stringField(cs, "uri"), Digest: stringMap(cs["digest"])})
	}
	if !out.setSource(candidates) {
		if wf, ok := params["workflow"].(map[string]any); ok {
			out.SourceRepository = stringField(wf, "repository")
			out.SourceRef = stringField(wf, "ref")
		}
	}
	return out, nil
}

func (p *Provenance) check() error {
	if p.BuilderID == "" {
		return errors.New("builder id is missing")
	}
	if p.BuildType == "" {
		return errors.New("buildType is missing")
	}
	return nil
}

// setSource takes the source from the first candidate with a URI and a git
// commit digest.
func (p *Provenance) setSource(candidates []Material) bool {
	for _, c := range candidates {
		rev := c.Digest["gitCommit"]
		if rev == "" {
			rev = c.Digest["sha1"]
		}
		if rev == "" || c.URI == "" {
			continue
		}
		p.SourceRepository, p.SourceRef = splitSourceURI(c.URI)
		p.SourceRevision = rev
		return true
	}
	return false
}

// splitSourceURI splits a source URI in SLSA's "git+https://host/repo@ref"
// form, or docker buildx's "https://host/repo.git#ref" form, into the
// repository (without "git+") and the ref. An "@" before the path, as in
// "ssh://git@host/repo", is user information, not a ref.
func splitSourceURI(uri string) (repo, ref string) {
	uri = strings.TrimPrefix(uri, "git+")
	if r, frag, ok := strings.Cut(uri, "#"); ok {
		return r, frag
	}
	pathStart := 0
	if _, after, ok := strings.Cut(uri, "://"); ok {
		pathStart = len(uri) - len(after)
	}
	if slash := strings.IndexByte(uri[pathStart:], '/'); slash >= 0 {
		pathStart += slash
		if at := strings.IndexByte(uri[pathStart:], '@'); at >= 0 {
			return uri[:pathStart+at], uri[pathStart+at+1:]
		}
	}
	return uri, ""
}

// decodePredicate decodes a predicate that must be present.
func decodePredicate(raw json.RawMessage, v any) error {
	if isJSONNull(raw) {
		return errors.New("predicate is empty")
	}
	return json.Unmarshal(raw, v)
}

// asObject accepts a decoded JSON object or nothing.
func asObject(v any) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	default:
		return nil, fmt.Errorf("want a JSON object, got %T", v)
	}
}

func stringField(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func stringMap(v any) map[string]string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

package attest

import (
	"slices"
	"strings"
)

// licenseSet collects license expressions and the license identifiers they
// mention, for an SBOM's summary lists.
type licenseSet struct {
	exprs map[string]struct{}
	ids   map[string]struct{}
}

func newLicenseSet() *licenseSet {
	return &licenseSet{exprs: map[string]struct{}{}, ids: map[string]struct{}{}}
}

// addExpression records an SPDX license expression and its identifiers.
func (s *licenseSet) addExpression(expr string) {
	s.exprs[expr] = struct{}{}
	for _, id := range licenseIDs(expr) {
		s.ids[id] = struct{}{}
	}
}

// addName records a free-text license name, which has no identifiers.
func (s *licenseSet) addName(name string) { s.exprs[name] = struct{}{} }

func (s *licenseSet) sorted() (exprs, ids []string) {
	return sortedKeys(s.exprs), sortedKeys(s.ids)
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// licenseIDs returns the license identifiers (including LicenseRef-...) of an
// SPDX license expression, such as ["Apache-2.0", "MIT"] for
// "(MIT OR Apache-2.0)". Operators and the exception after WITH are left
// out. It does not check the expression's grammar: a policy needs the
// licenses mentioned, and a malformed expression still names them.
func licenseIDs(expr string) []string {
	var ids []string
	afterWith := false
	for _, tok := range strings.FieldsFunc(expr, func(r rune) bool {
		return r == '(' || r == ')' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		switch strings.ToUpper(tok) {
		case "AND", "OR":
			continue
		case "WITH":
			afterWith = true
			continue
		case "NONE", "NOASSERTION":
			continue
		}
		if afterWith {
			afterWith = false
			continue
		}
		ids = append(ids, tok)
	}
	return ids
}

// isLicenseValue reports whether an SPDX license field holds a license, as
// opposed to being empty, "NONE" or "NOASSERTION".
func isLicenseValue(v string) bool {
	return v != "" && v != "NONE" && v != "NOASSERTION"
}

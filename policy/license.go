package policy

import (
	"slices"
	"strings"
)

// licenseSummary returns the distinct license expressions, and the distinct
// license ids inside them (operators AND, OR and WITH and the exception after
// WITH left out), both sorted. A name with spaces that is no expression
// ("Apache License 2.0") contributes no id.
func licenseSummary(exprs []string) (licenses, ids []string) {
	seenL, seenID := map[string]bool{}, map[string]bool{}
	for _, e := range exprs {
		if e == "" || seenL[e] {
			continue
		}
		seenL[e] = true
		licenses = append(licenses, e)
		tokens := strings.FieldsFunc(e, func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == '\t' })
		if !isExpression(tokens) {
			continue
		}
		for i := 0; i < len(tokens); i++ {
			switch t := tokens[i]; strings.ToUpper(t) {
			case "AND", "OR":
			case "WITH":
				i++ // the exception
			default:
				if !seenID[t] {
					seenID[t] = true
					ids = append(ids, t)
				}
			}
		}
	}
	slices.Sort(licenses)
	slices.Sort(ids)
	return nonNil(licenses), nonNil(ids)
}

// isExpression reports whether tokens alternate ids and operators.
func isExpression(tokens []string) bool {
	for i, t := range tokens {
		op := t == "AND" || t == "OR" || t == "WITH"
		if op == (i%2 == 0) {
			return false
		}
	}
	return len(tokens)%2 == 1
}

package rego_test

import (
	"bytes"
	"strings"

	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// topdownLines renders the notes and failures of a failed test's trace.
func topdownLines(r *tester.Result) []string {
	var buf bytes.Buffer
	topdown.PrettyTraceWithLocation(&buf, r.Trace)
	lines := strings.Split(buf.String(), "\n")
	var out []string
	for _, l := range lines {
		if strings.Contains(l, "Fail") || strings.Contains(l, "Note") {
			out = append(out, l)
		}
	}
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return out
}

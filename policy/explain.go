package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation says which deny and warn rules fired in one evaluation.
type Explanation struct {
	Rules []FiredRule `json:"rules"`
}

// FiredRule is a deny or warn rule whose body succeeded.
type FiredRule struct {
	// Rule is the rule's full name, e.g. data.portcullis.policies.sbom.deny.
	Rule string `json:"rule"`
	// Location is the rule's file:line.
	Location string `json:"location"`
	// Times counts how often its body succeeded (once per message, or more).
	Times int `json:"times"`
}

func (x *Explanation) fill(events []*topdown.Event) {
	byLoc := map[string]*FiredRule{}
	for _, ev := range events {
		if ev.Op != topdown.ExitOp {
			continue
		}
		r, ok := ev.Node.(*ast.Rule)
		if !ok || r.Module == nil {
			continue
		}
		name := r.Head.Name.String()
		if len(r.Head.Reference) > 0 {
			name = r.Head.Reference[0].String()
		}
		if name != "deny" && name != "warn" {
			continue
		}
		loc := ""
		if r.Location != nil {
			loc = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		f, ok := byLoc[loc]
		if !ok {
			f = &FiredRule{Rule: r.Module.Package.Path.String() + "." + name, Location: loc}
			byLoc[loc] = f
		}
		f.Times++
	}
	x.Rules = x.Rules[:0]
	for _, f := range byLoc {
		x.Rules = append(x.Rules, *f)
	}
	slices.SortFunc(x.Rules, func(a, b FiredRule) int {
		return strings.Compare(a.Location, b.Location)
	})
}

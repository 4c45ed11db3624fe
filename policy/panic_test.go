package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// explodingPredicate panics when the input is converted for OPA, as a bug
// in any part of evaluation would.
type explodingPredicate struct{}

func (explodingPredicate) Kind() string { return "exploding" }

func (explodingPredicate) MarshalJSON() ([]byte, error) { panic("predicate exploded") }

// TestEvalPanicIsDenial: a panic while evaluating is a denial with the
// error, like any other evaluation failure (I3), never an allow.
func TestEvalPanicIsDenial(t *testing.T) {
	ctx := context.Background()
	e, err := NewEngine(ctx, bundleOf(map[string]string{"p.rego": "package portcullis\n\ndeny := set()\n"}))
	if err != nil {
		t.Fatal(err)
	}
	in := testInput()
	if d, err := e.Eval(ctx, in); err != nil || !d.Allow {
		t.Fatalf("the input is allowed without the bad predicate: %+v %v", d, err)
	}
	in.Evidence.Attestations.ByPredicateType["https://example.com/exploding"] = []contract.VerifiedAttestation{{Predicate: explodingPredicate{}}}
	d, err := e.Eval(ctx, in)
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.Where != "policy.Eval" {
		t.Fatalf("Eval error = %v, want a recovered panic", err)
	}
	if d.Allow || d.Error == "" || len(d.Deny) == 0 || !strings.Contains(d.Deny[0].Msg, "predicate exploded") || d.Revision != e.Revision() {
		t.Fatalf("decision %+v, want a denial that says why, under the engine's revision", d)
	}
}

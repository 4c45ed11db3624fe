// Package policy decides whether an image may be pushed, promoted or
// admitted: it turns the evidence gathered about an image into a versioned
// [contract.Input], evaluates it with OPA against a policy bundle ([Engine]), and
// returns a [contract.Verdict]. [Set] picks the bundle for a target and reloads it.
package policy

import (
	"errors"
)

// errNoAction is returned for an input without a valid action.
var errNoAction = errors.New("policy: input action must be push, promote or admit")

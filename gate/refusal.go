package gate

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/policy"
)

// ActionDelete is a refused deletion in a protected repository; it is
// recorded, never decided by policy.
const ActionDelete = policy.Action(audit.ActionDelete)

// Refusal is a write into a protected repository that was refused before
// (or without) any policy decision: an immutable tag it would move or
// delete, a blob that is not in the registry, a source namespace that may
// not be promoted from. Every one is recorded (docs/audit.md, "every
// decision is a record").
type Refusal struct {
	// Action is push, promote or [ActionDelete].
	Action     policy.Action
	Repository string
	// Digest is the manifest (or, for a refused blob, the blob) digest.
	Digest digest.Digest
	Tag    string
	// Target is where the write was going, if not Repository itself.
	Target string
	Reason string
	// Err marks a write that failed rather than was refused (the store
	// could not take what the gate allowed): recorded with verdict error.
	Err   bool
	Actor policy.Request
}

// Refused records r as a denial. A refusal is a refusal whether or not
// its record could be written; a failed append is logged.
func (g *Gate) Refused(ctx context.Context, r Refusal) {
	to := r.Target
	if to == "" {
		to = r.Repository
	}
	req := Request{Action: r.Action, Repository: r.Repository, Digest: r.Digest, Tag: r.Tag,
		Target: registryTarget(to, r.Tag), Actor: r.Actor}
	if r.Err {
		g.RecordFailure(ctx, req, errors.New(r.Reason))
		return
	}
	g.recordRefusal(ctx, req, r.Reason)
}

// recordRefusal records the denial of req for reason.
func (g *Gate) recordRefusal(ctx context.Context, req Request, reason string) *Decision {
	start := g.o.Now()
	d := &Decision{Time: start.UTC(), Request: req, TrustRevision: g.o.Verifier.Revision(),
		Decision: policy.Decision{Deny: []policy.Message{{Msg: reason}}, Warn: []policy.Message{}}}
	g.record(ctx, d, start)
	return d
}

// recordRefused, deferred by the methods that authorize a write, records
// the write's refusal when no decision already did: a *DeniedError without
// a decision is recorded as a denial, any other error (the gate could not
// decide) as an error. Refusals that carry their decision were recorded
// when it was taken.
func (g *Gate) recordRefused(ctx context.Context, req Request, err *error) {
	if *err == nil {
		return
	}
	var de *DeniedError
	if errors.As(*err, &de) {
		if de.Decision == nil {
			g.recordRefusal(ctx, req, de.Message)
		}
		return
	}
	g.RecordFailure(ctx, req, *err)
}

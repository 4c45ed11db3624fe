package gate

import (
	"context"
	"errors"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

// Refused records r as a denial. A refusal is a refusal whether or not
// its record could be written; a failed append is logged.
func (g *Gate) Refused(ctx context.Context, r contract.Refusal) {
	to := r.Target
	if to == "" {
		to = r.Repository
	}
	req := contract.Request{Action: r.Action, Repository: r.Repository, Digest: r.Digest, Tag: r.Tag,
		Target: registryTarget(to, r.Tag), Actor: r.Actor}
	if r.Err {
		g.RecordFailure(ctx, req, errors.New(r.Reason))
		return
	}
	g.recordRefusal(ctx, req, r.Reason)
}

// recordRefusal records the denial of req for reason.
func (g *Gate) recordRefusal(ctx context.Context, req contract.Request, reason string) *contract.Decision {
	start := g.o.Now()
	d := &contract.Decision{Time: start.UTC(), Request: req, TrustRevision: g.o.Verifier.Revision(),
		Verdict: contract.Verdict{Deny: []contract.Message{{Msg: reason}}, Warn: []contract.Message{}}}
	g.record(ctx, d, start)
	return d
}

// recordRefused, deferred by the methods that authorize a write, records
// the write's refusal when no decision already did: a *DeniedError without
// a decision is recorded as a denial, any other error (the gate could not
// decide) as an error. Refusals that carry their decision were recorded
// when it was taken.
func (g *Gate) recordRefused(ctx context.Context, req contract.Request, err *error) {
	if *err == nil {
		return
	}
	var de *contract.DeniedError
	if errors.As(*err, &de) {
		if de.Decision == nil {
			g.recordRefusal(ctx, req, de.Message)
		}
		return
	}
	g.RecordFailure(ctx, req, *err)
}

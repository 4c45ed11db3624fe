package registry

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

// Action is what a request does to a repository: the roles of access
// control (docs/access-control.md).
type Action string

// The actions. Push writes into unprotected repositories; promote writes
// into protected ones (through the gate); audit-read and policy-admin are
// registry-wide.
const (
	ActionPull        Action = "pull"
	ActionPush        Action = "push"
	ActionPromote     Action = "promote"
	ActionDelete      Action = "delete"
	ActionAuditRead   Action = "audit-read"
	ActionPolicyAdmin Action = "policy-admin"
)

// Caller is the authenticated sender of a request, as access control
// found it. A request without one (no access control configured, or an
// in-process call) may do everything.
type Caller interface {
	// Identity is the caller the gate records; nil for anonymous.
	Identity() *contract.Identity
	// Allowed reports whether the caller may do action on repo.
	Allowed(repo string, action Action) bool
	// Visible reports whether the catalog shows repo to the caller.
	Visible(repo string) bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c, for the registry's handlers.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller WithCaller put in ctx, or nil.
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// allowed reports whether the request's caller may do action on repo.
func allowed(ctx context.Context, repo string, action Action) bool {
	c := CallerFrom(ctx)
	return c == nil || c.Allowed(repo, action)
}

// actor is the contract.Actor for the gate's records.
func actor(ctx context.Context) contract.Actor {
	if c := CallerFrom(ctx); c != nil {
		return contract.Actor{Identity: c.Identity()}
	}
	return contract.Actor{}
}

// Route is a parsed /v2/ path: Kind is base, catalog, tags, manifest,
// blob, uploads, upload or referrers; Name the repository; Arg the
// reference, digest or upload id.
type Route struct{ Kind, Name, Arg string }

// ParsePath parses a /v2/ request path as the registry routes it.
func ParsePath(p string) (Route, bool) {
	rt, ok := parseRoute(p)
	return Route{Kind: rt.kind, Name: rt.name, Arg: rt.arg}, ok
}

// Quota is asked before a blob is linked into a repository (when an
// upload completes, or on a mount). A *QuotaError refuses it.
type Quota interface {
	Admit(ctx context.Context, repo string, d digest.Digest, size int64) error
}

// QuotaError is a write refused because the namespace is full; the
// client sees DENIED with Message.
type QuotaError struct{ Message string }

func (e *QuotaError) Error() string { return e.Message }

// WithQuota checks every blob linked by an upload or a mount against q.
func WithQuota(q Quota) Option { return func(r *Registry) { r.quota = q } }

// callerName names the request's caller in messages.
func callerName(ctx context.Context) string {
	if c := CallerFrom(ctx); c != nil {
		if id := c.Identity(); id != nil {
			return id.Name
		}
		return "anonymous"
	}
	return "the caller"
}

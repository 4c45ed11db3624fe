package auth

import (
	"strings"

	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
)

// Kind says how a principal authenticated.
type Kind string

// The kinds of principal.
const (
	KindAnonymous Kind = "anonymous"
	KindUser      Kind = "user"  // htpasswd
	KindRobot     Kind = "robot" // robot token
	KindOIDC      Kind = "oidc"  // OIDC ID token
)

// RobotPrefix starts the name of every robot identity ("robot$ci"), so a
// robot is never mistaken for a user of the same name.
const RobotPrefix = "robot$"

// Principal is the caller of one request. It implements registry.Caller.
type Principal struct {
	// Name is the user name, "robot$<name>" for a robot, "" for anonymous.
	Name   string
	Kind   Kind
	Groups []string

	robot *Robot
	// access is what a bearer token grants; nil when the request carried
	// credentials themselves (basic auth) or none.
	access *accessSet
	authz  *Authorizer
}

var _ registry.Caller = (*Principal)(nil)

var anonymous = &Principal{Kind: KindAnonymous}

func (p *Principal) robotName() string { return strings.TrimPrefix(p.Name, RobotPrefix) }

// Identity implements registry.Caller.
func (p *Principal) Identity() *contract.Identity {
	if p.Kind == KindAnonymous {
		return nil
	}
	return &contract.Identity{Name: p.Name, Groups: p.Groups}
}

// Allowed implements registry.Caller: the grants allow it and, for a
// bearer token, the token grants it too.
func (p *Principal) Allowed(repo string, action registry.Action) bool {
	if !p.authz.Allowed(p, repo, action) {
		return false
	}
	return p.access == nil || p.access.has(tokenScope(repo, action))
}

// Visible implements registry.Caller: the catalog lists repo (the grants
// allow pulling it, whatever the token's scopes).
func (p *Principal) Visible(repo string) bool {
	return p.authz.Allowed(p, repo, registry.ActionPull)
}

// display names p in messages and logs.
func (p *Principal) display() string {
	if p.Kind == KindAnonymous {
		return "anonymous"
	}
	return p.Name
}

// tokenScope is the Docker token scope that action on repo needs: clients
// know pull, push and delete; promote is a push into a protected
// repository; the registry-wide roles are "registry:portcullis:<role>".
func tokenScope(repo string, action registry.Action) accessKey {
	switch action {
	case registry.ActionPull, registry.ActionPush, registry.ActionDelete:
		return accessKey{"repository", repo, string(action)}
	case registry.ActionPromote:
		return accessKey{"repository", repo, string(registry.ActionPush)}
	}
	return accessKey{"registry", "portcullis", string(action)}
}

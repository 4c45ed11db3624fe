// Package auth is the registry's access control: who is calling (HTTP
// basic auth against an htpasswd file, robot tokens, OIDC ID tokens, and
// the Docker token flow's signed JWTs), what they may do (roles granted
// per namespace), how often (rate limits, concurrent uploads) and how much
// they may store (quotas). docs/access-control.md describes it for
// operators.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
)

// AllNamespaces in a grant covers every repository and the registry-wide
// roles (audit-read, policy-admin).
const AllNamespaces = "*"

// Grant gives roles on a namespace to users, robots and groups.
type Grant struct {
	// Namespace is a repository prefix: "prod" covers prod and prod/...;
	// "*" covers everything.
	Namespace string `json:"namespace"`
	// Roles: pull, push, promote, delete, audit-read, policy-admin.
	Roles  []registry.Action `json:"roles"`
	Users  []string          `json:"users,omitempty"`
	Robots []string          `json:"robots,omitempty"`
	Groups []string          `json:"groups,omitempty"`
}

// Scope is a role on a namespace, as robots carry them.
type Scope struct {
	Namespace string            `json:"namespace"`
	Roles     []registry.Action `json:"roles"`
}

// Policy is who may do what: the "auth" grants of portcullis.yaml.
type Policy struct {
	Grants []Grant
	// AnonymousPull lists the namespaces anyone may pull from, without
	// credentials.
	AnonymousPull []string
	// Groups maps a group to its users (htpasswd users have no groups of
	// their own).
	Groups map[string][]string
}

// roleActions is what each role allows: push and promote include pull,
// since every client reads what it writes (blob checks, manifests).
var roleActions = map[registry.Action][]registry.Action{
	registry.ActionPull:        {registry.ActionPull},
	registry.ActionPush:        {registry.ActionPush, registry.ActionPull},
	registry.ActionPromote:     {registry.ActionPromote, registry.ActionPull},
	registry.ActionDelete:      {registry.ActionDelete},
	registry.ActionAuditRead:   {registry.ActionAuditRead},
	registry.ActionPolicyAdmin: {registry.ActionPolicyAdmin},
}

// registryWide are the roles not about a repository.
func registryWide(a registry.Action) bool {
	return a == registry.ActionAuditRead || a == registry.ActionPolicyAdmin
}

// validateScope checks a namespace and its roles.
func validateScope(ns string, roles []registry.Action) error {
	if ns == "" {
		return fmt.Errorf("namespace is required (%q for all)", AllNamespaces)
	}
	if ns != AllNamespaces {
		if err := registry.ValidateRepository(strings.Trim(ns, "/")); err != nil {
			return fmt.Errorf("namespace %q: %w", ns, err)
		}
	}
	if len(roles) == 0 {
		return fmt.Errorf("namespace %q: no roles", ns)
	}
	for _, r := range roles {
		if _, ok := roleActions[r]; !ok {
			return fmt.Errorf("namespace %q: unknown role %q (want pull, push, promote, delete, audit-read or policy-admin)", ns, r)
		}
		if registryWide(r) && ns != AllNamespaces {
			return fmt.Errorf("namespace %q: %s is registry-wide: grant it on namespace %q", ns, r, AllNamespaces)
		}
	}
	return nil
}

// Validate checks one grant: its namespace, its roles, and that it names
// someone.
func (g Grant) Validate() error {
	if err := validateScope(g.Namespace, g.Roles); err != nil {
		return err
	}
	if len(g.Users)+len(g.Robots)+len(g.Groups) == 0 {
		return errors.New("names no users, robots or groups")
	}
	return nil
}

// ParseScopes parses "namespace=role,role" specifications (the robot
// CLI's --scope flags).
func ParseScopes(specs []string) ([]Scope, error) {
	var out []Scope
	for _, s := range specs {
		ns, roles, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("scope %q: want NAMESPACE=ROLE[,ROLE...]", s)
		}
		sc := Scope{Namespace: ns}
		for _, r := range strings.Split(roles, ",") {
			sc.Roles = append(sc.Roles, registry.Action(strings.TrimSpace(r)))
		}
		if err := validateScope(sc.Namespace, sc.Roles); err != nil {
			return nil, fmt.Errorf("scope %q: %w", s, err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// grantRule is a Grant compiled for matching.
type grantRule struct {
	ns      string
	actions map[registry.Action]bool
	users   map[string]bool
	robots  map[string]bool
	groups  map[string]bool
}

// Authorizer decides whether a principal may do an action on a
// repository, from the configured grants and the robot's own scopes.
type Authorizer struct {
	rules     []grantRule
	anonymous []string
	groupsOf  map[string][]string // user -> groups
}

// NewAuthorizer compiles p; an unknown role or a bad namespace is an error.
func NewAuthorizer(p Policy) (*Authorizer, error) {
	a := &Authorizer{groupsOf: map[string][]string{}}
	set := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range l {
			m[s] = true
		}
		return m
	}
	for i, g := range p.Grants {
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("auth.grants[%d]: %w", i, err)
		}
		r := grantRule{ns: strings.Trim(g.Namespace, "/"), actions: expand(g.Roles), users: set(g.Users), robots: set(g.Robots), groups: set(g.Groups)}
		if g.Namespace == AllNamespaces {
			r.ns = AllNamespaces
		}
		a.rules = append(a.rules, r)
	}
	for _, ns := range p.AnonymousPull {
		if err := validateScope(ns, []registry.Action{registry.ActionPull}); err != nil {
			return nil, fmt.Errorf("auth.anonymousPull: %w", err)
		}
		a.anonymous = append(a.anonymous, strings.Trim(ns, "/"))
	}
	for group, users := range p.Groups {
		for _, u := range users {
			a.groupsOf[u] = append(a.groupsOf[u], group)
		}
	}
	for u := range a.groupsOf {
		slices.Sort(a.groupsOf[u])
	}
	return a, nil
}

func expand(roles []registry.Action) map[registry.Action]bool {
	m := map[registry.Action]bool{}
	for _, r := range roles {
		for _, a := range roleActions[r] {
			m[a] = true
		}
	}
	return m
}

// GroupsOf returns the configured groups of a user.
func (a *Authorizer) GroupsOf(user string) []string { return a.groupsOf[user] }

// AnonymousPull reports whether repo may be pulled without credentials.
func (a *Authorizer) AnonymousPull(repo string) bool {
	for _, ns := range a.anonymous {
		if inNamespace(repo, ns) {
			return true
		}
	}
	return false
}

// inNamespace reports whether repo is ns or below it ("*": everything).
// repo "" is a registry-wide action: only "*" covers it.
func inNamespace(repo, ns string) bool {
	if ns == AllNamespaces {
		return true
	}
	return contract.InNamespace(repo, ns)
}

// Allowed reports whether p may do action on repo (repo "" for the
// registry-wide roles).
func (a *Authorizer) Allowed(p *Principal, repo string, action registry.Action) bool {
	if action == registry.ActionPull && a.AnonymousPull(repo) {
		return true
	}
	if p == nil || p.Kind == KindAnonymous {
		return false
	}
	for i := range a.rules {
		r := &a.rules[i]
		if !r.actions[action] || !inNamespace(repo, r.ns) {
			continue
		}
		if r.matches(p) {
			return true
		}
	}
	if p.robot != nil {
		for _, s := range p.robot.Scopes {
			if inNamespace(repo, strings.Trim(s.Namespace, "/")) && expand(s.Roles)[action] {
				return true
			}
		}
	}
	return false
}

func (r *grantRule) matches(p *Principal) bool {
	if p.Kind == KindRobot {
		if r.robots[p.robotName()] {
			return true
		}
	} else if r.users[p.Name] {
		return true
	}
	for _, g := range p.Groups {
		if r.groups[g] {
			return true
		}
	}
	return false
}

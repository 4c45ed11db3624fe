package auth

import (
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/registry"
)

func TestAuthorizer(t *testing.T) {
	a, err := NewAuthorizer(grantsForTests)
	if err != nil {
		t.Fatal(err)
	}
	user := func(n string) *Principal { return &Principal{Name: n, Kind: KindUser, Groups: a.GroupsOf(n), authz: a} }
	robot := &Principal{Name: RobotPrefix + "release", Kind: KindRobot, authz: a}
	ownScopes := &Principal{Name: RobotPrefix + "ci", Kind: KindRobot, authz: a, robot: &Robot{Name: "ci", Scopes: []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPush}}}}}
	anon := &Principal{Kind: KindAnonymous, authz: a}
	// A user named like a robot is not the robot.
	impostor := user("release")
	tests := []struct {
		name   string
		p      *Principal
		repo   string
		action registry.Action
		want   bool
	}{
		{"push covers the namespace", user("alice"), "staging", registry.ActionPush, true},
		{"push covers below", user("alice"), "staging/app/x", registry.ActionPush, true},
		{"push includes pull", user("alice"), "staging/app", registry.ActionPull, true},
		{"prefix is a path segment", user("alice"), "stagingx/app", registry.ActionPull, false},
		{"pull is not push", user("alice"), "team/app", registry.ActionPush, false},
		{"push is not delete", user("alice"), "staging/app", registry.ActionDelete, false},
		{"push is not promote", user("alice"), "staging/app", registry.ActionPromote, false},
		{"group member", user("carol"), "staging/app", registry.ActionPush, true},
		{"no grant", user("dave"), "staging/app", registry.ActionPull, false},
		{"robot grant", robot, "prod/app", registry.ActionPromote, true},
		{"promote includes pull", robot, "prod/app", registry.ActionPull, true},
		{"user named like a robot", impostor, "prod/app", registry.ActionPromote, false},
		{"robot's own scope", ownScopes, "ci/app", registry.ActionPush, true},
		{"robot's own scope only", ownScopes, "staging/app", registry.ActionPull, false},
		{"anonymous pull", anon, "public/app", registry.ActionPull, true},
		{"anonymous push", anon, "public/app", registry.ActionPush, false},
		{"anonymous elsewhere", anon, "staging/app", registry.ActionPull, false},
		{"anyone pulls public", user("dave"), "public/x", registry.ActionPull, true},
		{"registry-wide role", user("auditor"), "", registry.ActionAuditRead, true},
		{"registry-wide role not given", user("alice"), "", registry.ActionAuditRead, false},
		{"repository roles are not registry-wide", user("alice"), "", registry.ActionPull, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Allowed(tc.p, tc.repo, tc.action); got != tc.want {
				t.Errorf("Allowed(%s, %q, %s) = %v, want %v", tc.p.display(), tc.repo, tc.action, got, tc.want)
			}
		})
	}
}

func TestAuthorizerRejectsBadGrants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grant Grant
		want  string
	}{
		{"unknown role", Grant{Namespace: "a", Roles: []registry.Action{"admin"}, Users: []string{"x"}}, "unknown role"},
		{"registry-wide on a namespace", Grant{Namespace: "a", Roles: []registry.Action{registry.ActionAuditRead}, Users: []string{"x"}}, "registry-wide"},
		{"nobody", Grant{Namespace: "a", Roles: []registry.Action{registry.ActionPull}}, "no users"},
		{"no namespace", Grant{Roles: []registry.Action{registry.ActionPull}, Users: []string{"x"}}, "namespace is required"},
		{"bad namespace", Grant{Namespace: "A B", Roles: []registry.Action{registry.ActionPull}, Users: []string{"x"}}, "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAuthorizer(Policy{Grants: []Grant{tc.grant}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewAuthorizer: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestHtpasswdRefusesWeakHashes(t *testing.T) {
	for _, line := range []string{"alice:$apr1$abc$def", "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "alice:plain", "robot$x:$2y$05$abcdefghijklmnopqrstuu5H0pJ1aYhE1z6Q3m9c8kqC3o7V8yXKa"} {
		if _, err := ParseHtpasswd([]byte(line + "\n")); err == nil {
			t.Errorf("ParseHtpasswd(%q) accepted it", line)
		}
	}
}

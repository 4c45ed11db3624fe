package contract

import "strings"

// InNamespace reports whether repository repo is namespace ns or below it:
// "staging" holds "staging" and "staging/app", never "staging-old/app".
// Slashes around ns are ignored ("prod/" is "prod"). An empty ns or repo
// is in no namespace, so a misconfigured namespace matches nothing.
//
// It is the one copy of this rule: the gate's protected namespaces, the
// policy sets' registry prefixes, access control, scan on push and GC all
// ask it.
func InNamespace(repo, ns string) bool {
	ns = strings.Trim(ns, "/")
	if ns == "" || repo == "" {
		return false
	}
	return repo == ns || strings.HasPrefix(repo, ns+"/")
}

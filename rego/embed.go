// Package rego holds Portcullis's built-in Rego policy library, embedded in
// the binary.
//
// Every policy lives in its own package under data.portcullis.policies and
// is switched on and parameterised by its own key under
// data.portcullis.config (see docs/policies.md); the package portcullis in
// portcullis.rego gathers their deny and warn sets into data.portcullis.deny
// and data.portcullis.warn, the decision the engine reads. The policies read
// only input and data, so plain `opa test rego/` runs their _test.rego files
// too.
package rego

import "embed"

// FS holds the library's .rego files, tests included (the policy package
// leaves the _test.rego files out when it compiles a bundle).
//
//go:embed *.rego
var FS embed.FS

// DefaultSigned is default/default_signed.rego: the policy protected
// namespaces get when the configuration has none. It is not part of FS
// (not every bundle holds it); policy.WriteDefaultBundle writes it.
//
//go:embed default/default_signed.rego
var DefaultSigned string

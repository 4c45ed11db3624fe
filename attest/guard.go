package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// The exported parsers read untrusted input: each is its unexported
// implementation behind a guard that turns a panic into an error (I3 of
// docs/gate.md), so that a parser bug denies instead of crashing the server.
// attest imports no project package, so this is internal/panics.Recover in
// small.

// ErrInternal is wrapped by the error a parser returns when it panicked: a
// caller deciding on the result must deny (as for evidence it could not
// read), not merely set the document aside.
var ErrInternal = errors.New("internal error")

// guard, deferred directly, stores a panic as an error in *err (wrapping
// ErrInternal) and logs the stack.
func guard(where string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	stack := debug.Stack()
	slog.Default().LogAttrs(context.Background(), slog.LevelError, "panic recovered: denied",
		slog.String("where", where), slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(stack)))
	*err = fmt.Errorf("%w in %s: panic: %v", ErrInternal, where, v)
}

// ParseEnvelope decodes a DSSE envelope in JSON form. It is strict: the
// payload type, the payload and at least one signature are required, and
// the payload and every signature must be valid base64 (standard or
// URL-safe, as DSSE implementations accept both).
func ParseEnvelope(b []byte) (env *Envelope, err error) {
	defer guard("attest.ParseEnvelope", &err)
	return parseEnvelope(b)
}

// ParsePredicate decodes a statement's predicate according to its type. The
// raw JSON is decoded once, straight into the typed value. A predicate type
// this package does not know gives an [*Unknown] holding raw unchanged; a
// known type with a malformed predicate is an error.
func ParsePredicate(predicateType string, raw json.RawMessage) (p Predicate, err error) {
	defer guard("attest.ParsePredicate", &err)
	return parsePredicate(predicateType, raw)
}

// ParseStatement decodes an in-toto Statement (v0.1 or v1), typically the
// payload of a DSSE envelope. It fails on an unknown _type, a missing
// predicateType, no subject, or a subject without digests.
func ParseStatement(payload []byte) (st *Statement, err error) {
	defer guard("attest.ParseStatement", &err)
	return parseStatement(payload)
}

// ParseTrivyReport decodes a Trivy JSON report ("trivy image --format json").
// It fails on a document without Trivy's SchemaVersion, so that an
// unrelated JSON document is never read as a report with no findings.
func ParseTrivyReport(b []byte) (r *VulnReport, err error) {
	defer guard("attest.ParseTrivyReport", &err)
	return parseTrivyReport(b)
}

// Package panics turns a panic at a decision boundary into an error (I3 of
// docs/gate.md: a panic is a denial, never a crash and never an allow).
// The stack is logged where the panic is caught; the error says where, and
// what the panic was, for the reason a denial records.
//
// It imports only the standard library, so that every package may use it.
package panics

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Error is a recovered panic.
type Error struct {
	// Where names the boundary that caught it ("verifier.Collect").
	Where string
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

func (e *Error) Error() string {
	return fmt.Sprintf("internal error in %s: panic: %v", e.Where, e.Value)
}

// Unwrap returns the panic value when it is an error (a runtime error, say).
func (e *Error) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recover, deferred directly, turns a panic into an *Error stored in *err
// and logs its stack with log (slog.Default when nil):
//
//	func (v *Verifier) Collect(ctx context.Context, ...) (ev *Evidence, err error) {
//		defer panics.Recover(ctx, v.log, "verifier.Collect", &err)
//
// Without a panic it does nothing. recover only works when Recover is
// itself the deferred call, so never wrap it in another function.
func Recover(ctx context.Context, log *slog.Logger, where string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	*err = caught(ctx, log, where, v)
}

// Do runs fn and returns a panic in it as an *Error (logged), or fn's error.
func Do(ctx context.Context, log *slog.Logger, where string, fn func() error) (err error) {
	defer Recover(ctx, log, where, &err)
	return fn()
}

func caught(ctx context.Context, log *slog.Logger, where string, v any) *Error {
	e := &Error{Where: where, Value: v, Stack: debug.Stack()}
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(ctx, slog.LevelError, "panic recovered: denied",
		slog.String("where", where), slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(e.Stack)))
	return e
}

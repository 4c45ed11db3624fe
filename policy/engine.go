package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"go.opentelemetry.io/otel/attribute"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/internal/tracing"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// DefaultTimeout bounds one evaluation when the caller's context allows
// longer.
const DefaultTimeout = time.Second

// ErrUndefined is returned when the policy does not define
// data.portcullis.deny for an input.
var ErrUndefined = errors.New("policy: decision is undefined: data.portcullis.deny has no value")

var (
	denyRef = ast.MustParseRef("data.portcullis.deny")
	warnRef = ast.MustParseRef("data.portcullis.warn")
)

// Engine evaluates one compiled bundle. It is safe for concurrent use.
//
// A policy answers in package portcullis with a set `deny` (required) and a
// set `warn` (optional) of messages: strings or {"msg": string, "details":
// object}.
type Engine struct {
	source   string
	revision string
	query    oparego.PreparedEvalQuery
	timeout  time.Duration
	log      *slog.Logger
}

type engineConfig struct {
	timeout time.Duration
	log     *slog.Logger
}

// Option configures an [Engine].
type Option func(*engineConfig) error

// WithTimeout bounds each evaluation (default [DefaultTimeout]); a shorter
// deadline in the caller's context wins.
func WithTimeout(d time.Duration) Option {
	return func(c *engineConfig) error {
		if d <= 0 {
			return fmt.Errorf("policy: timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *engineConfig) error {
		if l == nil {
			return errors.New("policy: nil logger")
		}
		c.log = l
		return nil
	}
}

// CompileError is a bundle that does not parse or compile. Each error
// carries its file:line.
type CompileError struct {
	Source string
	Errors ast.Errors
}

func (e *CompileError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, err := range e.Errors {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("policy: compile bundle %s: %s", e.Source, strings.Join(msgs, "; "))
}

// NewEngine compiles b once and prepares its decision query.
func NewEngine(ctx context.Context, b *Bundle, opts ...Option) (*Engine, error) {
	cfg := engineConfig{timeout: DefaultTimeout, log: slog.Default()}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	revision, err := b.Revision()
	if err != nil {
		return nil, err
	}
	modules := make(map[string]*ast.Module, len(b.Modules))
	var parseErrs ast.Errors
	for _, m := range b.Modules {
		mod, err := parseModule(m)
		if err != nil {
			parseErrs = append(parseErrs, asASTErrors(err, m.Path)...)
			continue
		}
		modules[m.Path] = mod
	}
	if len(parseErrs) > 0 {
		return nil, &CompileError{Source: b.Source, Errors: parseErrs}
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, &CompileError{Source: b.Source, Errors: compiler.Errors}
	}
	if len(compiler.GetRulesExact(denyRef)) == 0 {
		return nil, fmt.Errorf("policy: bundle %s defines no rule %s: a policy answers with deny and warn sets in package portcullis", b.Source, denyRef)
	}
	query := "deny := data.portcullis.deny"
	if len(compiler.GetRulesExact(warnRef)) > 0 {
		query += "; warn := data.portcullis.warn"
	}
	data := b.Data
	if data == nil {
		data = map[string]any{}
	}
	pq, err := oparego.New(
		oparego.Query(query),
		oparego.Compiler(compiler),
		oparego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false))),
		// A built-in that fails (a malformed date in the allow-list) is an
		// error, not an undefined rule that would let the image through.
		oparego.StrictBuiltinErrors(true),
		oparego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare bundle %s: %w", b.Source, err)
	}
	return &Engine{source: b.Source, revision: revision, query: pq, timeout: cfg.timeout, log: cfg.log}, nil
}

func asASTErrors(err error, file string) ast.Errors {
	var errs ast.Errors
	if errors.As(err, &errs) {
		return errs
	}
	return ast.Errors{ast.NewError(ast.ParseErr, &ast.Location{File: file}, "%v", err)}
}

// Revision is the digest of the compiled bundle.
func (e *Engine) Revision() string { return e.revision }

// Source says where the compiled bundle came from.
func (e *Engine) Source() string { return e.source }

// EvalOption adjusts one evaluation.
type EvalOption func(*evalConfig)

type evalConfig struct {
	explain *Explanation
}

// Explain fills x with the deny and warn rules that fired.
func Explain(x *Explanation) EvalOption {
	return func(c *evalConfig) { c.explain = x }
}

// Eval decides for in, within ctx and the engine's timeout. On any error
// (invalid input, timeout, a policy error, an undefined or malformed
// decision) it returns the error and a denial: Allow is never true with an
// error.
func (e *Engine) Eval(ctx context.Context, in *contract.Input, opts ...EvalOption) (d contract.Verdict, err error) {
	ctx, span := tracing.Start(ctx, "policy.Eval", attribute.String("portcullis.policy_revision", e.revision))
	defer func() {
		span.SetAttributes(attribute.Bool("portcullis.allow", d.Allow), attribute.Int("portcullis.deny", len(d.Deny)))
		tracing.End(span, err)
	}()
	defer e.denyOnPanic(&d, &err)
	defer panics.Recover(ctx, e.log, "policy.Eval", &err)
	if in == nil || in.APIVersion != contract.APIVersion {
		return e.fail(fmt.Errorf("policy: input apiVersion must be %s", contract.APIVersion))
	}
	if !in.Action.Valid() {
		return e.fail(errNoAction)
	}
	v, err := inputValue(in)
	if err != nil {
		return e.fail(err)
	}
	return e.eval(ctx, v, opts)
}

// EvalJSON decides for an input given as JSON (e.g. a file written by hand
// or saved from an earlier decision); it must carry apiVersion
// portcullis.dev/v1.
func (e *Engine) EvalJSON(ctx context.Context, raw []byte, opts ...EvalOption) (d contract.Verdict, err error) {
	defer e.denyOnPanic(&d, &err)
	defer panics.Recover(ctx, e.log, "policy.EvalJSON", &err)
	var head struct {
		APIVersion string          `json:"apiVersion"`
		Action     contract.Action `json:"action"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return e.fail(fmt.Errorf("policy: input: %w", err))
	}
	if head.APIVersion != contract.APIVersion {
		return e.fail(fmt.Errorf("policy: input apiVersion is %q, want %s", head.APIVersion, contract.APIVersion))
	}
	if !head.Action.Valid() {
		return e.fail(errNoAction)
	}
	v, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		return e.fail(fmt.Errorf("policy: input: %w", err))
	}
	return e.eval(ctx, v, opts)
}

func (e *Engine) eval(ctx context.Context, input ast.Value, opts []EvalOption) (contract.Verdict, error) {
	var cfg evalConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	evalOpts := []oparego.EvalOption{oparego.EvalParsedInput(input)}
	var tracer *topdown.BufferTracer
	if cfg.explain != nil {
		tracer = topdown.NewBufferTracer()
		evalOpts = append(evalOpts, oparego.EvalQueryTracer(tracer))
	}
	rs, err := e.query.Eval(ctx, evalOpts...)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return e.fail(fmt.Errorf("policy: evaluate bundle %s: %w", e.source, err))
	}
	if len(rs) != 1 {
		if len(rs) == 0 {
			return e.fail(ErrUndefined)
		}
		return e.fail(fmt.Errorf("policy: decision has %d results, want 1", len(rs)))
	}
	deny, err := messages("deny", rs[0].Bindings["deny"])
	if err != nil {
		return e.fail(err)
	}
	warn := []contract.Message{}
	if w, ok := rs[0].Bindings["warn"]; ok {
		if warn, err = messages("warn", w); err != nil {
			return e.fail(err)
		}
	}
	if tracer != nil {
		cfg.explain.fill(*tracer)
	}
	// The one place a decision allows: evaluation succeeded and nothing
	// denied.
	return contract.Verdict{Allow: len(deny) == 0, Deny: deny, Warn: warn, Revision: e.revision}, nil
}

// denyOnPanic, deferred before panics.Recover, makes a recovered panic the
// denial any other evaluation error is (I3).
func (e *Engine) denyOnPanic(d *contract.Verdict, err *error) {
	if pe := (*panics.Error)(nil); errors.As(*err, &pe) {
		*d, *err = e.fail(*err)
	}
}

// fail returns a denial carrying err.
func (e *Engine) fail(err error) (contract.Verdict, error) {
	e.log.Warn("policy evaluation failed: denying", "bundle", e.source, "revision", e.revision, "err", err)
	return contract.Verdict{
		Allow:    false,
		Deny:     []contract.Message{{Msg: "policy evaluation failed, so the request is denied: " + err.Error()}},
		Warn:     []contract.Message{},
		Revision: e.revision,
		Error:    err.Error(),
	}, err
}

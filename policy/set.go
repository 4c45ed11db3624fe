package policy

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// Set holds the compiled bundle of every policy set of a [Config] and picks
// the one for a target. Each set can be reloaded while others evaluate.
type Set struct {
	sets []*Binding
	def  *Binding
}

// Binding is one policy set: its matchers and its current engine.
type Binding struct {
	cfg     SetConfig
	name    string
	images  ImageSource
	lib     *Bundle
	opts    []Option
	log     *slog.Logger
	current atomic.Pointer[Engine]
}

// SetOptions are what a [Set] needs besides its configuration.
type SetOptions struct {
	// Images reads oci:// bundles; nil if none are configured.
	Images ImageSource
	// Engine options for every set's engine.
	Engine []Option
	Logger *slog.Logger
}

// NewSet loads and compiles every bundle of cfg. Any bundle that fails to
// load or compile fails the whole set: at start-up nothing is served yet.
func NewSet(ctx context.Context, cfg Config, o SetOptions) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lib, err := Library()
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := append([]Option{WithLogger(log)}, o.Engine...)
	newBinding := func(c SetConfig, name string) (*Binding, error) {
		b := &Binding{cfg: c, name: name, images: o.Images, lib: lib, opts: opts, log: log}
		if err := b.Reload(ctx); err != nil {
			return nil, err
		}
		return b, nil
	}
	s := &Set{}
	if s.def, err = newBinding(cfg.Default, DefaultSetName); err != nil {
		return nil, err
	}
	for _, c := range cfg.Sets {
		b, err := newBinding(c, c.Name)
		if err != nil {
			return nil, err
		}
		s.sets = append(s.sets, b)
	}
	return s, nil
}

// For returns the binding that decides for t: the first set that matches,
// else the default.
func (s *Set) For(t contract.Target) *Binding {
	for _, b := range s.sets {
		if b.cfg.matches(t) {
			return b
		}
	}
	return s.def
}

// Lookup returns the set named name ("default" for the default set).
func (s *Set) Lookup(name string) (*Binding, bool) {
	if name == DefaultSetName {
		return s.def, true
	}
	for _, b := range s.sets {
		if b.name == name {
			return b, true
		}
	}
	return nil, false
}

// Bindings returns every set: the default first, then the configured sets
// in their order.
func (s *Set) Bindings() []*Binding {
	return append([]*Binding{s.def}, s.sets...)
}

// Eval decides for in with the set that covers in.Target.
func (s *Set) Eval(ctx context.Context, in *contract.Input, opts ...EvalOption) (contract.Verdict, error) {
	var t contract.Target
	if in != nil {
		t = in.Target
	}
	// Choosing the set is deciding too (I3); the engine guards its own
	// evaluation.
	var b *Binding
	if err := panics.Do(ctx, nil, "policy.Set.For", func() error { b = s.For(t); return nil }); err != nil {
		return contract.Verdict{Deny: []contract.Message{{Msg: "policy evaluation failed, so the request is denied: " + err.Error()}}, Warn: []contract.Message{}, Error: err.Error()}, err
	}
	d, err := b.Engine().Eval(ctx, in, opts...)
	d.PolicySet = b.name
	return d, err
}

// ReloadAll reloads every set and returns the first error; sets that fail
// keep serving their previous bundle.
func (s *Set) ReloadAll(ctx context.Context) error {
	var first error
	for _, b := range append([]*Binding{s.def}, s.sets...) {
		if err := b.Reload(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Name is the set's name.
func (b *Binding) Name() string { return b.name }

// Engine returns the engine currently serving.
func (b *Binding) Engine() *Engine { return b.current.Load() }

// Reload reads the set's bundle location again and swaps it in. On any
// error (the error of a bundle that does not compile says file:line) the
// previous engine keeps serving.
func (b *Binding) Reload(ctx context.Context) error {
	bundle := &Bundle{Source: LibrarySource}
	if b.cfg.Bundle != "" {
		var err error
		if bundle, err = Load(ctx, b.cfg.Bundle, b.images); err != nil {
			return fmt.Errorf("policy set %s: %w", b.name, err)
		}
	}
	return b.Swap(ctx, bundle)
}

// Swap compiles bundle (with the library, unless the set excludes it) and
// makes it the serving engine. On error the previous engine keeps serving.
func (b *Binding) Swap(ctx context.Context, bundle *Bundle) error {
	if b.cfg.library() {
		var err error
		if bundle, err = WithLibrary(b.lib, bundle); err != nil {
			return fmt.Errorf("policy set %s: %w", b.name, err)
		}
	}
	e, err := NewEngine(ctx, bundle, b.opts...)
	if err != nil {
		if old := b.current.Load(); old != nil {
			b.log.Error("policy reload rejected; the previous bundle keeps serving",
				"set", b.name, "source", bundle.Source, "serving", old.Revision(), "err", err)
		}
		return fmt.Errorf("policy set %s: %w", b.name, err)
	}
	if old := b.current.Swap(e); old == nil || old.Revision() != e.Revision() {
		b.log.Info("policy bundle loaded", "set", b.name, "source", bundle.Source, "revision", e.Revision())
	}
	return nil
}

package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Mode says what the webhook does in a namespace.
type Mode string

// Modes.
const (
	// ModeEnforce denies what policy denies (the default).
	ModeEnforce Mode = "enforce"
	// ModeWarn admits what policy denies, with warnings.
	ModeWarn Mode = "warn"
	// ModeOff admits everything untouched (no pinning either).
	ModeOff Mode = "off"
)

func (m Mode) valid() bool { return m == ModeEnforce || m == ModeWarn || m == ModeOff }

// UnmarshalText accepts enforce, warn, off, and "" (the default), so that
// a configuration file with a mode that does not exist fails where it is
// read, at its line.
func (m *Mode) UnmarshalText(b []byte) error {
	if v := Mode(b); v == "" || v.valid() {
		*m = v
		return nil
	}
	return fmt.Errorf("unknown mode %q: want %s, %s or %s", b, ModeEnforce, ModeWarn, ModeOff)
}

// FailureMode says what happens to an image that could not be checked in
// time (the total deadline passed).
type FailureMode string

// Failure modes.
const (
	// FailDeny denies, with a reason that says the check timed out (default).
	FailDeny FailureMode = "deny"
	// FailOpenUnsafe admits with a warning. It lets unverified images run
	// whenever the gate is slow: use only while rolling the webhook out.
	FailOpenUnsafe FailureMode = "allow-unsafe"
)

// UnmarshalText accepts deny, allow-unsafe, and "" (the default).
func (f *FailureMode) UnmarshalText(b []byte) error {
	switch v := FailureMode(b); v {
	case "", FailDeny, FailOpenUnsafe:
		*f = v
		return nil
	}
	return fmt.Errorf("unknown failure mode %q: want %s or %s", b, FailDeny, FailOpenUnsafe)
}

// BreakGlassAnnotation admits a denied workload, in namespaces where break
// glass is enabled and until its window closes. Its value is the
// justification; it must not be empty.
const BreakGlassAnnotation = "portcullis.dev/break-glass"

// BreakGlassWindow enables break glass in one namespace until a time.
type BreakGlassWindow struct {
	Namespace string    `json:"namespace"`
	Until     time.Time `json:"until"`
}

// BreakGlass describes one override, for the audit log.
type BreakGlass struct {
	UID           string    `json:"uid"`
	Namespace     string    `json:"namespace"`
	Kind          string    `json:"kind"`
	Name          string    `json:"name"`
	User          string    `json:"user"`
	Groups        []string  `json:"groups,omitempty"`
	Justification string    `json:"justification"`
	Until         time.Time `json:"until"`
	// Overridden are the denials that break glass admitted.
	Overridden []ImageResult `json:"overridden"`
}

// Config configures the handler. The zero value is usable: enforce
// everywhere but kube-system, deny on an 8 s deadline.
type Config struct {
	// Timeout is the total deadline for all images of one review; keep it
	// below the API server's webhook timeout (10 s by default). Default 8s.
	Timeout time.Duration `json:"timeout"`
	// FailureMode applies to images whose check did not finish in time.
	FailureMode FailureMode `json:"failureMode"`
	// DefaultMode applies to namespaces not listed in Namespaces.
	DefaultMode Mode `json:"defaultMode"`
	// Namespaces sets a mode per namespace.
	Namespaces map[string]Mode `json:"namespaces"`
	// Exempt namespaces are admitted untouched. nil means kube-system; an
	// empty, non-nil slice exempts none.
	Exempt []string `json:"exempt"`
	// BreakGlass lists where the break-glass annotation is honoured.
	BreakGlass []BreakGlassWindow `json:"breakGlass"`
	// OnBreakGlass records a break-glass admission durably (the server
	// writes it to the decision history) before the response is written;
	// not for dry-run requests. The workload is admitted only once it
	// returned nil: an error refuses break glass (I6). Required when
	// BreakGlass is set.
	OnBreakGlass func(ctx context.Context, bg BreakGlass) error `json:"-"`

	// Authenticator decides who may call the webhook (an [*Auth], built
	// from [AuthConfig]). Required.
	Authenticator Authenticator `json:"-"`

	// NamespaceLabels, if set, gives a namespace's labels; it is called on
	// every admission, so it should read an informer's cache. The labels
	// go to policy (input.target.kubernetes.namespaceLabels, which policy
	// sets with a namespaceSelector match on), and the label
	// portcullis.dev/mode sets the namespace's mode unless Exempt or
	// Namespaces say otherwise. Whoever may label namespaces may then turn
	// enforcement off: grant that right accordingly. An error denies the
	// review, with a record: unknown labels are never "no labels" (an
	// exempt namespace, or one that Namespaces sets to off, is not asked).
	// [Namespaces.Labels] is such a function.
	NamespaceLabels func(ctx context.Context, namespace string) (map[string]string, error) `json:"-"`

	// ModeLabelRelaxes lets the portcullis.dev/mode label set a mode
	// less strict than DefaultMode (warn or off where the default
	// enforces). Off by default: the label only tightens, since whoever
	// may create or label namespaces could otherwise turn enforcement off.
	ModeLabelRelaxes bool `json:"modeLabelRelaxes"`

	// CacheSize bounds the decision cache (default 10000; negative: no cache).
	CacheSize int `json:"cacheSize"`
	// CacheAllowTTL and CacheDenyTTL bound how long an allow and a denial
	// are reused (defaults 5m and 30s).
	CacheAllowTTL time.Duration `json:"cacheAllowTTL"`
	CacheDenyTTL  time.Duration `json:"cacheDenyTTL"`

	Logger *slog.Logger     `json:"-"`
	Now    func() time.Time `json:"-"`
}

func (c *Config) defaults() error {
	if c.Timeout == 0 {
		c.Timeout = 8 * time.Second
	}
	if c.Timeout < 0 {
		return fmt.Errorf("webhook: timeout %s is negative", c.Timeout)
	}
	switch c.FailureMode {
	case "":
		c.FailureMode = FailDeny
	case FailDeny, FailOpenUnsafe:
	default:
		return fmt.Errorf("webhook: unknown failure mode %q (want %q or %q)", c.FailureMode, FailDeny, FailOpenUnsafe)
	}
	if c.DefaultMode == "" {
		c.DefaultMode = ModeEnforce
	}
	if !c.DefaultMode.valid() {
		return fmt.Errorf("webhook: unknown default mode %q", c.DefaultMode)
	}
	for ns, m := range c.Namespaces {
		if !m.valid() {
			return fmt.Errorf("webhook: namespace %q: unknown mode %q", ns, m)
		}
	}
	if c.Exempt == nil {
		c.Exempt = []string{"kube-system"}
	}
	for _, w := range c.BreakGlass {
		if w.Namespace == "" || w.Until.IsZero() {
			return errors.New("webhook: a break-glass window needs a namespace and an expiry (until)")
		}
	}
	if len(c.BreakGlass) > 0 && c.OnBreakGlass == nil {
		return errors.New("webhook: break glass needs OnBreakGlass to record every use")
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	if c.CacheAllowTTL == 0 {
		c.CacheAllowTTL = 5 * time.Minute
	}
	if c.CacheDenyTTL == 0 {
		c.CacheDenyTTL = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// ModeLabel on a namespace sets its mode (see Config.NamespaceLabels).
const ModeLabel = "portcullis.dev/mode"

// mode is the mode of namespace ns with labels: exempt namespaces are
// off; then Namespaces, the namespace's mode label, DefaultMode. An
// unknown label value enforces.
func (c *Config) mode(ns string, labels map[string]string) Mode {
	for _, e := range c.Exempt {
		if e == ns {
			return ModeOff
		}
	}
	if m, ok := c.Namespaces[ns]; ok {
		return m
	}
	if v, ok := labels[ModeLabel]; ok {
		m := Mode(v)
		switch {
		case !m.valid():
			return ModeEnforce
		case c.ModeLabelRelaxes || m.strictness() >= c.DefaultMode.strictness():
			return m
		}
		// Whoever may create or label a namespace must not be able to
		// switch enforcement off there: the label only tightens.
	}
	return c.DefaultMode
}

// strictness orders the modes: off < warn < enforce.
func (m Mode) strictness() int {
	switch m {
	case ModeOff:
		return 0
	case ModeWarn:
		return 1
	}
	return 2
}

// labelsMayChangeMode reports whether a namespace that is off without
// labels could be switched on by them: not when it is exempt or
// Namespaces sets its mode.
func (c *Config) labelsMayChangeMode(ns string) bool {
	if slices.Contains(c.Exempt, ns) {
		return false
	}
	_, set := c.Namespaces[ns]
	return !set
}

// breakGlassUntil is when break glass closes in ns, if it is enabled there.
func (c *Config) breakGlassUntil(ns string) (time.Time, bool) {
	for _, w := range c.BreakGlass {
		if w.Namespace == ns {
			return w.Until, true
		}
	}
	return time.Time{}, false
}

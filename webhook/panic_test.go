package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// panickyDecider panics on every decision, as a decider without its own
// guard would, and records failures as *gate.Gate does.
type panickyDecider struct {
	mu       sync.Mutex
	failures []error
}

func (d *panickyDecider) Evaluate(context.Context, contract.Request) *contract.Decision {
	var dec *contract.Decision
	return &contract.Decision{Request: dec.Request} // nil dereference
}

func (d *panickyDecider) RecordFailure(_ context.Context, req contract.Request, err error) *contract.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures = append(d.failures, err)
	dec := &contract.Decision{Request: req}
	dec.Error = "the request is denied: " + err.Error()
	return dec
}

func (d *panickyDecider) recorded() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.failures...)
}

// panickyResolver panics on every image.
type panickyResolver struct{}

func (panickyResolver) Resolve(context.Context, string) (Location, error) {
	panic("the resolver exploded")
}

// TestPanicIsRecordedDenial is I3 in the webhook: a panic in a check's
// goroutine, in a resolution's or in the review itself is a denial that
// says it was an internal error, recorded by the decider; the handler (and
// so the process) lives on.
func TestPanicIsRecordedDenial(t *testing.T) {
	for _, tt := range []struct {
		name     string
		path     string
		cfg      Config
		decider  *panickyDecider
		resolver Resolver
		want     string
	}{
		{"a check panics", "/validate", Config{}, &panickyDecider{}, &fakeResolver{}, "internal error in webhook.check: panic: runtime error: invalid memory address"},
		{"a resolution panics", "/mutate", Config{}, &panickyDecider{}, panickyResolver{}, "internal error in webhook.resolve: panic: the resolver exploded"},
		{"the review panics", "/validate", Config{NamespaceLabels: func(context.Context, string) (map[string]string, error) { panic("labels exploded") }},
			&panickyDecider{}, &fakeResolver{}, "internal error in webhook.review: panic: labels exploded"},
		// Fail open is for timeouts only: a panic never admits.
		{"a check panics, failing open", "/validate", Config{FailureMode: FailOpenUnsafe}, &panickyDecider{}, &fakeResolver{}, "internal error in webhook.check"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, tt.cfg, tt.decider, tt.resolver)
			for range 2 { // the handler still answers after a panic
				code, resp := post(t, h, tt.path, fixture(t, "deployment.json"))
				if code != http.StatusOK || resp == nil || resp.Allowed {
					t.Fatalf("HTTP %d, response %+v: want a denial", code, resp)
				}
				t.Logf("denied: %s", message(resp))
				if !strings.Contains(message(resp), tt.want) {
					t.Fatalf("message %q, want it to contain %q", message(resp), tt.want)
				}
			}
			rec := tt.decider.recorded()
			var pe *panics.Error
			if len(rec) == 0 || !errors.As(rec[0], &pe) {
				t.Fatalf("recorded failures %v, want the recovered panic", rec)
			}
		})
	}
}

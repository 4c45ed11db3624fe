package panics_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/panics"
)

func TestRecover(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	boom := func() (err error) {
		defer panics.Recover(context.Background(), log, "test.boom", &err)
		var s []int
		_ = s[0]
		return nil
	}
	err := boom()
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.Where != "test.boom" {
		t.Fatalf("err = %v, want a *panics.Error from test.boom", err)
	}
	var re runtime.Error
	if !errors.As(err, &re) {
		t.Errorf("%v does not unwrap to the runtime error", err)
	}
	if !strings.Contains(err.Error(), "internal error in test.boom: panic: runtime error: index out of range") {
		t.Errorf("message %q", err)
	}
	if !strings.Contains(logs.String(), "panic recovered") || !strings.Contains(logs.String(), "panics_test.go") {
		t.Errorf("the stack was not logged: %s", logs.String())
	}
}

func TestDo(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	want := errors.New("plain")
	if err := panics.Do(ctx, quiet, "x", func() error { return want }); err != want {
		t.Errorf("Do passes on fn's error: got %v", err)
	}
	if err := panics.Do(ctx, quiet, "x", func() error { return nil }); err != nil {
		t.Errorf("Do without a panic: %v", err)
	}
	err := panics.Do(ctx, quiet, "x", func() error { panic("a string") })
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.Value != "a string" || pe.Unwrap() != nil {
		t.Errorf("Do with panic(string): %#v", err)
	}
}

// TestStandardLibraryOnly: every package may import this one, so it must
// stay a leaf of the standard library.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 {
		t.Fatalf("internal/panics depends on %v, want the standard library only", deps)
	}
}

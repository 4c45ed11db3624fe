package attest

import (
	"errors"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	parse := func() (err error) {
		defer guard("attest.test", &err)
		var m map[string]int
		m["x"] = 1 // assignment to a nil map panics
		return nil
	}
	err := parse()
	if err == nil || !strings.Contains(err.Error(), "internal error in attest.test: panic: assignment to entry in nil map") {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("%v does not wrap ErrInternal", err)
	}
}

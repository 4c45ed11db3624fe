package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
	"github.com/portcullis-dev/portcullis/registry"
)

func TestGCConfigOptions(t *testing.T) {
	t.Parallel()
	// An empty section: 24h grace period and upload age, no cap, no rules.
	o := registry.GCConfig{}.Options(nil, false)
	if o.GracePeriod != registry.DefaultGCAge || o.UploadMaxAge != registry.DefaultGCAge || o.Rate != 0 || o.DryRun || len(o.Retention) != 0 || o.Admitted != nil {
		t.Fatalf("defaults: %+v", o)
	}
	// gracePeriod: 0s protects nothing (it is not "unset").
	zero := yamltypes.Duration(0)
	asked := false
	c := registry.GCConfig{
		GracePeriod: &zero, UploadMaxAge: yamltypes.Duration(time.Hour), Rate: 5,
		Retention: []registry.RetentionRule{{Namespace: "staging", KeepAdmittedWithin: yamltypes.Duration(time.Hour)}},
	}
	if !c.NeedsAdmissions() || (registry.GCConfig{Retention: []registry.RetentionRule{{Namespace: "staging", KeepLast: 1}}}).NeedsAdmissions() {
		t.Fatal("NeedsAdmissions is true exactly when a rule has keepAdmittedWithin")
	}
	o = c.Options(func(context.Context, digest.Digest, time.Time) (bool, error) { asked = true; return true, nil }, true)
	if o.GracePeriod != 0 || o.UploadMaxAge != time.Hour || o.Rate != 5 || !o.DryRun || len(o.Retention) != 1 || o.Admitted == nil {
		t.Fatalf("set: %+v", o)
	}
	if _, err := o.Admitted(t.Context(), "", time.Time{}); err != nil || !asked {
		t.Fatal("Options does not pass admitted through")
	}
}

func TestGCConfigValidate(t *testing.T) {
	t.Parallel()
	neg := yamltypes.Duration(-time.Second)
	for _, tt := range []struct {
		c    registry.GCConfig
		path string
	}{
		{registry.GCConfig{Interval: neg}, "interval"},
		{registry.GCConfig{GracePeriod: &neg}, "gracePeriod"},
		{registry.GCConfig{UploadMaxAge: neg}, "uploadMaxAge"},
		{registry.GCConfig{Rate: -1}, "rate"},
		{registry.GCConfig{Retention: []registry.RetentionRule{{Namespace: "a"}, {Namespace: "b", KeepPattern: "v[0-9"}}}, "retention[1]"},
		{registry.GCConfig{Retention: []registry.RetentionRule{{KeepLast: 1}}}, "retention[0]"},
	} {
		err := tt.c.Validate()
		fe, ok := errors.AsType[*yamltypes.FieldError](err)
		if !ok || fe.Path != tt.path {
			t.Errorf("%+v: %v, want an error at %s", tt.c, err, tt.path)
		}
	}
	if err := (registry.GCConfig{Interval: yamltypes.Duration(time.Hour), Retention: []registry.RetentionRule{{Namespace: "staging", KeepLast: 3, KeepPattern: "release-.*"}}}).Validate(); err != nil {
		t.Fatal(err)
	}
}

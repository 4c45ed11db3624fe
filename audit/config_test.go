package audit

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	if opts := (Config{}).Options(); opts != nil {
		t.Errorf("an empty section sets %d options, want the log's defaults", len(opts))
	}
	if opts := (Config{CheckpointEvery: 5}).Options(); len(opts) != 1 {
		t.Errorf("checkpointEvery: %d options, want 1", len(opts))
	}
	for path, c := range map[string]Config{
		"checkpointEvery":    {CheckpointEvery: -1},
		"checkpointInterval": {CheckpointInterval: yamltypes.Duration(-time.Second)},
	} {
		fe, ok := errors.AsType[*yamltypes.FieldError](c.Validate())
		if !ok || fe.Path != path {
			t.Errorf("Validate(%+v) = %v, want an error about %s", c, c.Validate(), path)
		}
	}
	if err := (Config{CheckpointEvery: 10, CheckpointInterval: yamltypes.Duration(time.Second)}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

package audittest

import (
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
)

// Harness is a store under test: how RunStore opens its logs.
type Harness struct {
	// Open opens a log with opts (they hold its signer) on a fresh, empty
	// store, closed when t ends.
	Open func(t *testing.T, opts ...audit.Option) *audit.Log
	// SetProbeRows, if not nil, sets how many of the newest records the
	// log's store scans for a filtered search before it turns to its
	// indexes, and returns the previous setting: the search tests then
	// take both ways.
	SetProbeRows func(l *audit.Log, n int) (previous int)
}

// RunStore runs the conformance suite of the log's stores: what a log must
// do on any of them. Each store runs it from its own test.
func RunStore(t *testing.T, h Harness) {
	tests := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"AppendAndGet", testAppendAndGet},
		{"AppendSetsTimeAndValidates", testAppendSetsTimeAndValidates},
		{"ConcurrentAppends", testConcurrentAppends},
		{"CheckpointsEveryNRecords", testCheckpointsEveryNRecords},
		{"RunCheckpointsIdleLog", testRunCheckpointsIdleLog},
		{"VerifyDuringAppends", testVerifyDuringAppends},
		{"InclusionProofs", testInclusionProofs},
		{"ConsistencyProofs", testConsistencyProofs},
		{"SearchFilters", testSearchFilters},
		{"SearchTimeOrder", testSearchTimeOrder},
		{"SearchDefaultLimit", testSearchDefaultLimit},
		{"SearchLastPageHasNoCursor", testSearchLastPageHasNoCursor},
		{"Running", testRunning},
		{"ExportJSONLines", testExportJSONLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, h)
		})
	}
}

// newLog opens a fresh log on h's store with a new signer (and opts); it
// returns the log and the directory of the signer's key files.
func newLog(t *testing.T, h Harness, opts ...audit.Option) (*audit.Log, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := audit.LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h.Open(t, append([]audit.Option{audit.WithSigner(s)}, opts...)...), dir
}

package audit

import (
	"fmt"
	"testing"
	"time"
)

// TestAdmittedSince: only an allowed admit or break-glass of the digest at
// or after since counts; denials, other actions, other digests and older
// admissions do not.
func TestAdmittedSince(t *testing.T) {
	t.Parallel()
	l, _ := testLog(t)
	dig := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	rec := func(d, action, verdict string, at time.Time) Record {
		r := Record{Time: at, Action: action, Verdict: verdict, Subject: Subject{Repository: "prod/app", Digest: d}}
		if action == ActionBreakGlass {
			r.BreakGlassJustification = "incident 42"
		}
		return r
	}
	since := t0.Add(time.Hour)
	if _, err := l.AppendAll(t.Context(), []Record{
		rec(dig(1), ActionAdmit, VerdictAllow, since),                       // at since: counts
		rec(dig(2), ActionBreakGlass, VerdictAllow, since.Add(time.Minute)), // break-glass counts
		rec(dig(3), ActionAdmit, VerdictAllow, since.Add(-time.Second)),     // too old
		rec(dig(4), ActionAdmit, VerdictDeny, since.Add(time.Minute)),       // denied
		rec(dig(5), ActionPromote, VerdictAllow, since.Add(time.Minute)),    // not an admission
		rec(dig(6), ActionAdmit, VerdictError, since.Add(time.Minute)),      // failed closed
	}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		d    string
		want bool
	}{
		{"admitted at since", dig(1), true},
		{"break-glass", dig(2), true},
		{"admitted before since", dig(3), false},
		{"admission denied", dig(4), false},
		{"promoted, never admitted", dig(5), false},
		{"admission errored", dig(6), false},
		{"never seen", dig(7), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.AdmittedSince(t.Context(), tt.d, since)
			if err != nil || got != tt.want {
				t.Fatalf("AdmittedSince(%s) = %v, %v; want %v", tt.d, got, err, tt.want)
			}
		})
	}
}

package audit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/pgtest"
)

// The query and verify benchmarks share one fixture per process, of
// AUDIT_BENCH_RECORDS records (default 100,000), in a temporary directory
// removed by TestMain; or, with AUDIT_BENCH_DIR, in that directory, kept and
// reused by the next run (opened writable first, so it gets the schema's new
// migrations), which spares rebuilding a large fixture to compare two
// versions.
var bench struct {
	once sync.Once
	dir  string
	temp bool // dir is removed at the end
	path string
	s    *Signer
	n    int
	err  error
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if bench.temp {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchFixture(b *testing.B) (string, *Signer, int) {
	b.Helper()
	bench.once.Do(func() {
		bench.n = 100_000
		if s := os.Getenv("AUDIT_BENCH_RECORDS"); s != "" {
			bench.n, bench.err = strconv.Atoi(s)
			if bench.err != nil {
				return
			}
		}
		if bench.dir = os.Getenv("AUDIT_BENCH_DIR"); bench.dir != "" {
			bench.err = os.MkdirAll(bench.dir, 0o755)
		} else {
			bench.dir, bench.err = os.MkdirTemp("", "audit-bench-")
			bench.temp = bench.err == nil
		}
		if bench.err != nil {
			return
		}
		if bench.s, bench.err = LoadOrCreateSigner(bench.dir); bench.err != nil {
			return
		}
		bench.path = filepath.Join(bench.dir, "audit.db")
		ctx := context.Background()
		l, err := OpenSQLite(ctx, bench.path, WithSigner(bench.s))
		if err != nil {
			bench.err = err
			return
		}
		if size, err := l.Size(ctx); err != nil || size != 0 { // a kept fixture
			l.Close()
			switch {
			case err != nil:
				bench.err = err
			case size != uint64(bench.n):
				bench.err = fmt.Errorf("AUDIT_BENCH_DIR %s holds %d records, not %d: remove it", bench.dir, size, bench.n)
			}
			return
		}
		start := time.Now()
		const batch = 1000
		for i := 0; i < bench.n; i += batch {
			rs := make([]Record, min(batch, bench.n-i))
			for j := range rs {
				rs[j] = record(i + j)
			}
			if _, err := l.AppendAll(ctx, rs); err != nil {
				bench.err = err
				return
			}
		}
		if bench.err = l.Close(); bench.err != nil {
			return
		}
		if os.Getenv("AUDIT_BENCH_ANALYZE") != "" {
			db, err := sql.Open("sqlite", bench.path)
			if err != nil {
				bench.err = err
				return
			}
			_, bench.err = db.Exec(`ANALYZE`)
			db.Close()
		}
		fmt.Fprintf(os.Stderr, "audit bench fixture: %d records in %v\n", bench.n, time.Since(start).Round(time.Millisecond))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.path, bench.s, bench.n
}

func recordsPerSecond(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppend is one durable transaction (fsync) per record.
func BenchmarkAppend(b *testing.B) {
	l, _ := testLog(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := l.Append(ctx, record(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	recordsPerSecond(b, i)
}

// BenchmarkAppendConcurrent has 64 goroutines appending: group commit puts
// the records queued during one fsync into the next transaction.
func BenchmarkAppendConcurrent(b *testing.B) {
	l, _ := testLog(b)
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := l.Append(ctx, record(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	recordsPerSecond(b, b.N)
}

// BenchmarkAppendAll commits batches of 1000 records.
func BenchmarkAppendAll(b *testing.B) {
	l, _ := testLog(b)
	ctx := context.Background()
	rs := make([]Record, 1000)
	for i := range rs {
		rs[i] = record(i)
	}
	n := 0
	for b.Loop() {
		if _, err := l.AppendAll(ctx, rs); err != nil {
			b.Fatal(err)
		}
		n += len(rs)
	}
	recordsPerSecond(b, n)
}

// BenchmarkSearch measures one page (100 records) of a query on the
// fixture, and reports the p99 latency.
func BenchmarkSearch(b *testing.B) {
	path, s, n := benchFixture(b)
	l, err := OpenSQLite(context.Background(), path, ReadOnly(), WithVerifier(s.Verifier()))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	mid := t0.Add(time.Duration(n/2) * time.Second)
	cases := []struct {
		name string
		f    func(i int) Filter
	}{
		{"digest", func(i int) Filter { return Filter{Digest: record(i).Subject.Digest} }},
		{"digest-last-page", func(i int) Filter {
			after := uint64(n / 50)
			return Filter{Digest: record(i).Subject.Digest, After: &after}
		}},
		{"time-range-1h", func(i int) Filter {
			since := t0.Add(time.Duration(i%n) * time.Second)
			return Filter{Since: since, Until: since.Add(time.Hour)}
		}},
		{"time-range-1d", func(i int) Filter {
			since := t0.Add(time.Duration(i%n) * time.Second)
			return Filter{Since: since, Until: since.Add(24 * time.Hour)}
		}},
		{"since-1d-ago", func(int) Filter { return Filter{Since: t0.Add(time.Duration(n-86400) * time.Second)} }},
		{"time-range-half", func(int) Filter { return Filter{Since: t0, Until: mid} }},
		{"digest+time-1d", func(i int) Filter {
			since := t0.Add(time.Duration(i%(n/2)) * time.Second)
			return Filter{Digest: record(i).Subject.Digest, Since: since, Until: since.Add(24 * time.Hour)}
		}},
		{"actor", func(i int) Filter { return Filter{Actor: fmt.Sprintf("ci-%d", i%3)} }},
		{"repository+verdict", func(i int) Filter { return Filter{Repository: fmt.Sprintf("prod/app%d", i%5*2), Verdict: VerdictDeny} }},
		{"verdict-only", func(int) Filter { return Filter{Verdict: VerdictError} }},
	}
	ctx := context.Background()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var lat []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				p, err := l.Search(ctx, c.f(i))
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Entries) == 0 && c.name != "digest-last-page" {
					b.Fatalf("no result for %+v", c.f(i))
				}
				lat = append(lat, time.Since(start))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
	b.Run("running", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Running(ctx, "ns1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("inclusion-proof", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := l.InclusionProof(ctx, uint64(i*7919%n), uint64(n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkVerify verifies the whole fixture.
func BenchmarkVerify(b *testing.B) {
	path, s, n := benchFixture(b)
	l, err := OpenSQLite(context.Background(), path, ReadOnly(), WithVerifier(s.Verifier()))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	runs := 0
	for b.Loop() {
		rep, err := l.Verify(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if rep.Size != uint64(n) {
			b.Fatalf("verified %d records, want %d", rep.Size, n)
		}
		runs++
	}
	recordsPerSecond(b, runs*n)
}

-- wrk script for .ci/bench.sh: prints one machine-readable summary line.
-- wrk reports latencies in microseconds; errors.status counts HTTP >= 400.
function done(summary, latency, requests)
	local secs = summary.duration / 1e6
	local e = summary.errors
	io.write(string.format(
		"WRK requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f sockerr=%d httperr=%d\n",
		summary.requests, summary.requests / secs,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		e.connect + e.read + e.write + e.timeout, e.status))
end

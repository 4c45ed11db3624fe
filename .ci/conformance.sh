#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance program (v1.1) against a fresh
# `portcullis serve` on a free loopback port, then prints
#   conformance: N passed, N failed, N skipped (of T)
# from the program's junit.xml. Exits non-zero if any test failed or the
# program did.
#
#   PORTCULLIS_BIN        use this binary instead of building bin/portcullis
#   CONFORMANCE_RESULTS   results directory (default conformance-results/)
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

results=${CONFORMANCE_RESULTS:-conformance-results}
mkdir -p "$results"
results=$(cd "$results" && pwd)
rm -f "$results"/{junit.xml,results.yaml,report.html,conformance.log,portcullis.log}

if [[ -z ${PORTCULLIS_BIN:-} ]]; then
	build_portcullis bin/portcullis
	PORTCULLIS_BIN=bin/portcullis
fi
[[ -x $PORTCULLIS_BIN ]] || die "PORTCULLIS_BIN=$PORTCULLIS_BIN is not an executable"
[[ -x $TOOLS_BIN/conformance ]] || .ci/tools.sh conformance

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-conformance.XXXXXX")
server_pid=
cleanup() {
	stop_pid "$server_pid"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start the server; retry on another port if the one we picked got taken.
for attempt in 1 2 3 4 5; do
	port=$(free_port)
	"$PORTCULLIS_BIN" serve --addr "127.0.0.1:$port" --data "$work/data" >>"$results/portcullis.log" 2>&1 &
	server_pid=$!
	if wait_http "http://127.0.0.1:$port/v2/" "$server_pid" 30; then
		break
	fi
	stop_pid "$server_pid"
	server_pid=
	((attempt < 5)) || { tail -n 20 "$results/portcullis.log" >&2; die "portcullis did not start"; }
done
log "conformance: portcullis on 127.0.0.1:$port (pid $server_pid, log $results/portcullis.log)"

rc=0
env OCI_REGISTRY="127.0.0.1:$port" \
	OCI_TLS=disabled \
	OCI_REPO1=conformance/repo1 \
	OCI_REPO2=conformance/repo2 \
	OCI_VERSION=1.1 \
	OCI_API_BLOBS_UPLOAD_CANCEL=true \
	OCI_API_BLOBS_DIGEST_HEADER=true \
	OCI_API_MANIFESTS_DIGEST_HEADER=true \
	OCI_RESULTS_DIR="$results" \
	"$TOOLS_BIN/conformance" >"$results/conformance.log" 2>&1 || rc=$?

stop_pid "$server_pid"
server_pid=

junit="$results/junit.xml"
if [[ ! -s $junit ]]; then
	tail -n 30 "$results/conformance.log" >&2
	die "conformance program wrote no $junit (exit $rc)"
fi

# attr NAME: the attribute from the first <testsuite> element (0 if absent).
suite=$(grep -m1 -o '<testsuite [^>]*>' "$junit" || true)
attr() {
	local v
	v=$(sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$suite")
	echo "${v:-0}"
}
tests=$(attr tests)
failures=$(attr failures)
errors=$(attr errors)
skipped=$(($(attr skipped) + $(attr disabled)))
failed=$((failures + errors))
passed=$((tests - failed - skipped))

if ((failed > 0)); then
	log "failed tests (details in $junit, $results/report.html):"
	# Test case names of <testcase> elements followed by <failure or <error.
	awk '/<testcase /{ match($0, /name="[^"]*"/); name = substr($0, RSTART + 6, RLENGTH - 7) }
	     /<(failure|error)[ >]/{ if (name != "") print "  - " name; name = "" }' "$junit" >&2
fi
echo "conformance: $passed passed, $failed failed, $skipped skipped (of $tests)"
log "conformance: reports in $results (junit.xml, report.html, conformance.log)"

if ((rc != 0)); then
	die "conformance program exited $rc"
fi
((failed == 0)) || exit 1

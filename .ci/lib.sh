# Shared helpers for the .ci scripts. Source it; it does not change directory.
# shellcheck shell=bash

# Versioned tools cache: bump tools-vN when the pinned set changes incompatibly.
PORTCULLIS_TOOLS="${PORTCULLIS_TOOLS:-$HOME/.cache/portcullis/tools-v1}"
TOOLS_BIN="$PORTCULLIS_TOOLS/bin"
export PORTCULLIS_TOOLS

# The Go settings the Makefile exports, for when a script runs on its own.
# GOEXPERIMENT=jsonv2: Trivy imports encoding/json/v2. GOTOOLCHAIN=local: a
# dependency that needs a newer Go fails instead of downloading a toolchain.
export GOEXPERIMENT="${GOEXPERIMENT:-jsonv2}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
case " ${GOFLAGS:-} " in
*" -buildvcs="*) ;;
*) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" ;;
esac

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# now_ms prints a monotonic-enough wall clock in milliseconds.
now_ms() { date +%s%3N; }

# fmt_secs MILLIS prints "12.3s".
fmt_secs() { awk -v ms="$1" 'BEGIN { printf "%.1fs", ms / 1000 }'; }

# port_busy PORT succeeds if something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a loopback port nobody listens on (racy by nature:
# callers retry when the server fails to bind).
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! port_busy "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# wait_http URL PID [SECONDS]: wait until URL answers any HTTP status while
# PID is alive. Fails if PID exits or the deadline passes.
wait_http() {
	local url=$1 pid=$2 secs=${3:-30} deadline code
	deadline=$(($(date +%s) + secs))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)
		if [[ -n $code && $code != 000 ]]; then
			return 0
		fi
		if (($(date +%s) >= deadline)); then
			return 1
		fi
		sleep 0.1
	done
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL. Only for processes
# this script started.
stop_pid() {
	local pid=$1 i
	[[ -n $pid ]] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

# build_portcullis OUT: go build the binary (GOEXPERIMENT etc. come from the
# environment: the Makefile and .ci/run export them).
build_portcullis() {
	local out=$1
	mkdir -p "$(dirname "$out")"
	go build -o "$out" ./cmd/portcullis
}

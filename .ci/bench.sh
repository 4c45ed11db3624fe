#!/usr/bin/env bash
# Side-by-side benchmark: portcullis vs the distribution reference registry
# (v3.1.2), both on loopback with fresh data directories on the same
# filesystem, measured in the same run. Each figure is measured REPEAT times
# (alternating which registry goes first) and the median is reported.
#
#   push       crane push of an OCI layout: 4 x 64 MiB random uncompressed
#              layers (a different image each repetition: no blob is ever
#              already present, so both registries store all 256 MiB)
#   pull       crane pull of that image to a tarball on /dev/null (one stream,
#              client verifies digests)
#   blob GET   the 4 layers fetched in parallel with curl to /dev/null
#   manifest   wrk, 8 connections, GET manifest by digest: req/s, p50, p99
#
# MB = 10^6 bytes. Environment:
#   PORTCULLIS_BIN   use this binary instead of building bin/portcullis
#   BENCH_REPEAT     repetitions per figure (default 3)
#   BENCH_DURATION   wrk duration per run (default 10s)
#   BENCH_DIR        where temporary data goes (default $TMPDIR or /tmp)
#   BENCH_KEEP=1     keep the temporary directory
#   BENCH_LAYER_MIB  layer size in MiB (default 64; smaller for a smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

REPEAT=${BENCH_REPEAT:-3}
DURATION=${BENCH_DURATION:-10s}
LAYERS=4
LAYER_MIB=${BENCH_LAYER_MIB:-64}

if [[ -z ${PORTCULLIS_BIN:-} ]]; then
	log "bench: building bin/portcullis"
	build_portcullis bin/portcullis
	PORTCULLIS_BIN=bin/portcullis
fi
PORTCULLIS_BIN=$(cd "$(dirname "$PORTCULLIS_BIN")" && pwd)/$(basename "$PORTCULLIS_BIN")
missing=()
for t in crane registry; do [[ -x $TOOLS_BIN/$t ]] || missing+=("$t"); done
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
((${#missing[@]} == 0)) || .ci/tools.sh "${missing[@]}"
CRANE=$TOOLS_BIN/crane
DISTRIBUTION=$TOOLS_BIN/registry

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/portcullis-bench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do stop_pid "$p"; done
	if [[ ${BENCH_KEEP:-} == 1 ]]; then log "bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- servers
# Distribution's tracing exporter would otherwise retry an OTLP endpoint.
export OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none

# start NAME: starts the registry on a free port; sets PORT_<NAME>.
start() {
	local name=$1 port pid attempt
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		mkdir -p "$work/$name"
		case $name in
		portcullis)
			printf 'log:\n  level: warn\n' >"$work/portcullis.yaml"
			"$PORTCULLIS_BIN" serve --config "$work/portcullis.yaml" --addr "127.0.0.1:$port" \
				--data "$work/portcullis/data" >>"$work/portcullis.log" 2>&1 &
			;;
		distribution)
			# The stock configuration (cmd/registry/config-dev.yml and the image's
			# config.yml) plus delete; access log off as portcullis has none.
			cat >"$work/distribution.yml" <<-YAML
				version: 0.1
				log:
				  level: warn
				  accesslog:
				    disabled: true
				storage:
				  filesystem:
				    rootdirectory: $work/distribution/data
				  delete:
				    enabled: true
				  cache:
				    blobdescriptor: inmemory
				http:
				  addr: 127.0.0.1:$port
				  secret: portcullis-bench
			YAML
			"$DISTRIBUTION" serve "$work/distribution.yml" >>"$work/distribution.log" 2>&1 &
			;;
		esac
		pid=$!
		if wait_http "http://127.0.0.1:$port/v2/" "$pid" 30; then
			pids+=("$pid")
			printf -v "PORT_$name" '%s' "$port"
			return 0
		fi
		stop_pid "$pid"
	done
	tail -n 20 "$work/$name.log" >&2
	die "$name did not start"
}

# ---------------------------------------------------------------- images
# make_image DIR: an OCI layout with LAYERS random uncompressed tar layers.
# Sets IMG_MANIFEST (digest), IMG_LAYERS (digests) and IMG_BYTES (layer bytes).
make_image() {
	local dir=$1 i d size diff_ids="" layers="" cfg man
	mkdir -p "$dir/blobs/sha256" "$dir/gen"
	IMG_LAYERS=() IMG_BYTES=0
	for ((i = 1; i <= LAYERS; i++)); do
		head -c $((LAYER_MIB << 20)) /dev/urandom >"$dir/gen/random-$i"
		tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir/gen" -cf "$dir/gen/layer.tar" "random-$i"
		rm -f "$dir/gen/random-$i"
		d=$(sha256sum "$dir/gen/layer.tar" | cut -d' ' -f1)
		size=$(stat -c %s "$dir/gen/layer.tar")
		mv "$dir/gen/layer.tar" "$dir/blobs/sha256/$d"
		IMG_LAYERS+=("sha256:$d")
		IMG_BYTES=$((IMG_BYTES + size))
		diff_ids+="${diff_ids:+,}\"sha256:$d\""
		layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$size}"
	done
	rmdir "$dir/gen"
	cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_ids]}}"
	d=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
	printf '%s' "$cfg" >"$dir/blobs/sha256/$d"
	man="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$d\",\"size\":${#cfg}},\"layers\":[$layers]}"
	d=$(printf '%s' "$man" | sha256sum | cut -d' ' -f1)
	printf '%s' "$man" >"$dir/blobs/sha256/$d"
	IMG_MANIFEST="sha256:$d"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}]}' \
		"$IMG_MANIFEST" "${#man}" >"$dir/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
}

# ---------------------------------------------------------------- helpers
now_ns() { date +%s%N; }
# mbps BYTES NS
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b / 1e6 / (ns / 1e9) }'; }
# median FORMAT VALUE...
median() {
	local f=$1
	shift
	printf '%s\n' "$@" | sort -g | awk -v f="$f" '{ v[NR] = $1 }
		END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f "\n", m }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
# order REP: both registries, alternating which goes first.
order() { if (($1 % 2)); then echo portcullis distribution; else echo distribution portcullis; fi; }
port_of() { local v="PORT_$1"; echo "${!v}"; }

declare -A R=() # R[figure,registry]="v1 v2 v3"
record() { R[$1,$2]="${R[$1,$2]:-}${R[$1,$2]:+ }$3"; }

# ---------------------------------------------------------------- run
log "bench: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), data in $work ($(df -PT "$work" | awk 'NR==2 { print $2 }'))"
start portcullis
start distribution
log "bench: portcullis $("$PORTCULLIS_BIN" version 2>/dev/null | awk '{ print $2 }') on :$PORT_portcullis," \
	"distribution $("$DISTRIBUTION" --version | awk '{ print $3 }') on :$PORT_distribution"

log "bench: generating $REPEAT images of $LAYERS x $LAYER_MIB MiB random layers"
declare -a MANIFESTS=() BYTES=()
declare -a LAYERS1=()
for ((r = 1; r <= REPEAT; r++)); do
	make_image "$work/images/img$r"
	MANIFESTS[r]=$IMG_MANIFEST
	BYTES[r]=$IMG_BYTES
	((r > 1)) || LAYERS1=("${IMG_LAYERS[@]}")
done

log "bench: push (crane push of an OCI layout, a new image each time)"
for ((r = 1; r <= REPEAT; r++)); do
	for reg in $(order "$r"); do
		ref="127.0.0.1:$(port_of "$reg")/bench/img$r"
		t0=$(now_ns)
		"$CRANE" push "$work/images/img$r" "$ref" >/dev/null 2>"$work/crane.err" || { cat "$work/crane.err" >&2; die "push to $reg failed"; }
		t1=$(now_ns)
		got=$("$CRANE" digest "$ref")
		[[ $got == "${MANIFESTS[r]}" ]] || die "$reg: pushed $got, want ${MANIFESTS[r]}"
		v=$(mbps "${BYTES[r]}" $((t1 - t0)))
		record push "$reg" "$v"
		log "  push #$r $reg: $v MB/s"
	done
done

log "bench: pull (crane pull to a tarball on /dev/null)"
for ((r = 1; r <= REPEAT; r++)); do
	for reg in $(order "$r"); do
		ref="127.0.0.1:$(port_of "$reg")/bench/img1@${MANIFESTS[1]}"
		t0=$(now_ns)
		"$CRANE" pull "$ref" /dev/null 2>"$work/crane.err" || { cat "$work/crane.err" >&2; die "pull from $reg failed"; }
		t1=$(now_ns)
		v=$(mbps "${BYTES[1]}" $((t1 - t0)))
		record pull "$reg" "$v"
		log "  pull #$r $reg: $v MB/s"
	done
done

log "bench: blob GET ($LAYERS layers in parallel, curl to /dev/null)"
for ((r = 1; r <= REPEAT; r++)); do
	for reg in $(order "$r"); do
		base="http://127.0.0.1:$(port_of "$reg")/v2/bench/img1/blobs"
		cpids=()
		t0=$(now_ns)
		for ((i = 0; i < LAYERS; i++)); do
			curl -sS -L -o /dev/null -w '%{http_code} %{size_download}\n' "$base/${LAYERS1[i]}" >"$work/curl.$i" &
			cpids+=($!)
		done
		for p in "${cpids[@]}"; do wait "$p" || die "blob GET from $reg failed"; done
		t1=$(now_ns)
		got=$(cat "$work"/curl.* | awk '$1 == 200 { n += $2 } END { print n + 0 }')
		[[ $got == "${BYTES[1]}" ]] || die "blob GET from $reg: got $got bytes with status 200, want ${BYTES[1]}"
		v=$(mbps "${BYTES[1]}" $((t1 - t0)))
		record blob "$reg" "$v"
		log "  blob GET #$r $reg: $v MB/s"
	done
done

log "bench: manifest GET by digest (wrk -t2 -c8 -d$DURATION)"
for ((r = 1; r <= REPEAT; r++)); do
	for reg in $(order "$r"); do
		url="http://127.0.0.1:$(port_of "$reg")/v2/bench/img1/manifests/${MANIFESTS[1]}"
		out=$(wrk -t2 -c8 -d"$DURATION" -s .ci/wrk-report.lua \
			-H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' "$url")
		line=$(grep '^WRK ' <<<"$out") || { echo "$out" >&2; die "wrk against $reg printed no summary"; }
		declare -A w=()
		for kv in ${line#WRK }; do w[${kv%%=*}]=${kv#*=}; done
		((w[sockerr] == 0 && w[httperr] == 0)) || { echo "$out" >&2; die "wrk against $reg: ${w[sockerr]} socket errors, ${w[httperr]} HTTP errors"; }
		record rps "$reg" "${w[rps]}"
		record p50 "$reg" "${w[p50_ms]}"
		record p99 "$reg" "${w[p99_ms]}"
		log "  manifest #$r $reg: ${w[rps]} req/s, p50 ${w[p50_ms]} ms, p99 ${w[p99_ms]} ms"
		unset w
	done
done
log "bench: load at end $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
echo
echo "portcullis vs distribution v3.1.2 — medians of $REPEAT runs, $LAYERS x $LAYER_MIB MiB layers, MB = 10^6 bytes"
printf '%-34s %12s %14s %12s\n' figure portcullis distribution "ratio p/d"
printf '%-34s %12s %14s %12s\n' ---------------------------------- ------------ -------------- ------------
row() {
	local label=$1 key=$2 f=$3 p d
	# shellcheck disable=SC2086
	p=$(median "$f" ${R[$key,portcullis]})
	# shellcheck disable=SC2086
	d=$(median "$f" ${R[$key,distribution]})
	printf '%-34s %12s %14s %12s\n' "$label" "$p" "$d" "$(ratio "$p" "$d")"
}
row "push MB/s" push %.1f
row "pull MB/s" pull %.1f
row "blob GET MB/s ($LAYERS parallel)" blob %.1f
row "manifest GET req/s (8 conns)" rps %.0f
row "manifest GET p50 ms" p50 %.2f
row "manifest GET p99 ms" p99 %.2f
echo "(ratio > 1 is better for portcullis on MB/s and req/s; < 1 is better on latency)"

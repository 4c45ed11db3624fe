#!/usr/bin/env bash
# Side-by-side benchmark, all on loopback with fresh data on the same
# filesystem, measured in the same run:
#   portcullis    the embedded default (filesystem blobs, SQLite metadata)
#   distribution  the reference registry v3.1.2 (filesystem, in-memory cache)
#   pg+s3 x1      one portcullis replica on PostgreSQL and S3 (versitygw's
#                 POSIX gateway), behind nginx
#   pg+s3 x2      two replicas sharing one PostgreSQL database and one bucket,
#                 behind nginx round-robin (an upload's requests land on both)
# Each figure is measured REPEAT times (rotating which registry goes first)
# and the median is reported. Every portcullis process's /metrics is scraped
# once a second throughout; the report says how those scrapes went and what
# the metrics counted.
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
#   BENCH_SCALEOUT=0 leave out the two pg+s3 setups (they need PostgreSQL,
#                    versitygw and nginx: .ci/tools.sh installs them)
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
SCALEOUT=${BENCH_SCALEOUT:-1}
REGS=(portcullis distribution)
((SCALEOUT == 0)) || REGS+=(pgs3x1 pgs3x2)
declare -A LABEL=([portcullis]=portcullis [distribution]=distribution [pgs3x1]="pg+s3 x1" [pgs3x2]="pg+s3 x2")

missing=()
for t in crane registry; do [[ -x $TOOLS_BIN/$t ]] || missing+=("$t"); done
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((SCALEOUT != 0)); then
	[[ -x $TOOLS_BIN/versitygw ]] || missing+=(versitygw)
	command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || missing+=(postgres)
fi
((${#missing[@]} == 0)) || .ci/tools.sh "${missing[@]}"
CRANE=$TOOLS_BIN/crane
DISTRIBUTION=$TOOLS_BIN/registry
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/portcullis-bench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do stop_pid "$p"; done
	[[ -z ${PG_PID:-} ]] || stop_pid "$PG_PID"
	if [[ ${BENCH_KEEP:-} == 1 ]]; then log "bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- servers
# Distribution's tracing exporter would otherwise retry an OTLP endpoint.
export OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none

# start NAME [CONFIG]: starts a registry on a free port (portcullis with
# CONFIG and data in $work/NAME/data); sets PORT_<NAME>.
start() {
	local name=$1 config=${2:-} port pid attempt
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		mkdir -p "$work/$name"
		case $name in
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
		*)
			"$PORTCULLIS_BIN" serve --config "$config" --addr "127.0.0.1:$port" \
				--data "$work/$name/data" >>"$work/$name.log" 2>&1 &
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

# ---------------------------------------------------------------- scale-out
# start_postgres: a PostgreSQL cluster of Debian's package with its default
# settings (fsync on); sets PG_BIN and PG_PORT. PostgreSQL refuses to run
# as root: then it runs as the postgres user the package creates.
start_postgres() {
	local initdb as=() i
	initdb=$(command -v initdb 2>/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)
	PG_BIN=$(dirname "$(readlink -f "$initdb")") # Debian keeps pg_isready etc. beside it
	mkdir -p "$work/pg"
	if ((EUID == 0)); then
		chmod 755 "$work"
		chown postgres: "$work/pg"
		as=(setpriv --reuid=postgres --regid=postgres --clear-groups)
	fi
	"${as[@]}" "$PG_BIN/initdb" -D "$work/pg/data" -U postgres -A trust --locale=C -E UTF8 >"$work/pg.log" 2>&1 ||
		{ cat "$work/pg.log" >&2; die "initdb failed"; }
	PG_PORT=$(free_port)
	"${as[@]}" "$PG_BIN/postgres" -D "$work/pg/data" -p "$PG_PORT" -k "$work/pg" -c listen_addresses=127.0.0.1 >>"$work/pg.log" 2>&1 &
	PG_PID=$!
	for i in $(seq 1 300); do
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && return 0
		kill -0 "$PG_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$work/pg.log" >&2
	die "postgres did not start"
}

# start_s3: versitygw's POSIX gateway with one bucket per setup; sets S3_PORT.
start_s3() {
	local pid attempt
	mkdir -p "$work/s3/pgs3x1" "$work/s3/pgs3x2"
	for attempt in 1 2 3 4 5; do
		S3_PORT=$(free_port)
		"$TOOLS_BIN/versitygw" --access bench --secret bench-secret --port "127.0.0.1:$S3_PORT" posix "$work/s3" >>"$work/s3.log" 2>&1 &
		pid=$!
		if wait_http "http://127.0.0.1:$S3_PORT/" "$pid" 30; then
			pids+=("$pid")
			return 0
		fi
		stop_pid "$pid"
	done
	tail -n 20 "$work/s3.log" >&2
	die "versitygw did not start"
}

# start_scaleout NAME REPLICAS: REPLICAS portcullis processes sharing the
# database NAME and the bucket NAME (NAMEr0, NAMEr1, ...). The first makes
# the signing keys; the others get copies, as an operator mounts one secret.
start_scaleout() {
	local name=$1 n=$2 i f
	"$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE $name" >/dev/null
	cat >"$work/$name.yaml" <<-YAML
		log:
		  level: warn
		metadata:
		  driver: postgres
		  postgres:
		    dsn: postgres://postgres@127.0.0.1:$PG_PORT/$name?sslmode=disable
		storage:
		  driver: s3
		  s3:
		    endpoint: http://127.0.0.1:$S3_PORT
		    bucket: $name
		    accessKey: bench
		    secretKey: bench-secret
	YAML
	for ((i = 0; i < n; i++)); do
		if ((i > 0)); then
			mkdir -p "$work/${name}r$i/data"
			for f in "$work/${name}r0/data"/*.key "$work/${name}r0/data"/*.pub; do
				[[ -e $f ]] && cp "$f" "$work/${name}r$i/data/"
			done
		fi
		start "${name}r$i" "$work/$name.yaml"
		SCRAPE+=("${name}r$i")
	done
}

# start_nginx: one nginx, a server per setup in front of its replicas
# (round-robin, streaming request and response bodies); sets PORT_pgs3x1
# and PORT_pgs3x2.
start_nginx() {
	local pid attempt d=$work/nginx
	mkdir -p "$d/tmp"
	for attempt in 1 2 3 4 5; do
		PORT_pgs3x1=$(free_port)
		PORT_pgs3x2=$(free_port)
		[[ $PORT_pgs3x1 != "$PORT_pgs3x2" ]] || continue
		cat >"$d/nginx.conf" <<-CONF
			$( ((EUID != 0)) || echo 'user root;')
			worker_processes 2;
			pid $d/nginx.pid;
			error_log $d/error.log warn;
			events { worker_connections 1024; }
			http {
			  access_log off;
			  client_body_temp_path $d/tmp/body;
			  proxy_temp_path $d/tmp/proxy;
			  fastcgi_temp_path $d/tmp/fastcgi;
			  uwsgi_temp_path $d/tmp/uwsgi;
			  scgi_temp_path $d/tmp/scgi;
			  client_max_body_size 0;
			  proxy_http_version 1.1;
			  proxy_request_buffering off;
			  proxy_buffering off;
			  proxy_set_header Host \$http_host;
			  proxy_set_header Connection "";
			  upstream pgs3x1 { server 127.0.0.1:$PORT_pgs3x1r0; keepalive 16; }
			  upstream pgs3x2 { server 127.0.0.1:$PORT_pgs3x2r0; server 127.0.0.1:$PORT_pgs3x2r1; keepalive 16; }
			  server { listen 127.0.0.1:$PORT_pgs3x1; location / { proxy_pass http://pgs3x1; } }
			  server { listen 127.0.0.1:$PORT_pgs3x2; location / { proxy_pass http://pgs3x2; } }
			}
		CONF
		"$NGINX" -p "$d" -c "$d/nginx.conf" -g 'daemon off;' >>"$work/nginx.log" 2>&1 &
		pid=$!
		if wait_http "http://127.0.0.1:$PORT_pgs3x1/v2/" "$pid" 10 && wait_http "http://127.0.0.1:$PORT_pgs3x2/v2/" "$pid" 10; then
			pids+=("$pid")
			return 0
		fi
		stop_pid "$pid"
	done
	cat "$work/nginx.log" "$d/error.log" >&2 2>/dev/null || true
	die "nginx did not start"
}

# scrape_loop: GET every portcullis process's /metrics once a second; a
# line per scrape in $work/scrapes: NAME HTTP-CODE SECONDS BYTES.
scrape_loop() {
	local n
	while :; do
		for n in "${SCRAPE[@]}"; do
			printf '%s ' "$n"
			curl -s -o "$work/metrics.$n" -w '%{http_code} %{time_total} %{size_download}\n' --max-time 5 \
				"http://127.0.0.1:$(port_of "$n")/metrics" || true
		done >>"$work/scrapes"
		sleep 1
	done
}

# metric_sum NAME FILE: the sum of every series of the metric NAME.
metric_sum() { awk -v m="$1" '$1 ~ "^" m "([{]|$)" { s += $NF } END { printf "%.0f", s }' "$2"; }

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
# order REP: every registry, rotating which goes first.
order() {
	local i n=${#REGS[@]}
	for ((i = 0; i < n; i++)); do printf '%s ' "${REGS[(($1 - 1 + i) % n)]}"; done
}
port_of() { local v="PORT_$1"; echo "${!v}"; }

declare -A R=() # R[figure,registry]="v1 v2 v3"
record() { R[$1,$2]="${R[$1,$2]:-}${R[$1,$2]:+ }$3"; }

# ---------------------------------------------------------------- run
log "bench: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), data in $work ($(df -PT "$work" | awk 'NR==2 { print $2 }'))"
SCRAPE=(portcullis)
printf 'log:\n  level: warn\n' >"$work/portcullis.yaml"
start portcullis "$work/portcullis.yaml"
start distribution
log "bench: portcullis $("$PORTCULLIS_BIN" version 2>/dev/null | awk '{ print $2 }') on :$PORT_portcullis," \
	"distribution $("$DISTRIBUTION" --version | awk '{ print $3 }') on :$PORT_distribution"
if ((SCALEOUT != 0)); then
	start_postgres
	start_s3
	start_scaleout pgs3x1 1
	start_scaleout pgs3x2 2
	start_nginx
	log "bench: PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') on :$PG_PORT, versitygw on :$S3_PORT," \
		"nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') on :$PORT_pgs3x1 (1 replica) and :$PORT_pgs3x2 (2 replicas)"
fi
scrape_loop &
SCRAPE_PID=$!
pids=("$SCRAPE_PID" "${pids[@]}")

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
stop_pid "$SCRAPE_PID"
for n in "${SCRAPE[@]}"; do # a last scrape, after all the load
	curl -sf -o "$work/metrics.$n" "http://127.0.0.1:$(port_of "$n")/metrics" || die "final /metrics scrape of $n failed"
done

# ---------------------------------------------------------------- report
echo
echo "portcullis vs distribution v3.1.2 — medians of $REPEAT runs, $LAYERS x $LAYER_MIB MiB layers, MB = 10^6 bytes"
header() {
	local r
	printf '%-34s' "$1"
	for r in "${REGS[@]}"; do printf ' %14s' "$(if [[ $1 == figure ]]; then echo "${LABEL[$r]}"; else echo --------------; fi)"; done
	printf ' %10s\n' "$(if [[ $1 == figure ]]; then echo "p/d"; else echo ----------; fi)"
}
header figure
header ----------------------------------
row() {
	local label=$1 key=$2 f=$3 r v
	declare -A m=()
	printf '%-34s' "$label"
	for r in "${REGS[@]}"; do
		# shellcheck disable=SC2086
		m[$r]=$(median "$f" ${R[$key,$r]})
		printf ' %14s' "${m[$r]}"
	done
	printf ' %10s\n' "$(ratio "${m[portcullis]}" "${m[distribution]}")"
}
row "push MB/s" push %.1f
row "pull MB/s" pull %.1f
row "blob GET MB/s ($LAYERS parallel)" blob %.1f
row "manifest GET req/s (8 conns)" rps %.0f
row "manifest GET p50 ms" p50 %.2f
row "manifest GET p99 ms" p99 %.2f
echo "(p/d: portcullis / distribution; > 1 is better for portcullis on MB/s and req/s, < 1 on latency)"
if ((SCALEOUT != 0)); then
	echo "(pg+s3: PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') with its default settings, versitygw's POSIX gateway on the same disk, nginx round-robin in front)"
fi

echo
echo "/metrics scraped once a second during the bench (every portcullis process)"
printf '%-12s %8s %7s %10s %10s %9s %10s %12s %12s\n' process scrapes failed "p50 ms" "max ms" "size kB" requests "MB in" "MB out"
for n in "${SCRAPE[@]}"; do
	mapfile -t ms < <(awk -v n="$n" '$1 == n { print $3 * 1000 }' "$work/scrapes" | sort -g)
	printf '%-12s %8d %7d %10s %10s %9s' "$n" "${#ms[@]}" "$(awk -v n="$n" '$1 == n && $2 != 200 { f++ } END { print f + 0 }' "$work/scrapes")" \
		"$(median %.1f "${ms[@]}")" "$(printf '%.1f' "${ms[-1]}")" \
		"$(awk -v n="$n" '$1 == n { b = $4 } END { printf "%.1f", b / 1000 }' "$work/scrapes")"
	printf ' %10s %12s %12s\n' "$(metric_sum portcullis_http_requests_total "$work/metrics.$n")" \
		"$(awk -v b="$(metric_sum portcullis_http_request_bytes_total "$work/metrics.$n")" 'BEGIN { printf "%.1f", b / 1e6 }')" \
		"$(awk -v b="$(metric_sum portcullis_http_response_bytes_total "$work/metrics.$n")" 'BEGIN { printf "%.1f", b / 1e6 }')"
done
pushed=0
for ((r = 1; r <= REPEAT; r++)); do pushed=$((pushed + BYTES[r])); done
echo "(requests and MB from the last scrape's portcullis_http_* counters; each registry received $(awk -v b="$pushed" 'BEGIN { printf "%.1f", b / 1e6 }') MB of layers)"
failed=$(awk '$2 != 200 { f++ } END { print f + 0 }' "$work/scrapes")
((failed == 0)) || die "$failed /metrics scrapes failed during the bench"

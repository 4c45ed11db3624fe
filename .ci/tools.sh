#!/usr/bin/env bash
# Installs the pinned test tools into a versioned cache:
#   ${PORTCULLIS_TOOLS:-$HOME/.cache/portcullis/tools-v1}/bin
# Idempotent: a tool already there (at the pinned version) is skipped, so a
# second run is a fast no-op. Debian packages go to the system with apt-get.
#
# usage: .ci/tools.sh [NAME...]     (no NAME: every tool CI needs)
#
# The Go tools are built ONE AFTER ANOTHER, in the order of the pinned set:
# each `go build` already uses every CPU, and a tool that shares dependencies
# with the one before it (kube-apiserver then helm: k8s.io; cosign,
# crane, oras: sigstore, go-containerregistry, oras-go) finds them in the
# build cache instead of compiling its own copy alongside (the parallel
# builds of before each compiled the shared packages again, all at once).
#
# To add a tool, add one line to "The pinned set" below:
#   go_tool NAME PKG@VERSION                  go install; binary renamed to NAME
#   go_main NAME MODULE@VERSION PKG           go get + go build in a scratch module
#   apt_tool COMMAND DEBIAN-PACKAGE           apt-get install when COMMAND is missing
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

TOOL_NAMES=()
declare -A TOOL_KIND=() TOOL_SPEC=() TOOL_PKG=()

go_tool() { TOOL_NAMES+=("$1"); TOOL_KIND[$1]=go; TOOL_SPEC[$1]=$2; }
go_main() { TOOL_NAMES+=("$1"); TOOL_KIND[$1]=gomain; TOOL_SPEC[$1]=$2; TOOL_PKG[$1]=$3; }
# on_demand NAME: NAME is built only when asked for by name (make bench does).
declare -A ON_DEMAND=()
on_demand() { ON_DEMAND[$1]=1; }
apt_tool() { TOOL_NAMES+=("$1"); TOOL_KIND[$1]=apt; TOOL_SPEC[$1]=$2; }
kube_tool() { TOOL_NAMES+=("$1"); TOOL_KIND[$1]=kube; TOOL_SPEC[$1]=$2; TOOL_PKG[$1]=$3; }

# The k8s.io/kubernetes staging modules: a build of kubernetes from the module
# proxy needs one replace line for each (they are published at v0.MINOR.PATCH).
KUBE_STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
	cloud-provider cluster-bootstrap code-generator component-base component-helpers
	controller-manager cri-api cri-client cri-streaming csi-translation-lib
	dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
	kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
	pod-security-admission sample-apiserver streaming)

# ---- The pinned set --------------------------------------------------------
# In build order (see above). Debian 12 ships none of these at a version the
# tests can use: no crane, oras, helm, cosign or kube-apiserver package at all,
# and docker-registry is distribution 2.8, not the v3 reference make bench
# measures against.
# kube_tool NAME k8s.io/kubernetes@vX.Y.Z PKG builds a kubernetes command in a
# scratch module with the staging replaces (170 MB), for the webhook
# end-to-end test; helm follows it for the k8s.io packages they share.
kube_tool kube-apiserver k8s.io/kubernetes@v1.37.2 k8s.io/kubernetes/cmd/kube-apiserver
go_tool helm helm.sh/helm/v3/cmd/helm@v3.22.0
# cosign v3 writes both schemes: Sigstore bundles as referrers by default,
# and with --new-bundle-format=false the sha256-<hex>.sig/.att tags through
# the same writer cosign v2 uses (so no v2 CLI is built: it cost 306 s of a
# fresh CI run). crane and oras after it: go-containerregistry and the OCI
# libraries.
go_tool cosign3 github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
go_tool crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
go_tool oras oras.land/oras/cmd/oras@v1.3.6
# The S3-compatible server of the scale-out tests: versitygw's POSIX gateway, a
# maintained S3 server published as a Go module (minio and garage are not in
# Debian, and Debian's radosgw needs a whole Ceph cluster).
go_tool versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0
go_main conformance \
	github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111 \
	github.com/opencontainers/distribution-spec/conformance
# The reference registry, only for make bench (no test uses it).
go_tool registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
on_demand registry
apt_tool skopeo skopeo
apt_tool wrk wrk
apt_tool nginx nginx # the load balancer of make bench's two-replica setup
apt_tool curl curl
apt_tool etcd etcd-server # for kube-apiserver in the webhook end-to-end test
apt_tool chromium chromium
apt_tool postgres postgresql # the scale-out tests start their own cluster with initdb
apt_tool gcc gcc   # go test -race needs cgo
apt_tool make make # .ci/run runs this script before it needs make
# -----------------------------------------------------------------------------

command -v go >/dev/null || die "go is not on PATH"

selected=("$@")
if ((${#selected[@]} == 0)); then
	for n in "${TOOL_NAMES[@]}"; do
		[[ -n ${ON_DEMAND[$n]:-} ]] || selected+=("$n")
	done
fi
for n in "${selected[@]}"; do
	[[ -n ${TOOL_KIND[$n]:-} ]] || die "unknown tool $n (known: ${TOOL_NAMES[*]})"
done
# Whatever order they were named in, build in the pinned order.
declare -A wanted=()
for n in "${selected[@]}"; do wanted[$n]=1; done
selected=()
for n in "${TOOL_NAMES[@]}"; do
	[[ -z ${wanted[$n]:-} ]] || selected+=("$n")
done

STAMPS="$PORTCULLIS_TOOLS/stamps"
LOGS="$PORTCULLIS_TOOLS/logs"
STAGING="$PORTCULLIS_TOOLS/staging"
mkdir -p "$TOOLS_BIN" "$STAMPS" "$LOGS" "$STAGING"

# present NAME: the binary is in the cache and was built from the pinned spec
# (a binary without a stamp counts as present: someone put it there).
present() {
	local n=$1
	[[ -x $TOOLS_BIN/$n ]] || return 1
	[[ ! -e $STAMPS/$n ]] || [[ "$(cat "$STAMPS/$n")" == "${TOOL_SPEC[$n]}" ]]
}

# build_go NAME: builds one tool; writes RESULT "ok MILLIS" or "fail MILLIS".
build_go() {
	local n=$1 spec=${TOOL_SPEC[$n]} start rc=0 stage="$STAGING/$n" logf="$LOGS/$n.log"
	start=$(now_ms)
	rm -rf "$stage"
	mkdir -p "$stage"
	{
		echo "# $(date -u +%FT%TZ) $n $spec"
		# Tools are built as upstream ships them: without the repository's
		# GOEXPERIMENT, and from a scratch directory so no go.mod/go.work applies.
		# -s -w: no symbol table or DWARF, which the tests never need and
		# which make the big links (kube-apiserver, cosign) slower.
		# -gcflags=all=-N -l: no optimisation or inlining. The tools are test
		# fixtures, not what is measured, and the compiler's optimisation
		# passes are most of their build: cosign v3 from a warm module cache
		# built in 217 s instead of 296 s this way, and ran a sign-blob in
		# 0.61 s instead of 0.47 s. CGO_ENABLED=0: as upstream ships them.
		local -a gcflags=(-gcflags=all=-N\ -l)
		export CGO_ENABLED=0
		if [[ ${TOOL_KIND[$n]} == kube ]]; then
			local v=${spec#*@} r minor
			minor=${v#v1.}
			minor=${minor%%.*}
			(cd "$stage" && mkdir mod && cd mod &&
				export GOFLAGS=-buildvcs=false GOWORK=off && unset GOEXPERIMENT &&
				go mod init portcullis.tools/scratch &&
				for r in "${KUBE_STAGING[@]}"; do go mod edit -replace "k8s.io/$r=k8s.io/$r@v0.${v#v1.}"; done &&
				go get "${TOOL_PKG[$n]}@$v" &&
				go build "${gcflags[@]}" -o "$stage/bin/$n" -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" "${TOOL_PKG[$n]}")
		elif [[ ${TOOL_KIND[$n]} == go ]]; then
			(cd "$stage" && env -u GOEXPERIMENT GOFLAGS=-buildvcs=false GOWORK=off GOBIN="$stage/bin" \
				go install "${gcflags[@]}" -ldflags="-s -w" "$spec")
		else
			(cd "$stage" && mkdir mod && cd mod &&
				env -u GOEXPERIMENT GOFLAGS=-buildvcs=false GOWORK=off go mod init portcullis.tools/scratch &&
				env -u GOEXPERIMENT GOFLAGS=-buildvcs=false GOWORK=off go get "$spec" &&
				env -u GOEXPERIMENT GOFLAGS=-buildvcs=false GOWORK=off go build "${gcflags[@]}" -ldflags="-s -w" -o "$stage/bin/$n" "${TOOL_PKG[$n]}")
		fi
	} >"$logf" 2>&1 || rc=$?
	# go install names the binary after its package: rename it to NAME.
	local built="$stage/bin/${spec%@*}"
	built="$stage/bin/${built##*/}"
	if ((rc == 0)) && [[ ! -e $stage/bin/$n && -x $built ]]; then
		mv "$built" "$stage/bin/$n"
	fi
	if ((rc == 0)) && [[ -x $stage/bin/$n ]]; then
		mv -f "$stage/bin/$n" "$TOOLS_BIN/$n"
		printf '%s\n' "${TOOL_SPEC[$n]}" >"$STAMPS/$n"
		rm -rf "$stage"
		echo "ok $(($(now_ms) - start))" >"$STAGING/$n.result"
		printf '  %-12s built in %s\n' "$n" "$(fmt_secs $(($(now_ms) - start)))" >&2
	else
		echo "fail $(($(now_ms) - start))" >"$STAGING/$n.result"
		printf '  %-12s FAILED after %s; last lines of %s:\n' "$n" "$(fmt_secs $(($(now_ms) - start)))" "$logf" >&2
		tail -n 20 "$logf" | sed 's/^/      /' >&2
	fi
}

install_apt() {
	local -a pkgs=("$@") sudo=() start rc=0 logf="$LOGS/apt.log"
	start=$(now_ms)
	if ! command -v apt-get >/dev/null; then
		log "  apt-get not found: install ${pkgs[*]} yourself"
		return 1
	fi
	if ((EUID != 0)); then
		if ! command -v sudo >/dev/null; then
			log "  not root and no sudo: install ${pkgs[*]} yourself"
			return 1
		fi
		sudo=(sudo)
		[[ -t 0 ]] || sudo=(sudo -n)
	fi
	local -a aptget=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
	{
		echo "# $(date -u +%FT%TZ) apt-get install ${pkgs[*]}"
		# Update the package lists only when needed: none yet, or install failed.
		if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null ||
			! "${aptget[@]}" install -y "${pkgs[@]}"; then
			"${aptget[@]}" update && "${aptget[@]}" install -y "${pkgs[@]}"
		fi
	} >>"$logf" 2>&1 || rc=$?
	if ((rc == 0)); then
		printf '  %-12s installed with apt-get in %s\n' "${pkgs[*]}" "$(fmt_secs $(($(now_ms) - start)))" >&2
	else
		printf '  apt-get install %s FAILED after %s; last lines of %s:\n' "${pkgs[*]}" "$(fmt_secs $(($(now_ms) - start)))" "$logf" >&2
		tail -n 20 "$logf" | sed 's/^/      /' >&2
	fi
	return "$rc"
}

total_start=$(now_ms)
log "tools: cache $TOOLS_BIN"
failed=()

# 1. Debian packages (first and in the foreground: sudo may ask for a password).
apt_pkgs=()
for n in "${selected[@]}"; do
	[[ ${TOOL_KIND[$n]} == apt ]] || continue
	# Debian keeps PostgreSQL's server programs off PATH, in its versioned folder.
	if where=$(command -v "$n" || compgen -G "/usr/sbin/$n" || compgen -G "/usr/lib/postgresql/*/bin/$n"); then
		printf '  %-12s present (%s)\n' "$n" "${where%%$'\n'*}" >&2
	else
		apt_pkgs+=("${TOOL_SPEC[$n]}")
	fi
done
if ((${#apt_pkgs[@]} > 0)); then
	install_apt "${apt_pkgs[@]}" || failed+=("${apt_pkgs[@]}")
fi

# 2. Go tools, one after another in the pinned order; each prints one line
#    when it finishes and keeps its full output in $LOGS/NAME.log.
to_build=()
for n in "${selected[@]}"; do
	[[ ${TOOL_KIND[$n]} != apt ]] || continue
	if present "$n"; then
		printf '  %-12s present\n' "$n" >&2
	else
		to_build+=("$n")
	fi
done
if ((${#to_build[@]} > 0)); then
	log "  building ${to_build[*]} (one at a time; logs in $LOGS)"
	for n in "${to_build[@]}"; do
		rm -f "$STAGING/$n.result"
		build_go "$n"
		read -r status _ <"$STAGING/$n.result" 2>/dev/null || status=fail
		[[ $status == ok ]] || failed+=("$n")
		rm -f "$STAGING/$n.result"
	done
fi

log "tools: done in $(fmt_secs $(($(now_ms) - total_start)))"
if ((${#failed[@]} > 0)); then
	die "tools failed: ${failed[*]}"
fi

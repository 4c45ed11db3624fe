#!/usr/bin/env bash
# The README's worked example, end to end: `make demo`.
#
# Against a fresh `portcullis serve` (what `make run` starts: registry and
# gate, and the admission webhook without authentication, on free loopback
# ports, data in a temporary directory), with the pinned tools (crane,
# cosign v3, curl): make an image, push it to staging, sign it in both of
# cosign's schemes (the tag scheme cosign v2 writes, and a Sigstore bundle
# referrer), see an unsigned image denied with its reason, trust the
# key, promote with crane copy and portcullis promote, verify, ask the
# admission webhook, query and verify the decision log. Each step prints
# its commands; the script stops at the first step that does not do what
# it says, with a non-zero exit status, and stops its server on exit.
#
# PORTCULLIS: the binary (default bin/portcullis); PATH must hold crane,
# cosign3 and curl (make demo puts the pinned tools first);
# DEMO_KEEP=1 keeps the working directory.
set -euo pipefail

PORTCULLIS=$(realpath "${PORTCULLIS:-bin/portcullis}")
for tool in crane cosign3 curl; do
	command -v "$tool" >/dev/null || { echo "demo: $tool is not on PATH (make tools installs the pinned tools)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-demo.XXXXXX")
cd "$WORK"
export HOME=$WORK COSIGN_PASSWORD= # cosign keeps its state here; the demo key has an empty password
SERVER_PID=
stop_server() {
	if [[ -n $SERVER_PID ]]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}
cleanup() {
	stop_server
	if [[ ${DEMO_KEEP:-} == 1 ]]; then echo "demo: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# show prints a command as the README shows it, then runs it.
show() {
	local a line='$'
	for a in "$@"; do
		[[ $a == *' '* ]] && a="'$a'"
		line+=" $a"
	done
	printf '%s\n' "$line"
	"$@"
}
fail() {
	printf '\ndemo: FAILED: %s\n' "$*" >&2
	exit 1
}
portcullis() { "$PORTCULLIS" "$@"; }

# start_server [FLAGS]: portcullis serve as make run does, on the ports of
# the previous start (free ones the first time), waiting until it listens.
REG=127.0.0.1:0 HOOK=127.0.0.1:0
start_server() {
	stop_server
	local log=server.log
	: >"$log"
	printf '$ portcullis serve --addr %s --webhook-addr %s --webhook-insecure-no-auth --data ./portcullis-data %s &\n' "$REG" "$HOOK" "$*"
	"$PORTCULLIS" serve --addr "$REG" --webhook-addr "$HOOK" --webhook-insecure-no-auth --data ./portcullis-data "$@" >>"$log" 2>&1 &
	SERVER_PID=$!
	local deadline=$((SECONDS + 60))
	until grep -q 'msg="portcullis serving"' "$log" && grep -q 'msg="webhook serving"' "$log"; do
		if ! kill -0 "$SERVER_PID" 2>/dev/null || ((SECONDS > deadline)); then
			cat "$log" >&2
			SERVER_PID=
			fail "portcullis serve did not start"
		fi
		sleep 0.05
	done
	REG=$(grep -o 'msg="portcullis serving" addr=[^ ]*' "$log" | head -1 | sed 's/.*addr=//')
	HOOK=$(grep -o 'msg="webhook serving" addr=[^ ]*' "$log" | head -1 | sed 's/.*addr=//')
	echo "registry on http://$REG, webhook on https://$HOOK (working directory $WORK)"
}

step "1. Start Portcullis (what make run does)"
start_server

step "2. Make an image and push it to staging"
printf 'hello from the demo\n' >hello.txt
show tar -cf layer.tar hello.txt
printf '$ IMG=$(crane append -f layer.tar -t %s/staging/demo:1)\n' "$REG"
IMG=$(crane append -f layer.tar -t "$REG/staging/demo:1")
echo "IMG=$IMG"
[[ $IMG == "$REG/staging/demo@sha256:"* ]] || fail "crane append did not print the image by digest: $IMG"
printf 'not signed\n' >other.txt
show tar -cf other.tar other.txt
printf '$ UNSIGNED=$(crane append -f other.tar -t %s/staging/demo:2)\n' "$REG"
UNSIGNED=$(crane append -f other.tar -t "$REG/staging/demo:2")
echo "UNSIGNED=$UNSIGNED"

step "3. Sign it in the tag scheme (what cosign v2 writes; v3 with --new-bundle-format=false) and as a Sigstore bundle (OCI 1.1 referrer)"
show cosign3 generate-key-pair
show cosign3 sign --key cosign.key --tlog-upload=false --use-signing-config=false --new-bundle-format=false --yes "$IMG"
show cosign3 sign --key cosign.key --tlog-upload=false --use-signing-config=false --yes "$IMG"

step "4. An unsigned image is denied, with the policy's reason"
printf '$ crane copy %s %s/prod/demo:2\n' "$UNSIGNED" "$REG"
if out=$(crane copy "$UNSIGNED" "$REG/prod/demo:2" 2>&1); then
	fail "crane copy of an unsigned image to prod was allowed"
fi
echo "$out"
[[ $out == *DENIED* ]] || fail "the refusal is not a DENIED: $out"
printf '$ portcullis promote %s %s/prod/demo:2\n' "$UNSIGNED" "$REG"
rc=0
out=$(portcullis promote "$UNSIGNED" "$REG/prod/demo:2" 2>&1) || rc=$?
echo "$out"
echo "(exit status $rc: denied)"
((rc == 1)) || fail "portcullis promote of an unsigned image: exit status $rc, want 1 (denied)"
[[ $out == *"denied"* ]] || fail "portcullis promote does not say denied: $out"

step "5. Trust the key, restart"
printf '$ cat portcullis.yaml\n'
cat >portcullis.yaml <<'EOF'
trust:
  authorities:
    - name: demo
      keys: [cosign.pub]
EOF
cat portcullis.yaml
start_server --config portcullis.yaml

step "6. Promote the signed image: crane copy, and portcullis promote (server-side)"
show crane copy "$IMG" "$REG/prod/demo:1.0"
show portcullis promote "$IMG" "$REG/prod/demo:1.1"
[[ $(crane digest "$REG/prod/demo:1.0") == "${IMG#*@}" ]] || fail "prod/demo:1.0 is not the signed image"
printf '$ crane copy %s %s/prod/demo:2   # still denied, now: no signature from authority demo\n' "$UNSIGNED" "$REG"
if out=$(crane copy "$UNSIGNED" "$REG/prod/demo:2" 2>&1); then
	fail "crane copy of an unsigned image to prod was allowed with trust configured"
fi
echo "$out"
[[ $out == *'no signature verified by a configured authority (demo)'* ]] || fail "the denial does not name the missing signature: $out"

step "7. Verify: both signatures, and the gate's verification summary"
show portcullis verify --key cosign.pub "$REG/prod/demo:1.0" | tee verify.out
grep -q 'SIGNATURES (2)' verify.out || fail "portcullis verify does not list the two signatures"
grep -q 'verification_summary' verify.out || fail "portcullis verify does not list the gate's VSA"

step "8. Admission: a pod with the promoted image, and one with the unsigned image"
review() { # review IMAGE: an AdmissionReview of a pod running IMAGE
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"demo-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"name":"web","namespace":"shop","operation":"CREATE","userInfo":{"username":"demo"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop"},"spec":{"containers":[{"name":"web","image":"%s"}]}}}}' "$1"
}
review "$REG/prod/demo:1.0" >pod.json
echo '$ cat pod.json   # an AdmissionReview, as the API server sends it'
cat pod.json; echo
show curl -sS --cacert portcullis-data/webhook/ca.crt -H 'Content-Type: application/json' --data @pod.json "https://$HOOK/validate" | tee admit.out
echo
grep -q '"allowed":true' admit.out || fail "the pod with the promoted image was not admitted"
review "$UNSIGNED" >pod-unsigned.json
show curl -sS --cacert portcullis-data/webhook/ca.crt -H 'Content-Type: application/json' --data @pod-unsigned.json "https://$HOOK/validate" | tee deny.out
echo
grep -q '"allowed":false' deny.out || fail "the pod with the unsigned image was admitted"

step "9. The decision log: every promotion and admission, verifiable"
show portcullis audit query --server "http://$REG" | tee audit.out
for want in 'promote.*allow' 'promote.*deny' 'admit.*allow' 'admit.*deny'; do
	grep -Eq "$want" audit.out || fail "the decision log has no $want record"
done
show portcullis audit verify --server "http://$REG" --pubkey portcullis-data/audit-key.pub

printf '\ndemo: every step did what it says.\n'

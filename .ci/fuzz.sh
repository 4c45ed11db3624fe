#!/usr/bin/env bash
# Runs every Fuzz target (found with `go test -list '^Fuzz' ./...`) for
# FUZZTIME each (default 10s), one at a time: go test -fuzz takes one target
# per package run.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

fuzztime=${FUZZTIME:-10s}
# go test -list prints a package's matching names, then "ok  <package> ...".
targets=$(go test -list '^Fuzz' ./... | awk '
	/^Fuzz/ { names[++n] = $1; next }
	/^ok[ \t]/ { for (i = 1; i <= n; i++) print $2, names[i]; n = 0 }')
if [[ -z $targets ]]; then
	echo "fuzz: no Fuzz targets"
	exit 0
fi
count=$(wc -l <<<"$targets")
echo "fuzz: $count target(s), $fuzztime each"
failed=()
while read -r pkg name; do
	echo "--- $name ($pkg)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed+=("$pkg $name")
	fi
done <<<"$targets"
if ((${#failed[@]} > 0)); then
	printf 'fuzz: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: all $count target(s) passed"

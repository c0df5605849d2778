#!/bin/sh
# Usage: same_output.sh HOST_BINARY CROSS_BINARY
# The cross-built binary (run under $CONNROUTE_RUNNER, e.g. qemu-mips-static)
# must print byte-identical output to the host build for every example
# config: render (json, nft text, routes), dump-config, and check's verdict.
set -eu
host=$1 cross=$2
runner=${CONNROUTE_RUNNER:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0 n=0
for conf in "$root"/examples/*.conf "$root"/files/etc/config/connroute "$root"/tests/bad/*.conf; do
	for args in "render" "render --format nft" "render --routes" "dump-config" "check"; do
		n=$((n + 1))
		# shellcheck disable=SC2086
		"$host" -c "$conf" --syslog /nonexistent $args >"$tmp/host" 2>"$tmp/host.err" && hs=0 || hs=$?
		# shellcheck disable=SC2086
		$runner "$cross" -c "$conf" --syslog /nonexistent $args >"$tmp/cross" 2>"$tmp/cross.err" && cs=0 || cs=$?
		if [ "$hs" != "$cs" ] || ! cmp -s "$tmp/host" "$tmp/cross" || ! cmp -s "$tmp/host.err" "$tmp/cross.err"; then
			echo "DIFFERS: $args on $conf (exit $hs vs $cs)"
			diff "$tmp/host" "$tmp/cross" | head -5 || true
			diff "$tmp/host.err" "$tmp/cross.err" | head -5 || true
			fail=$((fail + 1))
		fi
	done
done
echo "same_output: $n comparisons, $fail differ ($(basename "$cross"))"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# Peak RSS of the release binary on the hostile review's memory case: one
# rule with 100,000 `list dest_ip` lines (2.8 MB). Prints one line per
# command: file size, peak RSS (KiB, from /usr/bin/time and from the
# binary's own `-v` log line) and the ratio to the file size. Needs no root
# (render and dump-config only). Nothing here asserts; the exact,
# deterministic bound on reading and validating is tests/config_memory.rs.
# Usage: bash bench/memory.sh [BINARY] [ADDRESSES]
set -eu
BIN=${1:-target/release/connroute}
N=${2:-100000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CONF=$WORK/connroute
{
	printf 'config gateway g\n\toption gateway 192.168.1.2\n\n'
	printf 'config rule r\n\toption gateway g\n'
	seq 0 $((N - 1)) | awk '{ printf "\tlist dest_ip '\''10.%d.%d.%d'\''\n", int($1 / 65536) % 256, int($1 / 256) % 256, $1 % 256 }'
} >"$CONF"
SIZE=$(stat -c %s "$CONF")
for cmd in "dump-config" "render --routes" "render" "render --format nft"; do
	# shellcheck disable=SC2086
	/usr/bin/time -f %M -o "$WORK/rss" "$BIN" -v -c "$CONF" --ids "$WORK/ids" \
		--syslog /nonexistent --ubus /nonexistent/ubus $cmd >/dev/null 2>"$WORK/err" ||
		{ cat "$WORK/err" >&2; exit 1; }
	RSS=$(cat "$WORK/rss")
	OWN=$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' "$WORK/err")
	printf '%-20s file %d B  peak RSS %d KiB (own log: %s KiB)  %.1fx file\n' \
		"$cmd" "$SIZE" "$RSS" "${OWN:--}" "$(awk -v r="$RSS" -v s="$SIZE" 'BEGIN { print r * 1024 / s }')"
done

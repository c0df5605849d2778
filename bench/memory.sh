#!/usr/bin/env bash
# Peak RSS of the release binary on the two memory cases of issue 13:
# one rule with 100,000 `list dest_ip` lines (2.8 MB; the hostile review's
# case) and 10,000 same-shape rules (bench/run.sh's `gen_rules 10000`,
# about 1 MB; target: 16 MiB). Prints one line per config and command:
# file size, peak RSS (KiB, from /usr/bin/time and from the binary's own
# `-v` log line) and the ratio to the file size. `render --routes` plans
# everything and prints only the routes: the peak before any output.
# As root, the 10,000-rule config is also applied in a network namespace
# of its own (removed at exit): cold (table absent), unchanged, one rule
# added (an incremental update from the recorded batch), that rule
# removed, by the binary's own `-v` line. Nothing here asserts; the exact,
# deterministic bounds on the heap are tests/config_memory.rs.
# Where the 10,000-rule peak is (session 6): making the plan, in every
# step (render, cold, unchanged, incremental all within 0.2 MiB): the
# model (2.3 MB) and the batch texts (4.25 MB) being written, on top of
# what the allocator keeps of the freed UCI document (musl: about 2.5 MB
# of it stays resident). The apply steps drop the model after planning.
# Usage: bash bench/memory.sh [BINARY] [ADDRESSES] [RULES]
# (the static musl build the routers run: target/x86_64-unknown-linux-musl/release/connroute)
set -eu
BIN=${1:-target/release/connroute}
N=${2:-100000}
R=${3:-10000}
WORK=$(mktemp -d)
NS=crmem$$
trap 'ip netns del "$NS" 2>/dev/null; rm -rf "$WORK"' EXIT
{
	printf 'config gateway g\n\toption gateway 192.168.1.2\n\n'
	printf 'config rule r\n\toption gateway g\n'
	seq 0 $((N - 1)) | awk '{ printf "\tlist dest_ip '\''10.%d.%d.%d'\''\n", int($1 / 65536) % 256, int($1 / 256) % 256, $1 % 256 }'
} >"$WORK/addresses"
{
	printf "config gateway 'a'\n\toption gateway '10.128.0.2'\nconfig gateway 'b'\n\toption gateway '10.128.0.3'\n"
	seq 0 $((R - 1)) | awk '{ printf "config rule\n\toption gateway '\''%s'\''\n\tlist src_ip '\''10.%d.%d.7'\''\n\tlist proto '\''tcp'\''\n\tlist dest_port '\''%d'\''\n", ($1 % 2 ? "b" : "a"), int($1 / 250), $1 % 250, 1000 + $1 % 50 }'
} >"$WORK/rules"
for conf in addresses rules; do
	CONF=$WORK/$conf
	SIZE=$(stat -c %s "$CONF")
	for cmd in "dump-config" "render --routes" "render" "render --format nft"; do
		# shellcheck disable=SC2086
		/usr/bin/time -f %M -o "$WORK/rss" "$BIN" -v -c "$CONF" --ids "$WORK/ids" \
			--syslog /nonexistent --ubus /nonexistent/ubus $cmd >/dev/null 2>"$WORK/err" ||
			{ cat "$WORK/err" >&2; exit 1; }
		RSS=$(cat "$WORK/rss")
		OWN=$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' "$WORK/err")
		printf '%-9s %-20s file %d B  peak RSS %d KiB (own log: %s KiB)  %.1fx file\n' \
			"$conf" "$cmd" "$SIZE" "$RSS" "${OWN:--}" "$(awk -v r="$RSS" -v s="$SIZE" 'BEGIN { print r * 1024 / s }')"
	done
done
[ "$(id -u)" = 0 ] || exit 0
# apply: gateways 10.128.0.2 and .3 on a connected /16.
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip link add lan type veth peer name lanp
ip netns exec "$NS" ip link set lan up
ip netns exec "$NS" ip link set lanp up
ip netns exec "$NS" ip addr add 10.128.0.1/16 dev lan
{ cat "$WORK/rules"; printf "config rule\n\toption gateway 'a'\n\tlist src_ip '10.200.1.7'\n\tlist proto 'udp'\n\tlist dest_port '5353'\n"; } >"$WORK/more"
for step in "cold rules" "unchanged rules" "incremental+1 more" "incremental-1 rules"; do
	what=${step% *} conf=${step#* }
	ip netns exec "$NS" "$BIN" -v -c "$WORK/$conf" --ids "$WORK/ids" --state "$WORK/state" \
		--lock "$WORK/lock" --no-rt-tables --syslog /nonexistent apply >/dev/null 2>"$WORK/err" ||
		{ cat "$WORK/err" >&2; exit 1; }
	OWN=$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' "$WORK/err")
	printf '%-9s %-20s peak RSS %s KiB (own log)\n' rules "apply, $what" "${OWN:--}"
done

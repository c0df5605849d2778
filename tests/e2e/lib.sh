# Shared helpers for the end-to-end scenarios: namespaces with unique names,
# always torn down (also on failure), and small assertions.
# Each scenario sources this file, then calls `setup_cleanup`.
set -euo pipefail

: "${CONNROUTE:?CONNROUTE must point at the connroute binary}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PFX="cr$$x$RANDOM"          # unique per run; every namespace starts with it
WORK=$(mktemp -d /tmp/connroute-e2e.XXXXXX)
FAILED=0

ns() { echo "$PFX-$1"; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

cleanup() {
	local n
	for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PFX-" || true); do
		ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$n" 2>/dev/null || true
	done
	rm -rf "$WORK"
}

# Interrupted or terminated: exit (128+signal), which runs the cleanup once;
# a trap that only cleaned up would let the script run on without its
# namespaces.
setup_cleanup() { trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; }

add_ns() {
	local n
	for n in "$@"; do
		ip netns add "$(ns "$n")"
		in_ns "$n" ip link set lo up
		in_ns "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
			net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	done
}

# link A IFA B IFB: a veth pair between two namespaces, up.
link() {
	ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
	in_ns "$1" ip link set "$2" up
	in_ns "$3" ip link set "$4" up
}

# serve NS PORT ADDR: a tiny HTTP server answering its own name, in the
# background, bound to the numeric ADDR (no name lookups; see serve.py).
# When it does not come up, its stderr is shown.
serve() {
	local n=$1 port=$2 bind=$3
	local www="$WORK/www-$n" log="$WORK/serve-$n-$port.log" ready="$WORK/serve-$n-$port.ready"
	mkdir -p "$www"; rm -f "$ready"
	echo "hello from $n" > "$www/index.html"
	in_ns "$n" python3 "$HERE/serve.py" "$bind" "$port" "$www" "$ready" 2>"$log" &
	local pid=$! i
	for i in $(seq 1 50); do
		[ -e "$ready" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "server in $n on [$bind]:$port did not start; its stderr:" >&2
	sed 's/^/    /' "$log" >&2
	return 1
}

# connroute in a namespace, with its state files (lock, ids) in the test's
# work dir and no routing table names file: the host's /etc stays untouched.
cr() {
	local n=$1; shift
	in_ns "$n" "$CONNROUTE" --lock "$WORK/lock-$n" --ids "$WORK/ids-$n" --state "$WORK/state-$n" --no-rt-tables --syslog "$WORK/no-syslog" "$@"
}

# fetch NS URL [curl args]: prints the body; fails on timeout.
fetch() {
	local n=$1 url=$2; shift 2
	in_ns "$n" curl -sS -g --max-time 3 "$@" "$url"
}

ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*" >&2; FAILED=1; }

expect_ok() { # NAME CMD...
	local name=$1; shift
	if out=$("$@" 2>&1); then ok "$name"; else fail "$name: $out"; fi
}

expect_fail() { # NAME CMD...
	local name=$1; shift
	if out=$("$@" 2>&1); then fail "$name: unexpectedly succeeded: $out"; else ok "$name"; fi
}

expect_eq() { # NAME WANT GOT
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: want [$2] got [$3]"; fi
}

# Policy routing state of a namespace: ip rules and every routing table.
# IPv6 link-local addresses appear whenever DAD finishes, so the kernel's own
# fe80 local, anycast and multicast entries are left out.
routing_state() {
	in_ns "$1" sh -c 'ip -4 rule; ip -6 rule; ip -4 route show table all; ip -6 route show table all | grep -v "^anycast\|^multicast\|^local fe80::"' | sort
}

# Everything apply may touch: the whole ruleset (without counter values)
# and the policy routing state.
system_state() {
	in_ns "$1" nft -s list ruleset
	routing_state "$1"
}

# An nft listing with the objects of table inet connroute in name order:
# an incremental load adds chains and counters after the existing ones, so
# a config left and returned to lists the same objects in another order.
sorted_blocks() {
	python3 -c '
import sys
lines, out, i = sys.stdin.read().split("\n"), [], 0
while i < len(lines):
    out.append(lines[i])
    if lines[i].startswith("table inet connroute "):
        blocks, cur, i = [], [], i + 1
        while lines[i] != "}":
            if lines[i]: cur.append(lines[i])
            else: blocks.append(cur); cur = []
            i += 1
        blocks.append(cur)
        out += ["\n".join(b) for b in sorted(blocks)] + ["}"]
    i += 1
print("\n".join(out))'
}

finish() {
	if [ "$FAILED" = 0 ]; then echo "PASS $(basename "$0")"; else echo "FAILED $(basename "$0")" >&2; exit 1; fi
}

# The seed topology: client C; routers R1 and R2 DNAT tcp/80 from their WAN
# to host H (192.168.1.10) on a shared LAN bridge; H's default gateway is R1;
# R2's LAN MAC is 52:54:00:c2:a5:43.
build_seed() {
	add_ns c r1 r2 h sw
	in_ns sw ip link add br0 type bridge
	in_ns sw ip link set br0 up
	link c c-r1 r1 wan
	link c c-r2 r2 wan
	for n in r1 r2 h; do
		link "$n" lan sw "sw-$n"
		in_ns sw ip link set "sw-$n" master br0
	done
	in_ns r2 ip link set lan address 52:54:00:c2:a5:43

	in_ns c ip addr add 10.1.0.2/24 dev c-r1
	in_ns c ip addr add 10.2.0.2/24 dev c-r2
	in_ns r1 ip addr add 10.1.0.1/24 dev wan
	in_ns r2 ip addr add 10.2.0.1/24 dev wan
	in_ns r1 ip addr add 192.168.1.1/24 dev lan
	in_ns r2 ip addr add 192.168.1.2/24 dev lan
	in_ns h ip addr add 192.168.1.10/24 dev lan
	in_ns h ip route add default via 192.168.1.1
	in_ns r1 ip route add default via 10.1.0.2
	in_ns r2 ip route add default via 10.2.0.2
	for r in r1 r2; do
		in_ns "$r" nft -f - <<-'NFT'
	table ip nat {
		chain pre { type nat hook prerouting priority dstnat; iifname "wan" tcp dport 80 dnat to 192.168.1.10; }
	}
	NFT
	done
	serve h 80 192.168.1.10
}

# A router R whose WAN "wan2" (10.2.0.2) links to upstream U (10.2.0.1).
build_wan2() {
	add_ns r u
	link r wan2 u up2
	in_ns r ip addr add 10.2.0.2/24 dev wan2
	in_ns u ip addr add 10.2.0.1/24 dev up2
}

# build_two_uplinks ROUTE2...: router R with two uplinks to one upstream C
# (eth1 10.1.0.2 ↔ c-w1 10.1.0.1, eth2 10.2.0.2 ↔ c-w2 10.2.0.1). C's client
# address 198.51.100.1 and its strict reverse-path filter drop replies that
# come back on the wrong link. R's default route is via eth1; the second one,
# via eth2, takes ROUTE2 (e.g. `metric 20`). R serves HTTP on 8080.
build_two_uplinks() {
	add_ns c r
	link c c-w1 r eth1
	link c c-w2 r eth2
	in_ns c ip addr add 198.51.100.1/32 dev lo
	in_ns c ip addr add 10.1.0.1/24 dev c-w1
	in_ns c ip addr add 10.2.0.1/24 dev c-w2
	in_ns c nft -f - <<-'NFT'
	table inet rpf {
		chain pre { type filter hook prerouting priority raw; fib saddr . iif oif missing counter drop; }
	}
	NFT
	in_ns r ip addr add 10.1.0.2/24 dev eth1
	in_ns r ip addr add 10.2.0.2/24 dev eth2
	in_ns r ip route add default via 10.1.0.1 dev eth1
	# shellcheck disable=SC2068
	in_ns r ip route add default via 10.2.0.1 dev eth2 $@
	serve r 8080 0.0.0.0
}

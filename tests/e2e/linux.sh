#!/usr/bin/env bash
# A plain Linux gateway (no netifd) under systemd's unit: `connroute watch`
# as ExecStart, SIGHUP as ExecReload, `connroute flush` as ExecStopPost.
# Its second uplink eth2 is managed by a DHCP client that only ever edits
# the main table's default route; the gateway is given only
# `device 'eth2'`, so connroute follows that route's next hop — also
# across a renewal that moves the router. The upstream drops replies that
# come back on the wrong link (strict reverse-path filter).
. "$(dirname "$0")/lib.sh"
setup_cleanup
build_two_uplinks metric 100 proto dhcp

cat > "$WORK/connroute" <<'CONF'
config gateway 'uplink2'
	option device 'eth2'
	option table '5002'

config rule 'from_uplink2'
	option gateway 'uplink2'
	list in_device 'eth2'
CONF
ARGS=(-c "$WORK/connroute" --ids "$WORK/ids" --state "$WORK/state" --lock "$WORK/lock" --no-rt-tables --syslog "$WORK/no-syslog" --ubus /nonexistent)
answered() {
	local got
	got=$(fetch c http://10.2.0.2:8080/ --interface 198.51.100.1 2>&1 || true)
	expect_eq "$1" "hello from r" "$got"
}
table() { in_ns r ip -4 route show table 5002 | tr -s ' ' | sed 's/ $//'; }
route_is() { [ "$(table)" = "$1" ]; }
wait_for() { # NAME CMD...: up to 5 s, reports the time taken
	local name=$1 start i
	shift
	start=$(date +%s%N)
	for i in $(seq 1 250); do
		if "$@" >/dev/null 2>&1; then
			ok "$name (after $((($(date +%s%N) - start) / 1000000)) ms)"
			return 0
		fi
		sleep 0.02
	done
	fail "$name: not within 5 s"
}

expect_eq "render follows the main table's next hop" "ip route default via 10.2.0.1 dev eth2 table 5002 proto 197" \
	"$(in_ns r "$CONNROUTE" "${ARGS[@]}" render --routes | grep '^ip route')"
ip netns exec "$(ns r)" "$CONNROUTE" "${ARGS[@]}" -v watch 2> "$WORK/watch.log" &
WATCH=$!
wait_for "watcher applied at start" route_is "default via 10.2.0.1 dev eth2 proto 197"
answered "eth2 answered"

# The DHCP client renews with another router: it replaces the main route.
in_ns c ip addr del 10.2.0.1/24 dev c-w2
in_ns c ip addr add 10.2.0.254/24 dev c-w2
in_ns r ip route replace default via 10.2.0.254 dev eth2 metric 100 proto dhcp
wait_for "renewal followed from the main table" route_is "default via 10.2.0.254 dev eth2 proto 197"
answered "eth2 answered through the new router"

# systemctl reload; systemctl stop (SIGTERM, then ExecStopPost flush).
kill -HUP "$WATCH"
wait_for "reload (SIGHUP) applies" grep -q 'apply for "SIGHUP"' "$WORK/watch.log"
kill -TERM "$WATCH"
wait "$WATCH" && ok "watcher exits 0 on SIGTERM" || fail "watcher exit status $?"
expect_ok "ExecStopPost flush" in_ns r "$CONNROUTE" "${ARGS[@]}" flush
expect_eq "stop leaves nothing" "" "$(in_ns r sh -c 'nft list table inet connroute 2>/dev/null; ip rule; ip route show table all' | grep 'connroute\|proto 197' || true)"
finish

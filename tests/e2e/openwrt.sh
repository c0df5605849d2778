#!/usr/bin/env bash
# An OpenWrt router R booting with two WANs — wan2 static (eth2, IPv6 on
# the static alias wan2_6) and wan3 DHCP (eth3) — beside the default wan
# (eth1). netifd is a stand-in that behaves like the real one (state in
# its dump format, hotplug environments as captured, no event for a
# renewal that only moves the router). The upstream C drops replies that
# come back on the wrong link (strict reverse-path filter), so every
# "answered" below proves the reply left through the right uplink.
# Covers: boot; ifup/ifdown/ifup; a router-only DHCP renewal followed by
# `connroute watch` with no event; the watcher healing deleted tables,
# routes and rules, and link down/up; a malformed ubus answer; backoff
# against a tool that keeps deleting the table.
. "$(dirname "$0")/lib.sh"
setup_cleanup
. "$HERE/standin/netifd.sh"

add_ns c r
link c c-w1 r eth1
link c c-w2 r eth2
link c c-w3 r eth3
in_ns c ip addr add 198.51.100.1/32 dev lo
in_ns c ip addr add 2001:db8:ff::1/128 dev lo
in_ns c ip addr add 10.1.0.1/24 dev c-w1
in_ns c ip addr add 10.2.0.1/24 dev c-w2
in_ns c ip addr add 10.3.0.1/24 dev c-w3
in_ns c ip addr add 2001:db8:1::1/64 dev c-w1 nodad
in_ns c ip addr add 2001:db8:2::1/64 dev c-w2 nodad
in_ns c nft -f - <<'NFT'
table inet rpf {
	chain pre { type filter hook prerouting priority raw; fib saddr . iif oif missing counter drop; }
}
NFT
serve r 8080 ::

# What netifd does at boot for each interface: addresses, main-table
# default route with the interface's metric, then state and hotplug ifup.
CONNROUTE_INIT=$WORK/init
printf '#!/bin/sh\n[ "$1" = enabled ]\n' > "$CONNROUTE_INIT"
chmod +x "$CONNROUTE_INIT"
HOTPLUG_DIR=$HERE/../../files/etc/hotplug.d/iface
CONF=$WORK/connroute
CONNROUTE_ARGS="-c $CONF --ids $WORK/ids --state $WORK/state --ubus $HERE/standin/ubus --lock $WORK/lock --no-rt-tables --syslog $WORK/no-syslog --init-script $CONNROUTE_INIT"
ifup_wan() {
	in_ns r ip addr add 10.1.0.2/24 dev eth1
	in_ns r ip addr add 2001:db8:1::2/64 dev eth1 nodad
	in_ns r ip route add default via 10.1.0.1 dev eth1
	in_ns r ip -6 route add default via 2001:db8:1::1 dev eth1
	iface_up wan static eth1 0 10.1.0.2/24 10.1.0.1
	hotplug_call r ifup wan eth1
}
ifup_wan2() {
	in_ns r ip addr add 10.2.0.2/24 dev eth2
	in_ns r ip addr add 2001:db8:2::2/64 dev eth2 nodad
	in_ns r ip route add default via 10.2.0.1 dev eth2 metric 20
	in_ns r ip -6 route add default via 2001:db8:2::1 dev eth2 metric 20
	iface_up wan2 static eth2 20 10.2.0.2/24 10.2.0.1
	hotplug_call r ifup wan2 eth2
	iface_up wan2_6 static eth2 20 "" "" "" 2001:db8:2::2/64 2001:db8:2::1
	hotplug_call r ifup wan2_6 eth2
}
ifdown_wan2() { # the alias goes down with its parent; ifdown carries no DEVICE
	iface_down wan2 static eth2
	iface_down wan2_6 static eth2
	in_ns r ip route del default via 10.2.0.1 dev eth2 metric 20
	in_ns r ip -6 route del default via 2001:db8:2::1 dev eth2 metric 20
	in_ns r ip addr flush dev eth2 scope global
	hotplug_call r ifdown wan2
	hotplug_call r ifdown wan2_6
}
ifup_wan3() {
	in_ns r ip addr add 10.3.0.101/24 dev eth3
	in_ns r ip route add default via 10.3.0.1 dev eth3 metric 30 src 10.3.0.101
	iface_up wan3 dhcp eth3 30 10.3.0.101/24 10.3.0.1 10.3.0.101/32
	hotplug_call r ifup wan3 eth3
}
cat > "$CONF" <<'CONF'
config globals 'globals'
	option enabled '1'

config gateway 'wan2'
	list interface 'wan2'
	list interface 'wan2_6'
	option table '5002'

config gateway 'wan3'
	list interface 'wan3'
	option table '5003'

config rule 'from_wan2'
	option gateway 'wan2'
	list in_interface 'wan2'

config rule 'from_wan3'
	option gateway 'wan3'
	list in_interface 'wan3'
CONF

v4() { fetch c "http://$1:8080/" --interface 198.51.100.1; }
v6() { fetch c "http://[$1]:8080/" --interface 2001:db8:ff::1; }
answered() { # NAME URL-HOST v4|v6
	local got
	got=$("$3" "$2" 2>&1 || true)
	expect_eq "$1" "hello from r" "$got"
}
table() { in_ns r ip -"$1" route show table "$2" | tr -s ' ' | sed 's/ $//'; }
has_table() { in_ns r nft list table inet connroute >/dev/null 2>&1; }
state() { in_ns r nft -s list table inet connroute 2>/dev/null | sorted_blocks; routing_state r; }

# wait_for NAME CMD...: polls CMD every 20 ms for up to 5 s; reports the time.
wait_for() {
	local name=$1 start now i
	shift
	start=$(date +%s%N)
	for i in $(seq 1 250); do
		if "$@" >/dev/null 2>&1; then
			now=$(date +%s%N)
			ok "$name (after $(((now - start) / 1000000)) ms)"
			echo "reaction $name: $(((now - start) / 1000000)) ms" >> "$WORK/reactions"
			return 0
		fi
		sleep 0.02
	done
	fail "$name: not within 5 s"
}
route_is() { [ "$(table "$1" "$2")" = "$3" ]; }

# --- boot: interfaces come up in netifd's order, before connroute starts
hotplug_call r ifup loopback lo
ifup_wan
ifup_wan2
ifup_wan3
expect_eq "wan2 table after boot" "default via 10.2.0.1 dev eth2 proto 197" "$(table 4 5002)"
expect_eq "wan2 IPv6 (static alias) table after boot" "default via 2001:db8:2::1 dev eth2 proto 197 metric 1024 pref medium" "$(table 6 5002)"
expect_eq "wan3 table after boot" "default via 10.3.0.1 dev eth3 proto 197" "$(table 4 5003)"
answered "wan2 answered (IPv4)" 10.2.0.2 v4
answered "wan2 answered (IPv6)" 2001:db8:2::2 v6
answered "wan3 answered" 10.3.0.101 v4
answered "wan answered (default uplink)" 10.1.0.2 v4

# --- ifdown / ifup, as netifd sends them
ifdown_wan2
expect_eq "wan2 routes gone after ifdown" "" "$(table 4 5002)$(table 6 5002)"
in_ns r ip rule | grep -q "lookup 5002" && fail "wan2 rules left after ifdown" || ok "wan2 rules gone after ifdown"
answered "wan3 still answered while wan2 is down" 10.3.0.101 v4
ifup_wan2
answered "wan2 answered after ifup (IPv4)" 10.2.0.2 v4
answered "wan2 answered after ifup (IPv6)" 2001:db8:2::2 v6

# --- the watcher (procd runs `connroute watch`)
# shellcheck disable=SC2086
ip netns exec "$(ns r)" "$CONNROUTE" $CONNROUTE_ARGS -v watch 2> "$WORK/watch.log" &
WATCH=$!
wait_for "watcher started" grep -q "watching" "$WORK/watch.log"
before=$(state)

# A renewal that only moves the router: netifd replaces the main-table
# default route and its state; no hotplug call, no ubus event.
in_ns c ip addr del 10.3.0.1/24 dev c-w3
in_ns c ip addr add 10.3.0.254/24 dev c-w3
in_ns r ip route del default via 10.3.0.1 dev eth3 metric 30
in_ns r ip route add default via 10.3.0.254 dev eth3 metric 30 src 10.3.0.101
LEASETIME=700 iface_up wan3 dhcp eth3 30 10.3.0.101/24 10.3.0.254 10.3.0.101/32
wait_for "renewal followed" route_is 4 5003 "default via 10.3.0.254 dev eth3 proto 197"
answered "wan3 answered through the new router" 10.3.0.101 v4
after=$(state)

# Deleting the table, as tools do.
applies() { grep -c "watch: apply for" "$WORK/watch.log" || true; }
a0=$(applies)
in_ns r nft flush ruleset
wait_for "healed after nft flush ruleset" has_table
sleep 1
expect_eq "one apply per heal: its own changes do not wake the watcher" $((a0 + 1)) "$(applies)"
answered "wan2 answered after the heal" 10.2.0.2 v4
for t in $(in_ns r nft list tables | awk '{print $2 "/" $3}'); do # fw4 flush
	in_ns r nft delete table "${t%/*}" "${t#*/}"
done
wait_for "healed after every table was deleted (fw4 flush)" has_table
in_ns r nft delete table inet connroute
wait_for "healed after nft delete table inet connroute" has_table
answered "wan3 answered after the heals" 10.3.0.101 v4

# Routes and rules edited or deleted by others.
in_ns r ip route del default table 5002
wait_for "healed after its IPv4 route was deleted" route_is 4 5002 "default via 10.2.0.1 dev eth2 proto 197"
in_ns r ip rule del priority "$(in_ns r ip rule | grep -m1 'lookup 5002' | cut -d: -f1)"
rules_5002() { [ "$(in_ns r ip rule | grep -c 'lookup 5002')" = "$1" ]; }
wait_for "healed after an ip rule was deleted" rules_5002 1
in_ns r ip -6 route del default table 5002
wait_for "healed after an IPv6 route was deleted" route_is 6 5002 "default via 2001:db8:2::1 dev eth2 proto 197 metric 1024 pref medium"

# Link down and up: the kernel drops the routes through the device.
in_ns r ip link set eth3 down
in_ns r ip link set eth3 up
in_ns r ip route replace default via 10.3.0.254 dev eth3 metric 30 src 10.3.0.101
wait_for "route back after link down/up" route_is 4 5003 "default via 10.3.0.254 dev eth3 proto 197"
answered "wan3 answered after link down/up" 10.3.0.101 v4
expect_eq "state after all heals equals the state after the renewal" "$after" "$(state)"
[ "$before" != "$after" ] && ok "renewal changed the state" || fail "renewal changed nothing"

# A malformed ubus answer: logged, nothing changed, no crash.
printf '{"interface": [ {"interface": "wan3", "up": tru' > "$NETIFD_STATE/garbage"
snapshot=$(routing_state r)
in_ns r nft delete table inet connroute
sleep 1.5
expect_eq "nothing changed on a malformed ubus answer" "$snapshot" "$(routing_state r)"
kill -0 "$WATCH" 2>/dev/null && ok "watcher alive after a malformed answer" || fail "watcher died"
grep -q "not JSON\|netifd" "$WORK/watch.log" && ok "malformed answer logged" || fail "malformed answer not logged"
rm "$NETIFD_STATE/garbage"
wait_for "healed once ubus answers again (retry)" has_table

# A tool that keeps deleting the table: the watcher backs off.
n0=$(grep -c "loaded table" "$WORK/watch.log" || true)
for i in $(seq 1 40); do in_ns r nft delete table inet connroute 2>/dev/null || true; sleep 0.25; done
n1=$(grep -c "loaded table" "$WORK/watch.log" || true)
echo "repairs during 10 s of deletions every 250 ms: $((n1 - n0))" >> "$WORK/reactions"
[ $((n1 - n0)) -le 10 ] && ok "backed off: $((n1 - n0)) repairs in 10 s" || fail "fought: $((n1 - n0)) repairs in 10 s"
grep -q "backing off" "$WORK/watch.log" && ok "backoff logged" || fail "backoff not logged"
steps=$(grep -c "backing off" "$WORK/watch.log" || true)
[ "$steps" -le $((n1 - n0)) ] && ok "logged once per backoff step ($steps steps, $((n1 - n0)) repairs)" || fail "backoff logged $steps times for $((n1 - n0)) repairs"
for i in $(seq 1 30); do has_table && break; sleep 1; done
has_table && ok "healed after the other tool stopped" || fail "not healed after the other tool stopped"

# Idle: blocked in poll, no CPU; memory as the kernel counts it.
ticks() { awk '{print $14 + $15}' "/proc/$WATCH/stat"; }
t0=$(ticks); sleep 2; t1=$(ticks)
[ $((t1 - t0)) -le 1 ] && ok "idle watcher uses no CPU ($((t1 - t0)) ticks in 2 s)" || fail "idle watcher used $((t1 - t0)) ticks in 2 s"
grep -E "VmHWM|VmRSS|RssAnon|RssFile" "/proc/$WATCH/status" | tr -s ' \t' ' ' | sed 's/^/watcher /' >> "$WORK/reactions"
kill -HUP "$WATCH"
wait_for "SIGHUP applies now" grep -q 'watch: apply for "SIGHUP"' "$WORK/watch.log"
kill -TERM "$WATCH"
for i in $(seq 1 50); do kill -0 "$WATCH" 2>/dev/null || break; sleep 0.1; done
kill -0 "$WATCH" 2>/dev/null && fail "watcher ignored SIGTERM" || ok "watcher exits on SIGTERM"
wait "$WATCH" && ok "watcher exit status 0" || fail "watcher exit status $?"
cat "$WORK/reactions"
finish

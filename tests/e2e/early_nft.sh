#!/usr/bin/env bash
# nft started early, and connroute's own system calls, on a real kernel
# (strace): a cold apply starts nft before it takes the lock or reads any route and
# feeds it only after its last rule change; an unchanged apply starts no
# nft; an apply refused after nft was started leaves no process behind and
# nothing committed; one that waited long for the lock still has its whole
# deadline, and one killed while it waited is replaced. One socket per netlink family, one rule dump per
# family, no /proc/self/status read.
. "$(dirname "$0")/lib.sh"
setup_cleanup
CONF="$HERE/../../examples/seed.conf"

add_ns h
in_ns h ip link add lan type veth peer name lanp
in_ns h ip link set lan up
in_ns h ip link set lanp up
in_ns h ip addr add 192.168.1.10/24 dev lan

# traced NAME ARGS...: connroute under strace; its own lines (the first
# pid) in $WORK/NAME.own, nft's process starts in $WORK/NAME.starts.
traced() {
	local name=$1; shift
	local rc=0
	in_ns h strace -f -qq -o "$WORK/$name.trace" -s 64 \
		-e trace=socket,sendto,clone,clone3,vfork,open,openat,write,writev,kill,flock \
		"$CONNROUTE" --lock "$WORK/lock" --ids "$WORK/ids" --state "$WORK/state" \
		--no-rt-tables --syslog "$WORK/no-syslog" "$@" >/dev/null 2>&1 || rc=$?
	local pid
	pid=$(head -1 "$WORK/$name.trace" | cut -d' ' -f1)
	grep -E "^$pid +" "$WORK/$name.trace" > "$WORK/$name.own" || true
	grep -E "^$pid +(clone|clone3|vfork)\(" "$WORK/$name.trace" > "$WORK/$name.starts" || true
	return $rc
}
# line NAME PATTERN [first|last]: the line number of PATTERN in NAME.own.
line() { { grep -n -E "$2" "$WORK/$1.own" || true; } | { if [ "${3:-first}" = last ]; then tail -1; else head -1; fi; } | cut -d: -f1; }
count() { grep -c -E "$2" "$WORK/$1.own" || true; }

expect_ok "cold apply" traced cold -c "$CONF" apply
expect_eq "one nft started" 1 "$(wc -l < "$WORK/cold.starts")"
started=$(line cold '(clone|clone3|vfork)\(')
first_dump=$(line cold 'RTM_GETROUTE')
first_route=$(line cold 'RTM_NEWROUTE')
last_rule=$(line cold 'RTM_NEWRULE' last)
fed=$(line cold 'writev?\([0-9]+, .*\{\\"nftables\\"')
echo "# nft started at line $started, route dump $first_dump, first route $first_route, last rule $last_rule, fed at $fed"
[ -n "$started" ] && [ -n "$first_dump" ] && [ "$started" -lt "$first_dump" ] &&
	ok "nft started before the routes were read" || fail "nft not started before the route dump"
locked=$(line cold 'flock\(')
[ -n "$locked" ] && [ "$started" -lt "$locked" ] &&
	ok "nft started before the lock was taken" || fail "nft started at line $started, the lock at ${locked:-none}"
[ -n "$fed" ] && [ -n "$last_rule" ] && [ "$last_rule" -lt "$fed" ] &&
	ok "nft fed after the last rule change" || fail "nft fed before the rules were in place"
expect_eq "one NETLINK_ROUTE socket" 1 "$(count cold 'socket\(AF_NETLINK, [^)]*NETLINK_ROUTE')"
expect_eq "one NETLINK_NETFILTER socket" 1 "$(count cold 'socket\(AF_NETLINK, [^)]*NETLINK_NETFILTER')"
expect_eq "ip rules dumped once per family" 2 "$(count cold 'RTM_GETRULE')"
expect_eq "no /proc/self/status read" 0 "$(count cold '/proc/self/status')"
expect_eq "table loaded" 1 "$(in_ns h nft list tables | grep -c 'inet connroute' || true)"

expect_ok "unchanged apply" traced warm -c "$CONF" apply
expect_eq "unchanged: no nft started" 0 "$(wc -l < "$WORK/warm.starts")"

# Refused after the table's verdict (another owner's default route in
# connroute's table): the nft started for the load is killed unfed.
expect_ok "flush" cr h -c "$CONF" flush
in_ns h ip route add default via 192.168.1.1 table 5000
cat > "$WORK/nft" <<SH
#!/bin/sh
cat > "$WORK/nft.in"
echo fed >> "$WORK/nft.log"
exec nft "\$@" < "$WORK/nft.in"
SH
chmod +x "$WORK/nft"
rc=0
traced refused --nft "$WORK/nft" -c "$CONF" apply || rc=$?
expect_eq "refused with exit 2" 2 "$rc"
expect_eq "refused: nft was started" 1 "$(wc -l < "$WORK/refused.starts")"
expect_eq "refused: nft never fed" "" "$(cat "$WORK/nft.log" 2>/dev/null || true)"
expect_eq "refused: nothing committed" 0 "$(in_ns h nft list tables | grep -c connroute || true)"
expect_eq "refused: no process left in the namespace" "" "$(ip netns pids "$(ns h)")"
expect_eq "refused: no rule of connroute's" 0 "$(in_ns h ip rule | grep -c 'proto 197' || true)"
in_ns h ip route del default via 192.168.1.1 table 5000

# The same script as nft works when fed: the refusal above was not its fault.
expect_ok "apply through the script" cr h --nft "$WORK/nft" -c "$CONF" apply
expect_eq "script fed once" fed "$(cat "$WORK/nft.log")"
expect_ok "flush" cr h -c "$CONF" flush

# nft started before the lock waits as long as the lock is held: its
# deadline counts from the feed. Lock held 1.8 s, --timeout 4, an nft
# that takes 2.5 s once fed: loads (from its start it would be 4.3 s).
cat > "$WORK/slow-nft" <<SH
#!/bin/sh
cat > "$WORK/slow.in.\$\$"
[ -s "$WORK/slow.in.\$\$" ] && sleep 2.5
exec nft "\$@" < "$WORK/slow.in.\$\$"
SH
chmod +x "$WORK/slow-nft"
flock "$WORK/lock-h" sleep 1.8 & holder=$!
sleep 0.1
rc=0; out=$(cr h --nft "$WORK/slow-nft" --timeout 4 -c "$CONF" apply 2>&1) || rc=$?
wait "$holder"
expect_eq "after a long lock wait the load has its whole deadline ($out)" 0 "$rc"
expect_eq "table loaded after the lock wait" 1 "$(in_ns h nft list tables | grep -c 'inet connroute' || true)"
expect_ok "flush" cr h -c "$CONF" flush

# An nft killed while it waited for the lock is replaced, not reported.
flock "$WORK/lock-h" sleep 1.5 & holder=$!
sleep 0.1
rc=0
cr h -c "$CONF" apply >"$WORK/killed.out" 2>&1 & applier=$!
early=""
for _ in $(seq 1 100); do
	for p in $(ip netns pids "$(ns h)"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = nft ] && early=$p
	done
	[ -n "$early" ] && break
	sleep 0.01
done
[ -n "$early" ] && kill -9 "$early"
wait "$applier" || rc=$?
wait "$holder"
[ -n "$early" ] && ok "the early nft was killed while it waited" || fail "no early nft seen"
expect_eq "apply after its early nft died: exit 0 ($(tail -1 "$WORK/killed.out"))" 0 "$rc"
expect_eq "table loaded by a fresh nft" 1 "$(in_ns h nft list tables | grep -c 'inet connroute' || true)"
expect_eq "no process left in the namespace" "" "$(ip netns pids "$(ns h)")"
expect_ok "flush" cr h -c "$CONF" flush
finish

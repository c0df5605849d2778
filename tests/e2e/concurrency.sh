#!/usr/bin/env bash
# 20 simultaneous runs (10 `apply`, 10 netifd `ifup` events through the real
# hotplug script) on a router with a netifd-managed WAN end in exactly the
# state one run produces: one table, no duplicate ip rules or routes.
. "$(dirname "$0")/lib.sh"
setup_cleanup
build_wan2
in_ns r ip -6 addr add fd02::2/64 dev wan2 nodad
in_ns u ip -6 addr add fd02::1/64 dev up2 nodad

cat > "$WORK/ubus" <<'SH'
#!/bin/sh
[ "$1" = -t ] && shift 2   # ubus -t SECONDS, as connroute calls it
[ "$1 $2 $3" = "call network.interface dump" ] || exit 4
cat <<'JSON'
{"interface": [{"interface": "wan2", "up": true, "l3_device": "wan2", "device": "wan2",
  "route": [{"target": "0.0.0.0", "mask": 0, "nexthop": "10.2.0.1", "source": "10.2.0.2/32"}]},
 {"interface": "wan2_6", "up": true, "l3_device": "wan2", "device": "wan2",
  "route": [{"target": "::", "mask": 0, "nexthop": "fd02::1", "source": "fd02::2/128"}]}]}
JSON
SH
chmod +x "$WORK/ubus"
cat > "$WORK/connroute" <<'CONF'
config gateway 'wan2'
	list interface 'wan2'
	list interface 'wan2_6'
config rule 'from_wan2'
	option gateway 'wan2'
	list in_interface 'wan2'
config rule 'dns_out'
	option gateway 'wan2'
	list proto 'udp'
	list dest_port '53'
CONF
printf '#!/bin/sh\nexit 0\n' > "$WORK/init"; chmod +x "$WORK/init"
ARGS="-c $WORK/connroute --ubus $WORK/ubus --lock $WORK/lock --state $WORK/state --ids $WORK/ids --no-rt-tables --syslog $WORK/x"
state() { system_state r; }
# shellcheck disable=SC2086
apply() { in_ns r "$CONNROUTE" $ARGS apply; }
hotplug() {
	in_ns r env ACTION=ifup INTERFACE=wan2 DEVICE=wan2 CONNROUTE="$CONNROUTE" \
		CONNROUTE_INIT="$WORK/init" CONNROUTE_ARGS="$ARGS" \
		sh "$HERE/../../files/etc/hotplug.d/iface/30-connroute"
}

expect_ok "one apply" apply
one=$(state)
# shellcheck disable=SC2086
expect_ok "flush" in_ns r "$CONNROUTE" $ARGS flush

for round in 1 2; do
	pids=()
	for i in $(seq 1 10); do
		apply >"$WORK/out-a$i" 2>&1 & pids+=($!)
		hotplug >"$WORK/out-h$i" 2>&1 & pids+=($!)
	done
	failed=0
	for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
	expect_eq "round $round: all 20 runs exit 0" 0 "$failed"
	expect_eq "round $round: same state as one run" "$one" "$(state)"
	expect_eq "round $round: one connroute table" 1 "$(in_ns r nft list tables | grep -c 'inet connroute')"
	for f in -4 -6; do
		expect_eq "round $round: no duplicate ip $f rules" "" "$(in_ns r ip $f rule | sort | uniq -d)"
	done
	expect_eq "round $round: rules v4, v6, routes v4, v6" "5 5 1 1" "$(in_ns r sh -c '
		echo $(ip -4 rule | grep -c "proto 197") $(ip -6 rule | grep -c "proto 197") \
			$(ip -4 route show table all proto 197 | wc -l) $(ip -6 route show table all proto 197 | wc -l)')"
done

# A run that waited for the lock applies the config as it is after the wait
# (apply parses before the lock; that parse is reused only for unchanged files).
in_ns r flock "$WORK/lock" sleep 3 & holder=$!
for _ in $(seq 1 50); do in_ns r flock -n "$WORK/lock" true 2>/dev/null || break; sleep 0.1; done
apply >"$WORK/out-wait" 2>&1 & waiter=$!
sleep 1
printf "config rule 'ntp_out'\n\toption gateway 'wan2'\n\tlist proto 'udp'\n\tlist dest_port '123'\n" >> "$WORK/connroute"
wait "$holder"; wait "$waiter" || fail "the waiting apply failed: $(cat "$WORK/out-wait")"
expect_eq "the waiting apply loaded the edited config" 1 "$(in_ns r nft list table inet connroute | grep -c 'rule ntp_out')"
finish

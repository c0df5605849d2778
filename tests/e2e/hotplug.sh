#!/usr/bin/env bash
# netifd integration on a router namespace: a stand-in `ubus` serves
# interface state; the real hotplug script re-applies on ifup / ifupdate /
# ifdown, ignores unrelated events, and the firewall include restores the
# state after `fw4 flush` deleted every table.
. "$(dirname "$0")/lib.sh"
setup_cleanup
build_wan2
in_ns u ip addr add 10.2.0.3/24 dev up2

mkdir -p "$WORK/bin"
cat > "$WORK/bin/ubus" <<SH
#!/bin/sh
[ "\$1" = -t ] && shift 2 # connroute passes ubus's own timeout first
[ "\$1 \$2 \$3" = "call network.interface dump" ] || exit 4
cat "$WORK/dump.json"
SH
chmod +x "$WORK/bin/ubus"
state() { # UP NEXTHOP
	cat > "$WORK/dump.json" <<JSON
{"interface": [{"interface": "wan2", "up": $1, "l3_device": "wan2", "device": "wan2",
  "route": [$( [ "$1" = true ] && echo "{\"target\": \"0.0.0.0\", \"mask\": 0, \"nexthop\": \"$2\", \"source\": \"10.2.0.2/32\"}")]}]}
JSON
}
cat > "$WORK/connroute" <<'CONF'
config gateway 'wan2'
	list interface 'wan2'
config rule 'from_wan2'
	option gateway 'wan2'
	list in_interface 'wan2'
CONF
printf '#!/bin/sh\nexit 0\n' > "$WORK/init"; chmod +x "$WORK/init"
hotplug() { # ACTION INTERFACE
	in_ns r env ACTION="$1" INTERFACE="$2" DEVICE=wan2 CONNROUTE="$CONNROUTE" CONNROUTE_INIT="$WORK/init" \
		CONNROUTE_ARGS="-c $WORK/connroute --ubus $WORK/bin/ubus --lock $WORK/lock --no-rt-tables --ids $WORK/ids --syslog $WORK/x" \
		sh "$HERE/../../files/etc/hotplug.d/iface/30-connroute"
}
route() { in_ns r ip route show table 5000 | tr -s ' ' | sed 's/ $//'; }
classify() { in_ns r nft list chain inet connroute classify 2>/dev/null | grep -c 'iifname "wan2"' || true; }

state true 10.2.0.1
expect_ok "ifup wan2" hotplug ifup wan2
expect_eq "route via the netifd next hop" "default via 10.2.0.1 dev wan2 proto 197" "$(route)"
expect_eq "classification installed" 1 "$(classify)"
state true 10.2.0.3
expect_ok "ifupdate wan2 (DHCP renewal, new next hop)" hotplug ifupdate wan2
expect_eq "route moved to the new next hop" "default via 10.2.0.3 dev wan2 proto 197" "$(route)"
before=$(in_ns r nft -s list ruleset; route)
state false ""
expect_ok "unrelated interface" hotplug ifdown lan
expect_ok "mwan3 action" hotplug connected wan2
expect_eq "unrelated events change nothing" "$before" "$(in_ns r nft -s list ruleset; route)"
expect_ok "ifdown wan2" hotplug ifdown wan2
expect_eq "route gone while wan2 is down" "" "$(route)"
expect_eq "classification gone while wan2 is down" 0 "$(classify)"
in_ns r ip rule | grep -q "lookup 5000" && fail "ip rules left while down" || ok "ip rules gone while down"
state true 10.2.0.1
expect_ok "ifup again" hotplug ifup wan2
in_ns r nft flush ruleset
expect_eq "fw4 flush removed our table" "" "$(in_ns r nft list tables | grep connroute || true)"
expect_ok "firewall include" in_ns r env CONNROUTE="$CONNROUTE" CONNROUTE_INIT="$WORK/init" \
	CONNROUTE_ARGS="-c $WORK/connroute --ubus $WORK/bin/ubus --lock $WORK/lock --no-rt-tables --ids $WORK/ids --syslog $WORK/x" \
	sh "$HERE/../../files/usr/share/connroute/firewall.include"
expect_eq "firewall include restored the table" 1 "$(classify)"
finish

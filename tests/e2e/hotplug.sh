#!/usr/bin/env bash
# netifd integration without the watcher: the stand-in netifd (state in
# its dump format, hotplug calls with the captured environments) drives
# the real hotplug script. ifup installs; a DHCP renewal that changes the
# router and the lease data arrives as `ifupdate` with IFUPDATE_DATA=1
# only, and moves the route; ifdown (no DEVICE) removes; unrelated events
# change nothing; firewall4's include (run on start/reload/restart, never
# on stop/flush) puts the table back on the start after a flush and
# changes nothing when the table is intact.
. "$(dirname "$0")/lib.sh"
setup_cleanup
. "$HERE/standin/netifd.sh"
build_wan2
in_ns u ip addr add 10.2.0.3/24 dev up2

cat > "$WORK/connroute" <<'CONF'
config gateway 'wan2'
	list interface 'wan2'
config rule 'from_wan2'
	option gateway 'wan2'
	list in_interface 'wan2'
CONF
CONNROUTE_INIT=$WORK/init
printf '#!/bin/sh\n[ "$1" = enabled ]\n' > "$CONNROUTE_INIT"
chmod +x "$CONNROUTE_INIT"
HOTPLUG_DIR=$HERE/../../files/etc/hotplug.d/iface
CONNROUTE_ARGS="-c $WORK/connroute --ids $WORK/ids --state $WORK/state --ubus $HERE/standin/ubus --lock $WORK/lock --no-rt-tables --syslog $WORK/x"
route() { in_ns r ip route show table 5000 | tr -s ' ' | sed 's/ $//'; }
classify() { in_ns r nft list chain inet connroute classify 2>/dev/null | grep -c 'iifname "wan2"' || true; }
include() { # what firewall4 runs: sh -c ". PATH"
	in_ns r env CONNROUTE="$CONNROUTE" CONNROUTE_INIT="$CONNROUTE_INIT" CONNROUTE_ARGS="$CONNROUTE_ARGS" \
		sh -c ". '$HERE/../../files/usr/share/connroute/firewall.include'"
}

iface_up wan2 dhcp wan2 20 10.2.0.2/24 10.2.0.1 10.2.0.2/32
hotplug_call r ifup wan2 wan2
expect_eq "ifup: route via the netifd next hop" "default via 10.2.0.1 dev wan2 proto 197" "$(route)"
expect_eq "ifup: classification installed" 1 "$(classify)"

LEASETIME=700 iface_up wan2 dhcp wan2 20 10.2.0.2/24 10.2.0.3 10.2.0.2/32
hotplug_call r ifupdate wan2 wan2 IFUPDATE_DATA=1
expect_eq "ifupdate (IFUPDATE_DATA only): route moved to the new router" "default via 10.2.0.3 dev wan2 proto 197" "$(route)"

before=$(in_ns r nft -s list ruleset; route)
hotplug_call r ifdown lan
hotplug_call r connected wan2
hotplug_call r ifup-failed wan2
hotplug_call r ifup loopback lo
expect_eq "unrelated events change nothing" "$before" "$(in_ns r nft -s list ruleset; route)"

iface_down wan2 dhcp wan2
hotplug_call r ifdown wan2
expect_eq "ifdown: route gone" "" "$(route)"
expect_eq "ifdown: classification gone" 0 "$(classify)"
in_ns r ip rule | grep -q "lookup 5000" && fail "ip rules left while down" || ok "ifdown: ip rules gone"

iface_up wan2 dhcp wan2 20 10.2.0.2/24 10.2.0.1 10.2.0.2/32
hotplug_call r ifup wan2 wan2
before=$(in_ns r nft -s list ruleset; route)
expect_ok "include on fw4 reload/restart" include
expect_eq "include changes nothing when the table is intact" "$before" "$(in_ns r nft -s list ruleset; route)"
in_ns r nft flush ruleset # service firewall stop = fw4 flush: every table, no include
expect_eq "fw4 flush removed connroute's table" "" "$(in_ns r nft list tables | grep connroute || true)"
expect_ok "include on the next fw4 start" include
expect_eq "include restored the table" 1 "$(classify)"
expect_eq "no hotplug script failed" "" "$(cat "$WORK/hotplug-failures" 2>/dev/null || true)"
finish

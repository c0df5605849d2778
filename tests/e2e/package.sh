#!/usr/bin/env bash
# The package's life on an OpenWrt-like root: install, configure, heal,
# stop/start, upgrade, and removal with a hotplug event and a watcher
# repair in flight. The maintainer scripts (openwrt/postinst, prerm), the
# init script, hotplug script and uci-defaults run unmodified at their
# real paths: a private mount namespace overlays /etc, /usr/lib (/lib) and
# /usr/sbin (writes land in $WORK, the host's files are untouched), with
# stand-ins for rc.common, procd, /lib/functions.sh, uci, ubus and netifd
# that behave like OpenWrt's (tests/e2e/standin/). Real traffic through a
# strict reverse-path upstream proves the routing at each step.
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" != inside ]; then
	setup_cleanup
	build_two_uplinks metric 20
	in_ns r unshare -m --propagation private env OUTER_WORK="$WORK" OUTER_PFX="$PFX" \
		bash "$0" inside || FAILED=1
	finish
	exit
fi

# --- inside r's network namespace and a private mount namespace
rm -rf "$WORK"
WORK=$OUTER_WORK PFX=$OUTER_PFX
for d in /etc /usr/lib /usr/sbin; do
	mkdir -p "$WORK/ov$d/up" "$WORK/ov$d/wk"
	mount -t overlay overlay -o "lowerdir=$d,upperdir=$WORK/ov$d/up,workdir=$WORK/ov$d/wk" "$d"
done
S=$HERE/standin
TOP=$HERE/../..
mkdir -p /lib/functions /etc/config /etc/rc.d /usr/lib/opkg/info
cp "$S/rc.common" /etc/rc.common
cp "$S/functions.sh" /lib/functions.sh
cp "$S/procd.sh" /lib/functions/procd.sh
: > /lib/functions/service.sh
cp "$S/uci" /usr/sbin/uci
printf '#!/bin/sh\nexec env NETIFD_STATE=%s %s "$@"\n' "$WORK/netifd" "$S/ubus" > /usr/sbin/ubus
chmod +x /usr/sbin/ubus
: > /etc/config/firewall
export PROCD_STATE=$WORK/procd
. "$S/netifd.sh"
iface_up wan static eth1 0 10.1.0.2/24 10.1.0.1
iface_up wan2 static eth2 20 10.2.0.2/24 10.2.0.1

# The package's files, with the feed Makefile's modes. The binary is a
# wrapper that keeps the lock and syslog of this test out of the host's /run.
install_pkg() {
	local list=/usr/lib/opkg/info/connroute.list
	printf '#!/bin/sh\n# build %s\nexec %s --lock %s --state /state --syslog %s "$@"\n' "$1" "$CONNROUTE" "$WORK/lock" "$WORK/no-syslog" > /usr/sbin/connroute
	chmod 0755 /usr/sbin/connroute
	: > "$list"
	put() { # MODE SOURCE DEST
		mkdir -p "$(dirname "$3")"
		[ "$3" = /etc/config/connroute ] && [ -e "$3" ] || cp "$TOP/$2" "$3" # conffile kept
		chmod "$1" "$3"
		echo "$3" >> "$list"
	}
	echo /usr/sbin/connroute >> "$list"
	put 0600 files/etc/config/connroute /etc/config/connroute
	put 0755 files/etc/init.d/connroute /etc/init.d/connroute
	put 0644 files/etc/hotplug.d/iface/30-connroute /etc/hotplug.d/iface/30-connroute
	put 0755 files/etc/uci-defaults/90-connroute /etc/uci-defaults/90-connroute
	put 0755 files/usr/share/connroute/firewall.include /usr/share/connroute/firewall.include
}
remove_pkg_files() { # what opkg does after prerm (conffiles go too on remove)
	xargs rm -f < /usr/lib/opkg/info/connroute.list
	rm -f /usr/lib/opkg/info/connroute.list
}

watcher_pid() { procd_running_pid connroute watch; }
. /lib/functions/procd.sh
has_table() { nft list table inet connroute >/dev/null 2>&1; }
answered() { # NAME
	local got
	got=$(ip netns exec "$(ns c)" curl -sS --max-time 3 --interface 198.51.100.1 http://10.2.0.2:8080/ 2>&1 || true)
	expect_eq "$1" "hello from r" "$got"
}
wait_for() { # NAME CMD...: up to 5 s
	local name=$1 i
	shift
	for i in $(seq 1 250); do "$@" >/dev/null 2>&1 && { ok "$name"; return 0; }; sleep 0.02; done
	fail "$name: not within 5 s"
}
owned_state() { # everything connroute may leave behind
	nft list table inet connroute 2>/dev/null
	{ ip -4 rule; ip -6 rule; ip -4 route show table all; ip -6 route show table all; } | grep 'proto 197'
	cat /etc/iproute2/rt_tables.d/connroute.conf 2>/dev/null
	[ "${1:-}" = stop ] || uci -q get firewall.connroute
	# Watchers of this network namespace only: other scenarios run
	# their own watchers beside this one, in the same PID namespace.
	local p me
	me=$(readlink /proc/self/ns/net)
	for p in $(pgrep -f "connroute.*watch"); do
		[ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$me" ] && echo "$p"
	done
	true
}

# --- install
install_pkg 1
expect_ok "postinst" sh "$TOP/openwrt/postinst"
[ -L /etc/rc.d/S21connroute ] && ok "enabled (rc.d link)" || fail "not enabled"
expect_eq "firewall include registered" /usr/share/connroute/firewall.include "$(uci -q get firewall.connroute.path)"
[ ! -e /etc/uci-defaults/90-connroute ] && ok "uci-defaults ran and was deleted" || fail "uci-defaults left"
wait_for "watcher running" watcher_pid
has_table && fail "table installed while the shipped config is disabled" || ok "shipped config installs nothing"

# --- the user enables it
cat > /etc/config/connroute <<'CONF'
config globals 'globals'
	option enabled '1'

config gateway 'wan2'
	list interface 'wan2'

config rule 'from_wan2'
	option gateway 'wan2'
	list in_interface 'wan2'
CONF
expect_ok "service reload" /etc/init.d/connroute reload
has_table && ok "table installed on reload" || fail "no table after reload"
[ -s /etc/iproute2/rt_tables.d/connroute.conf ] && ok "rt_tables names written" || fail "no rt_tables file"
answered "wan2 answered after reload"
nft flush ruleset
wait_for "watcher healed nft flush ruleset" has_table
answered "wan2 answered after the heal"

# --- stop / start
expect_ok "service stop" /etc/init.d/connroute stop
sleep 0.5
expect_eq "stop leaves nothing" "" "$(owned_state stop)"
expect_ok "service start" /etc/init.d/connroute start
wait_for "start applies again" has_table
answered "wan2 answered after start"

# --- upgrade: new files, the edited config kept, the watcher restarted
old=$(watcher_pid)
install_pkg 2
expect_ok "postinst (upgrade)" env PKG_UPGRADE=1 sh "$TOP/openwrt/postinst"
restarted() { local p; p=$(watcher_pid) && [ "$p" != "$old" ]; }
wait_for "watcher restarted with the new binary" restarted
grep -q "option enabled '1'" /etc/config/connroute && ok "edited config kept" || fail "config replaced"
answered "wan2 answered after the upgrade"

# --- removal while a hotplug event and a watcher repair wait for the lock
flock "$WORK/lock" sleep 1.5 &
holder=$!
sleep 0.2
hotplug_pids=()
HOTPLUG_DIR=/etc/hotplug.d/iface CONNROUTE=/usr/sbin/connroute CONNROUTE_INIT=/etc/init.d/connroute CONNROUTE_ARGS=
for i in 1 2 3; do
	( ACTION=ifup INTERFACE=wan2 DEVICE=eth2 sh /etc/hotplug.d/iface/30-connroute ) &
	hotplug_pids+=($!)
done
nft delete table inet connroute # the watcher wants to repair: it waits for the lock too
sleep 0.3
expect_ok "prerm" sh "$TOP/openwrt/prerm"
remove_pkg_files
wait "$holder"
for p in "${hotplug_pids[@]}"; do wait "$p" || true; done
sleep 1
expect_eq "removal leaves nothing behind" "" "$(owned_state)"
[ -e /etc/rc.d/S21connroute ] && fail "rc.d link left" || ok "rc.d links gone"
answered_wrong=$(ip netns exec "$(ns c)" curl -sS --max-time 2 --interface 198.51.100.1 http://10.2.0.2:8080/ 2>&1 || true)
[ "$answered_wrong" != "hello from r" ] && ok "without connroute the strict upstream drops wan2's replies" || fail "wan2 answered without connroute"
exit "$FAILED"

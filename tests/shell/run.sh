#!/bin/sh
# Init script and hotplug script, exercised with stand-ins for
# /etc/rc.common, procd and the connroute binary.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0
check() { if [ "$2" = "$3" ]; then passes=$((passes + 1)); else echo "FAIL: $1: want [$2] got [$3]"; fails=$((fails + 1)); fi; }

cat > "$tmp/connroute" <<'SH'
#!/bin/sh
echo "$*" >> "$LOG"
SH
chmod +x "$tmp/connroute"
printf '#!/bin/sh\n[ "$1" = enabled ] && exit ${ENABLED:-0}\n' > "$tmp/init"
chmod +x "$tmp/init"
export LOG="$tmp/log" CONNROUTE="$tmp/connroute" CONNROUTE_PROG="$tmp/connroute" CONNROUTE_INIT="$tmp/init"

# init script: procd functions, with rc.common replaced by a stand-in.
run_init() {
	: > "$LOG"
	(
		# rc.common's own variable: /etc/rc.d/S21connroute at boot.
		# shellcheck disable=SC2034
		initscript=${INITSCRIPT:-/etc/init.d/connroute}
		procd_open_instance() { echo "instance $*" >> "$LOG"; }
		procd_set_param() { echo "param $*" >> "$LOG"; }
		procd_close_instance() { echo "close" >> "$LOG"; }
		procd_send_signal() { echo "signal $*" >> "$LOG"; }
		procd_add_reload_trigger() { echo "trigger $*" >> "$LOG"; }
		start() { echo "start" >> "$LOG"; }
		# shellcheck disable=SC1090
		. "$top/files/etc/init.d/connroute"
		"$1"
	)
	tr '\n' ';' < "$LOG"
}
check "start_service runs the watcher under procd, respawned" \
	"instance watch;param command $tmp/connroute --init-script /etc/init.d/connroute watch;param respawn;param file $tmp/connroute;close;" \
	"$(run_init start_service)"
check "at boot (run as /etc/rc.d/S21connroute) the watcher's command is the same" \
	"instance watch;param command $tmp/connroute --init-script /etc/init.d/connroute watch;param respawn;param file $tmp/connroute;close;" \
	"$(INITSCRIPT=/etc/rc.d/S21connroute run_init start_service)"
check "reload_service (re)starts the watcher and applies now" \
	"start;--init-script /etc/init.d/connroute apply;" "$(run_init reload_service)"
check "stop_service stops the watcher before flushing" "signal connroute watch TERM;flush;" "$(run_init stop_service)"
check "status shows status" "status;" "$(run_init status_service)"
check "reload trigger on config" "trigger connroute;" "$(run_init service_triggers)"
head -1 "$top/files/etc/init.d/connroute" | grep -q '^#!/bin/sh /etc/rc.common$' && passes=$((passes + 1)) || { echo "FAIL: shebang"; fails=$((fails + 1)); }
grep -q '^USE_PROCD=1$' "$top/files/etc/init.d/connroute" && passes=$((passes + 1)) || { echo "FAIL: USE_PROCD"; fails=$((fails + 1)); }

# hotplug script: which events reach the binary, with netifd's exact
# environments (hotplug-call: no DEVICE on ifdown, IFUPDATE_* on ifupdate).
hp() { # ACTION INTERFACE ENABLED [VAR=value...]
	: > "$LOG"
	a=$1 i=$2 e=$3
	shift 3
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LOGNAME=root USER=root HOTPLUG_TYPE=iface DEVICENAME= \
		ACTION="$a" INTERFACE="$i" "$@" ENABLED="$e" LOG="$LOG" CONNROUTE="$CONNROUTE" CONNROUTE_INIT="$CONNROUTE_INIT" \
		sh -c ". '$top/files/etc/hotplug.d/iface/30-connroute'"
	tr '\n' ';' < "$LOG"
}
want="--init-script $tmp/init hotplug;"
check "ifup reaches connroute" "$want" "$(hp ifup wan2 0 DEVICE=eth2)"
check "ifdown (no DEVICE) reaches connroute" "$want" "$(hp ifdown wan2 0)"
check "ifupdate with IFUPDATE_DATA reaches connroute" "$want" "$(hp ifupdate wan3 0 DEVICE=eth3 IFUPDATE_DATA=1)"
check "ifupdate with IFUPDATE_ROUTES reaches connroute" "$want" "$(hp ifupdate wan3 0 DEVICE=eth3 IFUPDATE_ROUTES=1 IFUPDATE_ADDRESSES=1)"
check "mwan3 connected ignored" "" "$(hp connected wan2 0)"
check "ifup-failed (no DEVICE) ignored" "" "$(hp ifup-failed wan2 0)"
check "iflink ignored" "" "$(hp iflink wan2 0)"
check "disabled service ignored" "" "$(hp ifup wan2 1 DEVICE=eth2)"

# firewall include re-applies when enabled, re-checking after the lock.
: > "$LOG"; ENABLED=0 sh "$top/files/usr/share/connroute/firewall.include"
check "firewall include applies" "--init-script $tmp/init apply;" "$(tr '\n' ';' < "$LOG")"
: > "$LOG"; ENABLED=1 sh "$top/files/usr/share/connroute/firewall.include"
check "firewall include does nothing when disabled" "" "$(tr '\n' ';' < "$LOG")"

# maintainer scripts: disable before stop (removal), neither on upgrade.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "init $*" >> "$LOG"\n' > "$tmp/bin/initd"
printf '#!/bin/sh\necho "uci $*" >> "$LOG"\n' > "$tmp/bin/uci"
chmod +x "$tmp/bin/initd" "$tmp/bin/uci"
maint() { # SCRIPT [VAR=value...]
	: > "$LOG"
	s=$1
	shift
	sed "s|/etc/init.d/connroute|$tmp/bin/initd|g; s|/etc/uci-defaults/90-connroute|$tmp/none|g" "$top/openwrt/$s" > "$tmp/$s"
	env PATH="$tmp/bin:$PATH" LOG="$LOG" "$@" sh "$tmp/$s"
	tr '\n' ';' < "$LOG"
}
check "prerm disables, then stops, then drops the include" \
	"init disable;init stop;uci -q delete firewall.connroute;uci -q commit firewall;" "$(maint prerm)"
check "prerm on upgrade only stops" "init stop;" "$(maint prerm PKG_UPGRADE=1)"
check "prerm in an image build does nothing" "" "$(maint prerm IPKG_INSTROOT=/x)"
check "postinst enables and starts" "init enable;init start;" "$(maint postinst)"
check "postinst on upgrade starts (restarts the watcher)" "init start;" "$(maint postinst PKG_UPGRADE=1)"

echo "shell: $passes passed, $fails failed"
[ "$fails" = 0 ]

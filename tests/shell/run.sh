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
		procd_add_reload_trigger() { echo "trigger $*" >> "$LOG"; }
		# shellcheck disable=SC1090
		. "$top/files/etc/init.d/connroute"
		"$1"
	)
	tr '\n' ';' < "$LOG"
}
check "start_service applies" "apply;" "$(run_init start_service)"
check "reload_service applies" "apply;" "$(run_init reload_service)"
check "stop_service flushes" "flush;" "$(run_init stop_service)"
check "status shows status" "status;" "$(run_init status_service)"
check "reload trigger on config" "trigger connroute;" "$(run_init service_triggers)"
head -1 "$top/files/etc/init.d/connroute" | grep -q '^#!/bin/sh /etc/rc.common$' && passes=$((passes + 1)) || { echo "FAIL: shebang"; fails=$((fails + 1)); }
grep -q '^USE_PROCD=1$' "$top/files/etc/init.d/connroute" && passes=$((passes + 1)) || { echo "FAIL: USE_PROCD"; fails=$((fails + 1)); }

# hotplug script: which events reach the binary.
hp() {
	: > "$LOG"
	ACTION=$1 INTERFACE=$2 ENABLED=${3:-0} sh "$top/files/etc/hotplug.d/iface/30-connroute"
	tr '\n' ';' < "$LOG"
}
check "ifup reaches connroute" "hotplug;" "$(hp ifup wan2)"
check "ifdown reaches connroute" "hotplug;" "$(hp ifdown wan2)"
check "ifupdate reaches connroute" "hotplug;" "$(hp ifupdate wan2)"
check "mwan3 connected ignored" "" "$(hp connected wan2)"
check "ifup-failed ignored" "" "$(hp ifup-failed wan2)"
check "disabled service ignored" "" "$(hp ifup wan2 1)"

# firewall include re-applies when enabled.
: > "$LOG"; ENABLED=0 sh "$top/files/usr/share/connroute/firewall.include"
check "firewall include applies" "apply;" "$(tr '\n' ';' < "$LOG")"

echo "shell: $passes passed, $fails failed"
[ "$fails" = 0 ]

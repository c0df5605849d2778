# Stand-in netifd for the e2e scenarios, following real netifd as captured
# on OpenWrt (see README "Testing"): interface state in the shape of
# `ubus call network.interface dump`, and hotplug calls with exactly the
# environment netifd's hotplug-call gives scripts. Sourced after lib.sh.

NETIFD_STATE=$WORK/netifd
export NETIFD_STATE
mkdir -p "$NETIFD_STATE"

# iface_up NAME PROTO DEVICE METRIC ADDR4/MASK NEXTHOP4 [SOURCE] [ADDR6/MASK NEXTHOP6]
# Writes the object real netifd shows for an interface that is up. A DHCP
# interface gets its lease data and the source address of its route.
iface_up() {
	local name=$1 proto=$2 dev=$3 metric=$4 a4=$5 nh4=$6 src=${7:-0.0.0.0/0} a6=${8:-} nh6=${9:-}
	local addrs4="" addrs6="" routes="" data="" dns=""
	if [ -n "$a4" ]; then
		addrs4="
		{
			\"address\": \"${a4%/*}\",
			\"mask\": ${a4#*/}
		}
	"
	fi
	[ -n "$nh4" ] && routes="
		{
			\"target\": \"0.0.0.0\",
			\"mask\": 0,
			\"nexthop\": \"$nh4\",
			\"source\": \"$src\"
		}
	"
	if [ -n "$a6" ]; then
		addrs6="
		{
			\"address\": \"${a6%/*}\",
			\"mask\": ${a6#*/}
		}
	"
		routes="
		{
			\"target\": \"::\",
			\"mask\": 0,
			\"nexthop\": \"$nh6\",
			\"source\": \"::/0\"
		}
	"
	fi
	if [ "$proto" = dhcp ]; then
		data="
		\"leasetime\": ${LEASETIME:-600}
	"
		dns="
		\"${nh4}\"
	"
	fi
	cat > "$NETIFD_STATE/$name.json" <<JSON
{
	"interface": "$name",
	"up": true,
	"pending": false,
	"available": true,
	"autostart": true,
	"dynamic": false,
	"uptime": 0,
	"l3_device": "$dev",
	"proto": "$proto",
	"device": "$dev",
	"updated": [
		"addresses",
		"routes"
	],
	"metric": $metric,
	"dns_metric": 0,
	"delegation": true,
	"ipv4-address": [$addrs4],
	"ipv6-address": [$addrs6],
	"ipv6-prefix": [],
	"ipv6-prefix-assignment": [],
	"route": [$routes],
	"dns-server": [$dns],
	"dns-search": [],
	"neighbors": [],
	"inactive": {
		"ipv4-address": [],
		"ipv6-address": [],
		"route": [],
		"dns-server": [],
		"dns-search": [],
		"neighbors": []
	},
	"data": {$data}
}
JSON
}

# iface_down NAME PROTO DEVICE: what real netifd shows after ifdown.
iface_down() {
	cat > "$NETIFD_STATE/$1.json" <<JSON
{
	"interface": "$1",
	"up": false,
	"pending": false,
	"available": true,
	"autostart": false,
	"dynamic": false,
	"proto": "$2",
	"device": "$3",
	"data": {}
}
JSON
}

# hotplug_call NS ACTION INTERFACE [DEVICE] [VAR=1...]: runs every script
# of $HOTPLUG_DIR in a subshell with netifd's environment (hotplug-call:
# PATH, LOGNAME, USER, HOTPLUG_TYPE, DEVICENAME empty; DEVICE only when
# given: real netifd omits it on ifdown), plus the CONNROUTE* overrides
# that point the scripts at the test's binary and files. Like
# hotplug-call, a failing script does not stop the others; failures are
# recorded in $WORK/hotplug-failures.
hotplug_call() {
	local n=$1 action=$2 iface=$3 dev=${4:-} s
	shift 3
	[ $# -gt 0 ] && shift
	for s in "$HOTPLUG_DIR"/*; do
		in_ns "$n" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LOGNAME=root USER=root \
			HOTPLUG_TYPE=iface DEVICENAME= ACTION="$action" INTERFACE="$iface" \
			${dev:+DEVICE="$dev"} "$@" \
			CONNROUTE="$CONNROUTE" CONNROUTE_INIT="$CONNROUTE_INIT" CONNROUTE_ARGS="$CONNROUTE_ARGS" \
			NETIFD_STATE="$NETIFD_STATE" \
			sh -c ". '$s'" || echo "hotplug $action $iface: $s exited $?" >> "$WORK/hotplug-failures"
	done
}

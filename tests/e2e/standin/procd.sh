# Stand-in for OpenWrt's /lib/functions/procd.sh plus procd itself: a
# service's instances run in the background with their pid in
# $PROCD_STATE/<service>.<instance>.pid. Like procd: registering a service
# starts instances that are not running and restarts a running one whose
# command or watched files changed; deleting a service sends SIGTERM and,
# after 5 s, SIGKILL; signals go to the instance's process. Respawn is
# recorded, not simulated.
PROCD_STATE=${PROCD_STATE:-/var/run/procd-standin}

procd_open_service() { procd_svc=$1; procd_inst=; mkdir -p "$PROCD_STATE"; : > "$PROCD_STATE/$procd_svc.triggers"; }
procd_open_instance() { procd_inst=${1:-instance1}; procd_cmd=; procd_files=; procd_respawn=; }
procd_set_param() {
	local what=$1
	shift
	case "$what" in
	command) procd_cmd="$*" ;;
	file) procd_files="$procd_files $*" ;;
	respawn) procd_respawn="${*:-3600 5 5}" ;;
	esac
}
procd_add_reload_trigger() { echo "config.change $*" >> "$PROCD_STATE/$procd_svc.triggers"; }
procd_add_interface_trigger() { echo "interface.* $*" >> "$PROCD_STATE/$procd_svc.triggers"; }
procd_running_pid() { # SERVICE INSTANCE
	local f="$PROCD_STATE/$1.$2.pid" pid
	[ -e "$f" ] || return 1
	read -r pid < "$f"
	kill -0 "$pid" 2>/dev/null && echo "$pid"
}
procd_close_instance() {
	local key pid f
	key=$(printf '%s\n' "$procd_cmd" "$procd_respawn"; for f in $procd_files; do md5sum "$f" 2>/dev/null; done)
	if pid=$(procd_running_pid "$procd_svc" "$procd_inst"); then
		[ "$key" = "$(cat "$PROCD_STATE/$procd_svc.$procd_inst.key")" ] && return 0
		procd_stop_pid "$pid"
	fi
	printf '%s\n' "$key" > "$PROCD_STATE/$procd_svc.$procd_inst.key"
	# procd starts instances with an empty environment but PATH
	# shellcheck disable=SC2086
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ${PROCD_ENV:-} setsid $procd_cmd \
		> /dev/null 2>> "$PROCD_STATE/$procd_svc.$procd_inst.log" < /dev/null &
	echo $! > "$PROCD_STATE/$procd_svc.$procd_inst.pid"
}
procd_close_service() { :; }
procd_stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
}
procd_instances() { # SERVICE [INSTANCE]
	local f
	for f in "$PROCD_STATE/$1".${2:-*}.pid; do
		[ -e "$f" ] && basename "$f" .pid | sed "s/^$1\.//"
	done
}
procd_kill() { # SERVICE [INSTANCE]: delete from procd; like `ubus call service delete`, it does not wait
	local i pid
	for i in $(procd_instances "$1" "$2"); do
		pid=$(procd_running_pid "$1" "$i") && kill -TERM "$pid" 2>/dev/null
		rm -f "$PROCD_STATE/$1.$i.pid" "$PROCD_STATE/$1.$i.key"
	done
	return 0
}
procd_send_signal() { # SERVICE [INSTANCE|'*'] [SIGNAL]
	local i pid inst=$2 sig=${3:-HUP}
	[ "$inst" = '*' ] && inst=
	for i in $(procd_instances "$1" "$inst"); do
		pid=$(procd_running_pid "$1" "$i") && kill -"$sig" "$pid"
	done
	return 0
}

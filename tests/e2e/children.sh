#!/usr/bin/env bash
# Child processes and the files connroute writes, on host H of a one-link
# topology with connroute's state installed. Every external call is bounded
# and leaves no process behind; a kill -9 of connroute takes its nft with
# it; SIGTERM to watch kills its hanging nft at once; a timeout exits 1
# (never 2) naming what timed out; the lock and names file never follow a
# planted symlink, never hang on a FIFO, and a foreign names file is neither
# rewritten nor removed.
#   Stand-ins are named after a marker unique to this run, and their long
#   waits carry it in argv[0], so `pgrep -f` finds any survivor.
. "$(dirname "$0")/lib.sh"
setup_cleanup
add_ns h
in_ns h ip link add lan type veth peer name lanp
in_ns h ip link set lan up
in_ns h ip link set lanp up
in_ns h ip addr add 192.168.1.10/24 dev lan
TOP="$HERE/../.."
CONF="$TOP/examples/seed.conf"
MARK="connroute-e2e-$PFX"
state() { system_state h; }

expect_exit() { # NAME CODE PATTERN CMD...: exit code and message.
	local name=$1 code=$2 pattern=$3 out rc=0
	shift 3
	out=$("$@" 2>&1) || rc=$?
	expect_eq "$name: exit code" "$code" "$rc"
	if grep -qE -- "$pattern" <<<"$out"; then ok "$name: says /$pattern/"; else fail "$name: message [$out] lacks /$pattern/"; fi
}

no_survivor() { # NAME: no process carries the marker (bounded wait for the kill to land)
	local i
	for i in $(seq 1 50); do
		pgrep -f "$MARK" >/dev/null || { ok "$1: no process left behind"; return 0; }
		sleep 0.1
	done
	fail "$1: left behind: $(pgrep -af "$MARK")"
}

# standin NAME BODY: a fake nft passing everything but `-f -` batches to the
# real nft; BODY handles the batch.
standin() {
	printf '#!/bin/bash\ncase "$*" in *"-f -"*) ;; *) exec nft "$@";; esac\n%s\n' "$2" > "$WORK/$MARK-$1"
	chmod +x "$WORK/$MARK-$1"
}
hang() { echo "exec -a $MARK-$1-wait sleep 600"; }
standin deaf "$(hang deaf)"                                  # never reads its stdin
standin slow "cat >/dev/null; $(hang slow)"                  # reads, never answers
standin check-slow "case \"\$*\" in *-c*) cat >/dev/null; $(hang check);; esac; exec nft \"\$@\""
standin commit-fail 'nft "$@" || exit; echo "Error: failed after the commit" >&2; exit 1'
# Holds its batch until $WORK/go exists, then commits it.
standin late "echo \$\$ > $WORK/late.pid; until [ -e $WORK/go ]; do sleep 0.1; done; exec nft \"\$@\""
printf '#!/bin/bash\nexec -a %s sleep 600\n' "$MARK-ubus-wait" > "$WORK/$MARK-ubus"
chmod +x "$WORK/$MARK-ubus"

# A batch well over the 64 KiB pipe buffer: 8000 destination addresses.
cp "$CONF" "$WORK/big.conf"
{
	printf "config rule 'many'\n\toption gateway 'router2'\n\tlist proto 'tcp'\n"
	for i in $(seq 0 7999); do printf "\tlist dest_ip '10.%d.%d.%d'\n" $((100 + i / 65536)) $((i / 256 % 256)) $((i % 256)); done
} >> "$WORK/big.conf"
sed "s/^\tlist dest_port '80'/&\n\tlist dest_port '8080'/" "$CONF" > "$WORK/moved.conf"

expect_ok "apply the seed config" cr h -c "$CONF" apply
before=$(state)
unchanged() { # NAME
	local now; now=$(state)
	if [ "$before" = "$now" ]; then ok "$1: state unchanged"; else
		fail "$1: state changed:"; diff <(echo "$before") <(echo "$now") >&2 || true; fi
}

# nft that never reads a batch larger than the pipe: bounded by the deadline.
expect_exit "nft never reads a big batch" 1 "timed out after [0-9.]+ s while loading the ruleset \([0-9]+ KiB\)" \
	cr h -c "$WORK/big.conf" --timeout 1 --nft "$WORK/$MARK-deaf" apply
no_survivor "nft never reads"
unchanged "nft never reads"
if in_ns h flock -n "$WORK/lock-h" true; then ok "lock released after a timeout"; else fail "lock still held"; fi

expect_exit "nft reads and never answers" 1 "timed out after [0-9.]+ s while loading the ruleset" \
	cr h -c "$WORK/moved.conf" --timeout 1 --nft "$WORK/$MARK-slow" apply
no_survivor "nft never answers"
unchanged "nft never answers"

# check of a valid config whose nft -c is too slow: a runtime failure.
expect_exit "check when nft -c times out" 1 "timed out after [0-9.]+ s while checking the ruleset" \
	cr h -c "$WORK/moved.conf" --timeout 1 --nft "$WORK/$MARK-check-slow" check
no_survivor "nft -c times out"

# nft commits, then fails: exit 1 with nft's message; a normal run converges.
expect_exit "nft fails after committing" 1 "failed after the commit" \
	cr h -c "$WORK/moved.conf" --nft "$WORK/$MARK-commit-fail" apply
no_survivor "nft fails after committing"
expect_ok "apply after the failed commit" cr h -c "$CONF" apply --force
unchanged "apply after the failed commit"

# ubus hangs (netifd wedged): bounded, exit 1, lock released.
sed "s/^config gateway 'router2'/config gateway 'lte'\n\tlist interface 'lte'\n\n&/" "$CONF" > "$WORK/lte.conf"
expect_exit "ubus hangs" 1 "timed out after [0-9.]+ s while reading netifd's interface state" \
	cr h -c "$WORK/lte.conf" --timeout 1 --ubus "$WORK/$MARK-ubus" apply
no_survivor "ubus hangs"
unchanged "ubus hangs"

# kill -9 of connroute while its nft waits: the nft dies with it and never
# commits its stale batch over a later apply.
cr h -c "$WORK/moved.conf" --nft "$WORK/$MARK-late" apply >/dev/null 2>&1 &
for _ in $(seq 1 100); do [ -s "$WORK/late.pid" ] && break; sleep 0.05; done
child=$(cat "$WORK/late.pid" 2>/dev/null || true)
if [ -z "$child" ]; then fail "stand-in nft never got the batch"; else
	parent=$(ps -o ppid= -p "$child" | tr -d ' ')
	expect_eq "nft's parent is connroute" connroute "$(cat "/proc/$parent/comm" 2>/dev/null)"
	kill -9 "$parent"
	no_survivor "kill -9 of connroute"
	expect_ok "apply after the kill" cr h -c "$CONF" apply --force
	touch "$WORK/go"
	sleep 1 # a surviving stand-in would commit moved.conf's table now
	unchanged "kill -9 of connroute"
fi
wait 2>/dev/null || true

# SIGTERM to watch while its nft hangs: watch ends at once (not at the 30 s
# timeout), exit 0, its nft killed (before the end of its input: nothing
# committed), the lock released. (ip netns exec execs connroute: $! is its
# pid.)
ip netns exec "$(ns h)" "$CONNROUTE" --lock "$WORK/lock-h" --ids "$WORK/ids-h" --state "$WORK/state-h" \
	--no-rt-tables --syslog "$WORK/no-syslog" -c "$WORK/moved.conf" --nft "$WORK/$MARK-slow" watch 2> "$WORK/watch.log" &
watcher=$!
for _ in $(seq 1 100); do pgrep -f "$MARK-slow-wait" >/dev/null && break; sleep 0.1; done
if ! pgrep -f "$MARK-slow-wait" >/dev/null; then fail "watch never started its nft: $(cat "$WORK/watch.log")"; else
	kill -TERM "$watcher"
	for _ in $(seq 1 30); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$watcher" 2>/dev/null; then fail "watch still running 3 s after SIGTERM"; kill -9 "$watcher"; fi
	rc=0; wait "$watcher" || rc=$?
	expect_eq "watch exits 0 on SIGTERM while nft hangs" 0 "$rc"
	no_survivor "SIGTERM to watch"
	unchanged "SIGTERM to watch"
	if in_ns h flock -n "$WORK/lock-h" true; then ok "lock released after SIGTERM to watch"; else fail "lock still held"; fi
fi

# SIGTERM to watch while another run holds the lock: watch gives up the
# wait at once (not when the lock frees or after --lock-timeout), exit 0.
flock "$WORK/lock-h" sleep 20 &
holder=$!
sleep 0.2
ip netns exec "$(ns h)" "$CONNROUTE" --lock "$WORK/lock-h" --ids "$WORK/ids-h" --state "$WORK/state-h" \
	--no-rt-tables --syslog "$WORK/no-syslog" -c "$WORK/moved.conf" watch 2> "$WORK/watch2.log" &
watcher=$!
sleep 1
kill -TERM "$watcher"
for _ in $(seq 1 30); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$watcher" 2>/dev/null; then fail "watch still waiting for the lock 3 s after SIGTERM"; kill -9 "$watcher"; fi
rc=0; wait "$watcher" || rc=$?
expect_eq "watch exits 0 on SIGTERM while it waits for the lock" 0 "$rc"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
unchanged "SIGTERM to watch waiting for the lock"

# The lock path: a dangling symlink is not followed, a FIFO is no hang.
ln -s "$WORK/lock-target" "$WORK/lock-link"
expect_exit "lock is a dangling symlink" 1 "symbolic link" \
	in_ns h "$CONNROUTE" --lock "$WORK/lock-link" --ids "$WORK/ids-h" --state "$WORK/state-h" --no-rt-tables --syslog "$WORK/no-syslog" -c "$CONF" apply
[ -e "$WORK/lock-target" ] && fail "symlink target created" || ok "symlink target not created"
mkfifo "$WORK/lock-fifo"
expect_exit "lock is a FIFO" 1 "FIFO, not a regular file" \
	in_ns h "$CONNROUTE" --lock "$WORK/lock-fifo" --ids "$WORK/ids-h" --state "$WORK/state-h" --no-rt-tables --syslog "$WORK/no-syslog" -c "$CONF" apply

# The names file, in a private iproute2 directory.
IPR="$WORK/iproute2"
NAMES="$IPR/rt_tables.d/connroute.conf"
mkdir -p "$IPR/rt_tables.d"
crt() { in_ns h "$CONNROUTE" --lock "$WORK/lock-h" --ids "$WORK/ids-h" --state "$WORK/state-h" --rt-tables "$NAMES" --syslog "$WORK/no-syslog" "$@"; }
expect_ok "apply writes the names file" crt -c "$CONF" apply
expect_eq "names file is marked as connroute's" "# Written by connroute" "$(head -c 22 "$NAMES")"
expect_eq "names file names the table" "router2" "$(awk '!/^#/ {print $2}' "$NAMES")"
expect_ok "flush removes connroute's names file" crt -c "$CONF" flush
[ -e "$NAMES" ] && fail "names file left after flush" || ok "names file removed"
expect_ok "apply again" crt -c "$CONF" apply
printf '# the admin'"'"'s own\n100\tisp\n' > "$NAMES"
cp "$NAMES" "$WORK/foreign.copy"
expect_exit "foreign names file at the path" 0 "left untouched" crt -c "$WORK/moved.conf" apply
expect_exit "status mentions the foreign names file" 0 "connroute.conf: not written by connroute; connroute leaves it untouched" \
	crt -c "$WORK/moved.conf" status
expect_ok "flush with a foreign names file" crt -c "$CONF" flush
if cmp -s "$NAMES" "$WORK/foreign.copy"; then ok "foreign names file byte-identical"; else fail "foreign names file changed"; fi
rm "$NAMES"
ln -s "$WORK/names-target" "$NAMES"
expect_ok "apply with a planted symlink" crt -c "$CONF" apply
[ -e "$WORK/names-target" ] && fail "names symlink followed" || ok "names symlink not followed"
rm "$NAMES"
before=$(state)
printf '# hand-made\n200\trouter2\n' > "$IPR/rt_tables"
expect_exit "gateway name taken by another table" 2 "iproute2/rt_tables:2: table name 'router2' already means table 200" \
	crt -c "$WORK/moved.conf" apply
unchanged "gateway name taken"
expect_exit "check sees the collision too" 2 "rt_tables:2: table name 'router2'" crt -c "$CONF" check
finish

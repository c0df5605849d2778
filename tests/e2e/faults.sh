#!/usr/bin/env bash
# Bad input and faults, on host H of the seed topology with connroute's
# state installed and working. Every case must exit non-zero with a message
# saying what happened, leave the nft ruleset, ip rules and routes
# byte-identical, and the connection through router #2 still answered:
#   all of tests/bad/*.conf (exit 2), nft missing, nft failing in the
#   batch, nft killed, and the lock held by a stuck run. The kernel refusing
#   a gateway's next hop and its interface's device vanishing degrade
#   instead: that gateway inactive, exit 0, the seed state back afterwards.
. "$(dirname "$0")/lib.sh"
setup_cleanup
build_seed
TOP="$HERE/../.."
CONF="$TOP/examples/seed.conf"
# The state, connroute's objects in name order (see sorted_blocks).
state() { system_state h | sorted_blocks; }
works() { [ "$(fetch c http://10.2.0.1/)" = "hello from h" ]; }

expect_ok "apply the seed config" cr h -c "$CONF" apply
expect_ok "reply through router #2" works
before=$(state)

# A variant that needs a new route, new rules (another table) and a new
# ruleset (another port), so a failure after the routing step has something
# to roll back.
sed -e 's/^config gateway .router2./&\n\toption table '"'"'300'"'"'/' \
	-e "s/^\tlist dest_port '80'/&\n\tlist dest_port '8080'/" "$CONF" > "$WORK/moved.conf"
[ "$(grep -c "table '300'\|'8080'" "$WORK/moved.conf")" = 2 ] || fail "moved.conf not written"

unchanged() { # NAME: state identical and traffic still answered via router #2
	local now; now=$(state)
	if [ "$before" = "$now" ]; then ok "$1: state unchanged"; else
		fail "$1: state changed:"; diff <(echo "$before") <(echo "$now") >&2 || true; fi
	if works; then ok "$1: still answered via router #2"; else fail "$1: traffic broken"; fi
}

# expect_exit NAME CODE PATTERN CMD...: exit code and message.
expect_exit() {
	local name=$1 code=$2 pattern=$3 out rc=0
	shift 3
	out=$("$@" 2>&1) || rc=$?
	expect_eq "$name: exit code" "$code" "$rc"
	if grep -qE -- "$pattern" <<<"$out"; then ok "$name: says /$pattern/"; else fail "$name: message [$out] lacks /$pattern/"; fi
}

n=0
for f in "$TOP"/tests/bad/*.conf; do
	want=$(sed -n '1s/^# expect: //p' "$f")
	rc=0
	out=$(cr h -c "$f" apply 2>&1) || rc=$?
	if [ "$rc" != 2 ] || ! grep -qF -- "${want#*: }" <<<"$out"; then
		fail "$(basename "$f"): exit $rc, message [$out], want [$want]"
	fi
	n=$((n + 1))
done
ok "$n bad configs refused with exit 2 and their message"
unchanged "bad configs"

expect_exit "nft missing" 1 "cannot run.*/nonexistent/nft" cr h -c "$WORK/moved.conf" --nft /nonexistent/nft apply
unchanged "nft missing"

# nft that lists and checks like the real one but fails (or dies) on the batch.
for mode in fail kill; do
	cat > "$WORK/nft-$mode" <<SH
#!/bin/sh
case "\$*" in *"-f -"*) case "\$*" in *-c*) exec nft "\$@";; esac
	cat >/dev/null
	[ $mode = kill ] && kill -9 \$\$
	echo "Error: injected failure" >&2; exit 1;; esac
exec nft "\$@"
SH
	chmod +x "$WORK/nft-$mode"
done
expect_exit "nft failing in the batch" 1 "previous state kept.*injected failure" cr h -c "$WORK/moved.conf" --nft "$WORK/nft-fail" apply
unchanged "nft failing in the batch"
expect_exit "nft killed in the batch" 1 "previous state kept.*signal" cr h -c "$WORK/moved.conf" --nft "$WORK/nft-kill" apply
unchanged "nft killed in the batch"

# nft commits the batch, then reports a failure (a timeout after commit):
# connroute asks the kernel, finds the new table live and keeps routes and
# rules matching it instead of rolling them back under it.
cat > "$WORK/nft-late" <<'SH'
#!/bin/sh
case "$*" in *"-f -"*) case "$*" in *-c*) exec nft "$@";; esac
	nft "$@" || exit $?; echo "Error: injected failure after commit" >&2; exit 1;; esac
exec nft "$@"
SH
chmod +x "$WORK/nft-late"
expect_exit "nft fails after commit" 1 "new table is live.*after commit" cr h -c "$WORK/moved.conf" --nft "$WORK/nft-late" apply
rc=0; cr h -c "$WORK/moved.conf" status >/dev/null 2>&1 || rc=$?
expect_eq "nft fails after commit: routes, rules and table consistent (status 0)" 0 "$rc"
expect_ok "nft fails after commit: still answered" works
# The same with a new gateway: its allocation is in use, so it is on record
# although the run failed, and an unrelated edit (a gateway added above it)
# does not hand its mark and table to another gateway.
expect_ok "back to the seed config" cr h -c "$CONF" apply
gw() { printf "config gateway '%s'\n\toption gateway '192.168.1.2'\n" "$@"; }
gw late | cat "$CONF" - > "$WORK/late.conf"
expect_exit "nft fails after commit, new gateway" 1 "new table is live.*after commit" cr h -c "$WORK/late.conf" --nft "$WORK/nft-late" apply
late=$(grep '^late ' "$WORK/ids-h")
case "$late" in "late mark "*) ok "nft fails after commit: the new allocation is recorded ($late)" ;; *) fail "no record of late: $(cat "$WORK/ids-h")" ;; esac
gw other late | cat "$CONF" - > "$WORK/other.conf"
expect_ok "an unrelated edit after it" cr h -c "$WORK/other.conf" apply
expect_eq "the live gateway kept its mark and table" "$late" "$(grep '^late ' "$WORK/ids-h")"
# A hung `nft -c`: check --diff ends with the timeout after one check, as
# apply does (no second `nft -c` for the whole table, no fresh deadline).
cat > "$WORK/nft-hang-check" <<SH
#!/bin/sh
case "\$*" in *-c*) echo check >> "$WORK/nft-hang-check.log"; exec sleep 30;; esac
exec nft "\$@"
SH
chmod +x "$WORK/nft-hang-check"
: > "$WORK/nft-hang-check.log"
expect_exit "nft -c hangs" 1 "timed out" cr h -c "$WORK/moved.conf" --nft "$WORK/nft-hang-check" --timeout 1 check --diff
expect_eq "nft -c hangs: one check, not a second with a fresh deadline" 1 "$(wc -l < "$WORK/nft-hang-check.log")"
# Three gateways grew the rule block; it shrinks only at flush.
expect_ok "flush" cr h -c "$CONF" flush
expect_ok "back to the seed config" cr h -c "$CONF" apply
unchanged "back to the seed config"

# status cannot read the state: exit 1 and says so, never "missing".
expect_exit "status with nft missing" 1 "cannot run.*/nonexistent/nft" cr h -c "$CONF" --nft /nonexistent/nft status

# The kernel refuses a route whose next hop is not on any link: that
# gateway is inactive (warned, status says why), the rest applied, exit 0.
sed "s/option gateway '192.168.1.2'/option gateway '198.51.100.1'/" "$CONF" > "$WORK/offlink.conf"
expect_exit "kernel refuses the route" 0 "gateway router2 inactive: next hop not reachable.*(unreachable|Network)" cr h -c "$WORK/offlink.conf" apply
expect_exit "kernel refuses the route: status" 4 "next hop not reachable: 198.51.100.1" cr h -c "$WORK/offlink.conf" status
expect_ok "kernel refuses the route: back to the seed config" cr h -c "$CONF" apply
unchanged "kernel refuses the route"
# A next hop on a link that the kernel still refuses (EINVAL): an IPv6
# link-local one through the loopback device. apply, status and check
# --diff agree that the gateway is inactive.
printf "config gateway 'loop'\n\toption gateway6 'fe80::1'\n\toption device 'lo'\n" | cat "$CONF" - > "$WORK/loop.conf"
expect_exit "kernel refuses an on-link next hop" 0 "gateway loop inactive: next hop not reachable" cr h -c "$WORK/loop.conf" apply
expect_exit "kernel refuses an on-link next hop: status" 4 "next hop not reachable: fe80::1" cr h -c "$WORK/loop.conf" status
out=$(cr h -c "$WORK/loop.conf" check --diff 2>&1)
case "$out" in *"fe80::1 dev lo"*) fail "check --diff promises the refused route: $out" ;; *"apply would change nothing"*) ok "check --diff promises no repair" ;; *) fail "check --diff: $out" ;; esac
expect_ok "kernel refuses an on-link next hop: back to the seed config" cr h -c "$CONF" apply
unchanged "kernel refuses an on-link next hop"

# netifd says lan2 is up on tmp0; the device is deleted right after (a USB
# modem unplugged between resolve and apply).
in_ns h ip link add tmp0 type veth peer name tmp0p
in_ns h ip link set tmp0 up; in_ns h ip link set tmp0p up
in_ns h ip addr add 192.168.7.1/24 dev tmp0
before=$(state)
cat > "$WORK/ubus" <<SH
#!/bin/sh
echo '{"interface": [{"interface": "lan2", "up": true, "l3_device": "tmp0", "device": "tmp0",
  "route": [{"target": "0.0.0.0", "mask": 0, "nexthop": "192.168.7.254", "source": "192.168.7.1/32"}]}]}'
ip link del tmp0
SH
chmod +x "$WORK/ubus"
cat "$CONF" > "$WORK/vanish.conf"
printf "config gateway 'lan2'\n\tlist interface 'lan2'\n" >> "$WORK/vanish.conf"
expect_exit "interface vanishes before apply" 0 "gateway lan2 inactive: device tmp0 does not exist" cr h -c "$WORK/vanish.conf" --ubus "$WORK/ubus" apply
in_ns h ip link show tmp0 >/dev/null 2>&1 && fail "stand-in ubus did not delete tmp0" || ok "tmp0 is gone"
before=$(sed '/tmp0/d;/192\.168\.7\./d' <<<"$before")
expect_ok "interface vanishes before apply: back to the seed config" cr h -c "$CONF" apply
unchanged "interface vanishes before apply"

# A stuck run holds the lock: time out, say so, change nothing.
in_ns h flock "$WORK/lock-h" sleep 30 &
holder=$!
for _ in $(seq 1 50); do in_ns h flock -n "$WORK/lock-h" true 2>/dev/null || break; sleep 0.1; done
expect_exit "lock held by a stuck run" 1 "holds .*lock-h.*stuck" cr h -c "$WORK/moved.conf" --lock-timeout 1 apply
kill "$holder" 2>/dev/null || true
unchanged "lock held by a stuck run"

expect_ok "apply after all faults" cr h -c "$WORK/moved.conf" apply
expect_ok "reply through router #2 with the new table" works
finish

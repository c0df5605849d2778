#!/usr/bin/env bash
# Seed scenario (host mode): client C; routers R1 and R2 each DNAT tcp/80
# from their WAN link to host H; R1, R2, H on one LAN bridge; H's default
# gateway is R1. A connection through R2 dies until H runs connroute.
. "$(dirname "$0")/lib.sh"
setup_cleanup

build_seed

expect_ok "via router #1 works before apply" fetch c http://10.1.0.1/
expect_fail "via router #2 times out before apply" fetch c http://10.2.0.1/

before=$(routing_state h)
expect_ok "apply" cr h -c "$HERE/../../examples/seed.conf" apply
expect_eq "via router #2 works after apply" "hello from h" "$(fetch c http://10.2.0.1/ || true)"
expect_eq "via router #1 still works" "hello from h" "$(fetch c http://10.1.0.1/ || true)"
status=$(cr h -c "$HERE/../../examples/seed.conf" status)
echo "$status"
case "$status" in *"drift: none"*) ok "status shows no drift" ;; *) fail "status drift" ;; esac
pk=$(cr h -c "$HERE/../../examples/seed.conf" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rules"][0]["packets"])')
[ "$pk" -ge 1 ] && ok "rule counter counted $pk pinned connections" || fail "rule counter is $pk"

# A LAN host's own connection to H is not pinned (src_ip !192.168.1.0/24).
in_ns r2 curl -sS --max-time 3 http://192.168.1.10/ >/dev/null && ok "LAN traffic from router #2 unaffected" || fail "LAN traffic"

# What an apply killed while writing the allocations leaves behind: flush
# removes it and keeps the allocations themselves (and anything else).
[ -s "$WORK/ids-h" ] || fail "no allocations recorded"
ids_before=$(cat "$WORK/ids-h")
dead=$(( $(cat /proc/sys/kernel/pid_max) - 1 ))
while kill -0 "$dead" 2>/dev/null; do dead=$((dead - 1)); done
echo partial > "$WORK/.ids-h.$dead.tmp"
for f in .ids-h.notes .ids-h.1.tmp.x "..ids-h.$dead.tmp" ".ids-h.0$dead.tmp"; do echo mine > "$WORK/$f"; done
expect_ok "flush" cr h -c "$HERE/../../examples/seed.conf" flush
[ ! -e "$WORK/.ids-h.$dead.tmp" ] && ok "flush removed a killed write's temporary" || fail "temporary left"
expect_eq "allocations kept by flush" "$ids_before" "$(cat "$WORK/ids-h")"
for f in .ids-h.notes .ids-h.1.tmp.x "..ids-h.$dead.tmp" ".ids-h.0$dead.tmp"; do
	[ -e "$WORK/$f" ] || fail "flush removed $f"
done
ok "look-alike files left alone"
expect_fail "via router #2 times out after flush" fetch c http://10.2.0.1/
expect_eq "rules, routes and tables exactly as before" "$before" "$(routing_state h)"
expect_eq "no connroute table left" "" "$(in_ns h nft list tables | grep connroute || true)"
finish

#!/usr/bin/env bash
# Coexistence, idempotency and rollback in the seed topology, on host H:
# foreign mark bits survive pinning, foreign rules/routes/tables survive
# apply and flush, a foreign table replaced atomically (fw4 reload) does not
# disturb connroute, two applies leave one copy of everything, and a failed
# nft step leaves the previous state in place.
. "$(dirname "$0")/lib.sh"
setup_cleanup
build_seed
CONF="$HERE/../../examples/seed.conf"

# Foreign state, like mwan3 and fw4 would leave it.
in_ns h ip rule add priority 1500 fwmark 0x100/0x3f00 lookup 1
in_ns h ip rule add priority 5000 fwmark 0x200/0x3f00 lookup 2
in_ns h ip route add default via 192.168.1.1 table 1
in_ns h ip route add 203.0.113.0/24 via 192.168.1.1 table 5000
in_ns h ip -6 rule add priority 2000 fwmark 0x300/0x3f00 lookup 3
# Tailscale-style, above connroute's block (rule_priority 5000 + 210).
in_ns h ip rule add priority 5210 lookup 52
in_ns h ip route add 100.100.0.0/16 dev lan table 52
foreign() {
	cat <<'NFT'
table inet foreign {
	chain pre { type filter hook prerouting priority raw; meta mark set meta mark | 0x00000010; }
	chain pre_ct { type filter hook prerouting priority mangle - 10; ct mark set ct mark | 0x00000020; }
	chain out { type route hook output priority raw; meta mark set meta mark | 0x00000010; }
	chain check_in { type filter hook prerouting priority dstnat;
		meta mark & 0xff000010 == 0x01000010 counter name "keep_meta"
		ct mark & 0xff000020 == 0x01000020 counter name "keep_ct"
	}
	chain check_out { type filter hook postrouting priority srcnat;
		meta mark & 0xff000010 == 0x01000010 counter name "keep_out"
	}
	counter keep_meta { }
	counter keep_ct { }
	counter keep_out { }
}
NFT
}
in_ns h nft -f <(foreign)
before=$(routing_state h)

expect_ok "apply" cr h -c "$CONF" apply
count_ours() { routing_state h | grep -c "proto 197" || true; }
n1=$(count_ours)
h1=$(in_ns h nft -a list chain inet connroute prerouting | grep -o 'handle [0-9]*' | tr '\n' ' ')
expect_ok "second apply" cr h -c "$CONF" apply
expect_eq "second apply adds nothing" "$n1" "$(count_ours)"
expect_eq "identical table not reloaded (same rule handles)" "$h1" "$(in_ns h nft -a list chain inet connroute prerouting | grep -o 'handle [0-9]*' | tr '\n' ' ')"
expect_eq "one route and the 5-rule block (entry, main, leaf, exit, end)" "6" "$n1"
# The block (5000 … 5035 for one gateway) does not hide the rule at 5210
# from unmarked traffic; the foreign rule at 5000, inside it, is warned about.
expect_eq "a foreign rule at P+210 still answers after apply" "table 52" \
	"$(in_ns h ip route get 100.100.1.1 | grep -o 'table 52')"
for c in check status apply; do
	case "$(cr h -c "$CONF" $c 2>&1)" in
	*"priority 5000 is inside connroute's range 5000-5035"*"rule_priority"*) ok "$c warns about the foreign rule at 5000" ;;
	*) fail "$c: no warning about the foreign rule at 5000" ;;
	esac
done

expect_eq "pinned connection works" "hello from h" "$(fetch c http://10.2.0.1/ || true)"
conns=$(cr h -c "$CONF" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["gateways"][0]["connections"])')
[ "$conns" -ge 1 ] 2>/dev/null && ok "status counts the pinned connection ($conns)" || fail "status connections: $conns"
# The gateway's counter sees every packet of its pinned connections (both
# directions), not only the first one that the rule's counter sees.
counts=$(cr h -c "$CONF" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["gateways"][0]["packets"], s["gateways"][0]["bytes"], sum(r["packets"] for r in s["rules"]))')
read -r gw_packets gw_bytes rule_packets <<<"$counts"
[ "$gw_packets" -gt "$rule_packets" ] && [ "$gw_bytes" -gt 0 ] 2>/dev/null && ok "gateway counter counts whole connections ($counts)" || fail "gateway counters: $counts"
ctr() { in_ns h nft -j list counter inet foreign "$1" | python3 -c 'import json,sys; print([o for o in json.load(sys.stdin)["nftables"] if "counter" in o][0]["counter"]["packets"])'; }
[ "$(ctr keep_meta)" -ge 1 ] && ok "foreign meta mark bits kept on pinned traffic" || fail "keep_meta is $(ctr keep_meta)"
[ "$(ctr keep_ct)" -ge 1 ] && ok "foreign ct mark bits kept on pinned traffic" || fail "keep_ct is $(ctr keep_ct)"
[ "$(ctr keep_out)" -ge 1 ] && ok "foreign bits kept on pinned replies" || fail "keep_out is $(ctr keep_out)"

# fw4-style reload of the foreign table: replaced atomically.
in_ns h nft -f <(echo "add table inet foreign"; echo "delete table inet foreign"; foreign)
expect_eq "connroute survives a foreign table reload" "hello from h" "$(fetch c http://10.2.0.1/ || true)"

# Rollback: a changed config whose nft step fails leaves the old state.
sed -e "s/'80'/'8080'/" -e '$a\
\
config gateway router3\
\toption gateway 192.168.1.3' "$CONF" > "$WORK/changed.conf"
cat > "$WORK/nft-fails" <<'SH'
#!/bin/sh
for a in "$@"; do [ "$a" = "-f" ] && { echo "Error: simulated failure" >&2; exit 1; }; done
exec nft "$@"
SH
chmod +x "$WORK/nft-fails"
state1=$(routing_state h; in_ns h nft -s list table inet connroute)
out=$(cr h -c "$WORK/changed.conf" --nft "$WORK/nft-fails" apply 2>&1) && fail "apply with failing nft exited 0" || {
	rc=$?
	expect_eq "failed apply exits 1" 1 "$rc"
	case "$out" in *"simulated failure"*) ok "nft's error text is shown" ;; *) fail "error text missing: $out" ;; esac
}
expect_eq "failed apply leaves rules, routes and ruleset" "$state1" "$(routing_state h; in_ns h nft -s list table inet connroute)"
expect_eq "still pinned after the failed apply" "hello from h" "$(fetch c http://10.2.0.1/ || true)"

# Foreign default routes in a table a gateway wants (mwan3's table 1, a
# hand-made table 200, IPv4 and IPv6): refused with exit 2 naming the table
# and the route, before any change.
in_ns h ip -6 route add default via fe80::1 dev lan table 200
for t in "1 option gateway '192.168.1.2'" "200 option gateway6 'fe80::2'"; do
	tab=${t%% *}; opt=${t#* }
	printf "config gateway 'wan9'\n\t%s\n\toption device 'lan'\n\toption table '%s'\n" "$opt" "$tab" > "$WORK/foreign$tab.conf"
	cat "$CONF" "$WORK/foreign$tab.conf" > "$WORK/foreign$tab-full.conf"
	pre=$(system_state h)
	rc=0; out=$(cr h -c "$WORK/foreign$tab-full.conf" apply 2>&1) || rc=$?
	expect_eq "foreign default route in table $tab: exit 2" 2 "$rc"
	case "$out" in *"table $tab "*"default via "*) ok "message names table $tab and the route" ;; *) fail "message: $out" ;; esac
	at="$WORK/foreign$tab-full.conf:$(($(wc -l < "$CONF") + 4)): gateway 'wan9': option 'table': table $tab "
	case "$out" in *"$at"*) ok "message names file, line, gateway and option" ;; *) fail "message lacks [$at]: $out" ;; esac
	expect_eq "foreign default route in table $tab: nothing changed" "$pre" "$(system_state h)"
	rc=0; cr h -c "$WORK/foreign$tab-full.conf" check --diff >/dev/null 2>&1 || rc=$?
	expect_eq "check --diff refuses it too" 2 "$rc"
	rc=0; out=$(cr h -c "$WORK/foreign$tab-full.conf" check 2>&1) || rc=$?
	expect_eq "check refuses it too" 2 "$rc"
	case "$out" in *"$at"*) ok "check names file, line, gateway and option" ;; *) fail "check: $out" ;; esac
done
in_ns h ip -6 route del default via fe80::1 dev lan table 200

# Drift: a flushed chain plus a foreign rule in connroute's table is seen
# (status 3) and repaired by apply; stray proto-197 entries are removed.
table_of() { in_ns h nft -s list table inet connroute; }
want_table=$(table_of)
rc=0; cr h -c "$CONF" status >/dev/null 2>&1 || rc=$?
expect_eq "status current: exit 0" 0 "$rc"
in_ns h nft flush chain inet connroute classify
in_ns h nft add rule inet connroute classify drop
in_ns h ip rule add priority 4000 fwmark 0x7000000/0xff000000 lookup 7000 proto 197
in_ns h ip route add default via 192.168.1.1 table 7000 proto 197
rc=0; out=$(cr h -c "$CONF" status 2>&1) || rc=$?
expect_eq "drift: status exits 3" 3 "$rc"
case "$out" in *"changed outside connroute"*"unexpected route"*"unexpected rule"*) ok "status names the drift" ;; *) fail "status: $out" ;; esac
diff_out=$(cr h -c "$CONF" check --diff 2>/dev/null)
case "$diff_out" in *"~ table inet connroute"*"- ip rule priority 4000"*"- ip route default via 192.168.1.1 dev lan table 7000"*) ok "check --diff lists the repair" ;; *) fail "check --diff: $diff_out" ;; esac
expect_ok "apply repairs drift" cr h -c "$CONF" apply
expect_eq "table repaired" "$want_table" "$(table_of)"
expect_eq "strays removed, foreign state intact" "$(echo "$before" | sort)" "$(routing_state h | grep -v 'proto 197' | sort)"
rc=0; cr h -c "$CONF" status >/dev/null 2>&1 || rc=$?
expect_eq "status after repair: exit 0" 0 "$rc"

# The unchanged path runs no nft process; check --diff says so.
cat > "$WORK/nft-log" <<SH
#!/bin/sh
echo "\$*" >> "$WORK/nft-calls"
exec nft "\$@"
SH
chmod +x "$WORK/nft-log"
expect_ok "unchanged apply" cr h -c "$CONF" --nft "$WORK/nft-log" apply
expect_eq "unchanged apply runs no nft" "" "$(cat "$WORK/nft-calls" 2>/dev/null)"
expect_eq "check --diff: nothing to do" "$CONF: config ok; nft accepts the ruleset
apply would change nothing" "$(cr h -c "$CONF" check --diff 2>/dev/null)"

# A static gateway whose device is missing is inactive; the others apply.
printf "config gateway 'lte'\n\toption device 'wwan0'\n\toption gateway '10.64.0.1'\n" | cat "$CONF" - > "$WORK/lte.conf"
pre=$(system_state h)
rc=0; out=$(cr h -c "$WORK/lte.conf" apply 2>&1) || rc=$?
expect_eq "apply with a missing device exits 0" 0 "$rc"
expect_eq "the inactive gateway is logged once" 1 "$(printf '%s\n' "$out" | grep -c 'gateway lte inactive')"
expect_eq "healthy gateway unchanged" "$pre" "$(system_state h)"
rc=0; out=$(cr h -c "$WORK/lte.conf" status 2>&1) || rc=$?
expect_eq "status with an inactive gateway: exit 4" 4 "$rc"
case "$out" in *"lte"*"inactive"*"device wwan0 does not exist"*) ok "status says why" ;; *) fail "status: $out" ;; esac

# Bad config: exit 2, nothing changed.
printf "config gateway g\n\toption gateway 300.1.1.1\n" > "$WORK/bad.conf"
rc=0; cr h -c "$WORK/bad.conf" apply 2>/dev/null || rc=$?
expect_eq "bad config exits 2" 2 "$rc"
state2=$(routing_state h; in_ns h nft -s list table inet connroute)
expect_eq "bad config changes nothing" "$state1" "$state2"
[ "$state1" = "$state2" ] || diff <(echo "$state1") <(echo "$state2") >&2 || true

# enabled '0' removes everything, like flush.
sed "s/option enabled '1'/option enabled '0'/" "$CONF" > "$WORK/off.conf"
expect_ok "apply with enabled 0" cr h -c "$WORK/off.conf" apply
expect_eq "enabled 0 removes connroute's state only" "$before" "$(routing_state h)"
expect_ok "apply again" cr h -c "$CONF" apply
expect_ok "flush" cr h -c "$CONF" flush
expect_eq "foreign rules, routes and tables survive flush" "$before" "$(routing_state h)"
in_ns h nft list table inet foreign >/dev/null && ok "foreign table survives flush" || fail "foreign table gone"
# Hostile-tester regressions on a bare namespace O (one veth, v4 and v6).
add_ns o
in_ns o ip link add d0 type veth peer name d0p
in_ns o ip link add d1 type veth peer name d1p
for d in d0 d0p d1 d1p; do in_ns o ip link set "$d" up; done
in_ns o ip addr add 192.0.2.1/24 dev d0
in_ns o ip addr add 2001:db8::1/64 dev d0 nodad
co() { cr o -c "$WORK/o.conf" "$@"; }
# 1. A foreign IPv6 next hop appended to connroute's default route merges
#    into it (one multipath route, protocol 197): it is another owner's.
printf "config gateway 'a'\n\toption gateway6 '2001:db8::2'\n" > "$WORK/o.conf"
expect_ok "o: apply v6 gateway" co apply
in_ns o ip -6 route append default via 2001:db8::3 dev d0 table 5000 proto static
mp=$(in_ns o ip -6 -d route show table 5000)
rc=0; out=$(co status 2>&1) || rc=$?
expect_eq "o: status with a foreign next hop appended: drift" 3 "$rc"
case "$out" in *"holds another owner's default route"*"nexthop via 2001:db8::3"*) ok "o: status names the foreign next hop" ;; *) fail "o: status: $out" ;; esac
rc=0; co apply >/dev/null 2>&1 || rc=$?
expect_eq "o: apply refuses (exit 2)" 2 "$rc"
expect_eq "o: the multipath route is byte-identical" "$mp" "$(in_ns o ip -6 -d route show table 5000)"
in_ns o ip -6 route del default via 2001:db8::3 dev d0 table 5000 proto static
expect_ok "o: flush" co flush
# 2. Unreachable next hop (device without address) and a netifd l3_device
#    that does not exist: only that gateway is inactive, exit 0.
printf "config gateway 'lte'\n\toption device 'd1'\n\toption gateway '10.64.0.1'\nconfig gateway 'ok'\n\toption gateway '192.0.2.2'\nconfig gateway 'w'\n\tlist interface 'wan'\n" > "$WORK/o.conf"
cat > "$WORK/ubus-o" <<'SH'
#!/bin/sh
echo '{"interface":[{"interface":"wan","up":true,"l3_device":"wwan0","device":"wwan0","route":[{"target":"0.0.0.0","mask":0,"nexthop":"10.0.0.1"}]}]}'
SH
chmod +x "$WORK/ubus-o"
expect_ok "o: apply with an unreachable next hop and a missing l3_device exits 0" co --ubus "$WORK/ubus-o" apply
expect_eq "o: only the healthy gateway's route" "default via 192.0.2.2 dev d0 proto 197" "$(in_ns o ip route show table all | grep 'proto 197' | sed 's/ table [0-9]*//;s/ *$//')"
rc=0; out=$(co --ubus "$WORK/ubus-o" status 2>&1) || rc=$?
expect_eq "o: status: inactive, not drift" 4 "$rc"
case "$out" in *"next hop not reachable: 10.64.0.1"*"device wwan0 does not exist"*) ok "o: status says why" ;; *) fail "o: status: $out" ;; esac
# 2b. The refused next hop makes apply plan again, from the file read
#     again: changed or removed since the first plan (here by the netifd
#     stand-in, called in between), that run fails with exit 1 (a race,
#     not bad input) and the system as it was; the next apply reads it anew.
expect_ok "o: flush" co --ubus "$WORK/ubus-o" flush
pre=$(system_state o)
cp "$WORK/o.conf" "$WORK/o.conf.keep"
for how in "echo '# edited' >> $WORK/o.conf" "rm $WORK/o.conf"; do
	rm -f "$WORK/mutated"
	cat > "$WORK/ubus-m" <<SH
#!/bin/sh
[ -e "$WORK/mutated" ] || { : > "$WORK/mutated"; $how; }
exec "$WORK/ubus-o" "\$@"
SH
	chmod +x "$WORK/ubus-m"
	rc=0; out=$(co --ubus "$WORK/ubus-m" apply 2>&1) || rc=$?
	expect_eq "o: config changed before the re-plan (${how%% *}): exit 1 ($(printf '%s' "$out" | tail -1))" 1 "$rc"
	expect_eq "o: ... and the system as it was" "$pre" "$(system_state o)"
	cp "$WORK/o.conf.keep" "$WORK/o.conf"
done
expect_ok "o: apply again" co --ubus "$WORK/ubus-o" apply
# 3. A non-default route tagged proto 197 is connroute's stray.
in_ns o ip route add 10.1.0.0/16 via 192.0.2.5 table 5001 proto 197
in_ns o ip route add 10.2.0.0/16 via 192.0.2.5 table 5001 proto static
rc=0; co --ubus "$WORK/ubus-o" status >/dev/null 2>&1 || rc=$?
expect_eq "o: stray proto-197 route is drift" 3 "$rc"
expect_ok "o: apply removes the stray" co --ubus "$WORK/ubus-o" apply
expect_eq "o: stray gone, foreign kept" "10.2.0.0/16 via 192.0.2.5 dev d0 proto static" "$(in_ns o ip route show table 5001 | grep -v default | sed 's/ *$//')"
in_ns o ip route add 10.1.0.0/16 via 192.0.2.5 table 5001 proto 197
expect_ok "o: flush" co --ubus "$WORK/ubus-o" flush
expect_eq "o: flush removes the stray, keeps the foreign route" "10.2.0.0/16 via 192.0.2.5 dev d0 table 5001 proto static" "$(in_ns o ip route show table all | grep 10\\. | sed 's/ *$//')"
# 4. status with netifd unreadable is a read failure.
rc=0; out=$(co --ubus /bin/false status 2>&1) || rc=$?
expect_eq "o: status without netifd: exit 1" 1 "$rc"
finish

#!/usr/bin/env bash
# Incremental loads with real nft and kernel, on host H of the seed
# topology: config changes (a rule added, a rule removed, a gateway added,
# then back) each load only the difference, in one transaction `nft -c`
# accepts first, without `delete table`; the live table then equals what
# a fresh load of the same config gives in another namespace (handles and
# counter values left out; fingerprint comments included, except after an
# add-only update: it deletes nothing, so it keeps the older comments),
# and the connection through router #2 keeps working. A rule added is an
# add-only batch; `status` with the older config then reports drift.
# No batch holds `replace` (nft 1.0.6 aborts on one whose rule holds an
# anonymous interval set): prefix runs merged into a verdict map are edited
# incrementally too. `check --diff` checks exactly the batch apply loads.
# A table changed by hand, or made dormant, is replaced whole.
. "$(dirname "$0")/lib.sh"
setup_cleanup
build_seed

# A reference namespace F with the same LAN address, for fresh loads.
add_ns f
in_ns f ip link add lan type veth peer name lanp
in_ns f ip addr add 192.168.1.10/24 dev lan
in_ns f ip link set lan up
in_ns f ip link set lanp up

# nft as connroute runs it, keeping each batch it loads, and whether
# `nft -c` accepted the batch just before (against the same live table).
LOG="$WORK/batches"
mkdir -p "$LOG"
cat > "$WORK/nft" <<EOF
#!/bin/sh
if [ "\$*" = "-c -j -f -" ]; then
	cat > $LOG/check.last
	exec nft -c -j -f - < $LOG/check.last
fi
if [ "\$*" = "-j -f -" ]; then
	f=$LOG/\$(printf %03d \$(ls $LOG | grep -c 'json\$')).json
	cat > "\$f"
	nft -c -j -f - < "\$f" > "\$f.check" 2>&1 && echo accepted >> "\$f.check"
	exec nft -j -f - < "\$f"
fi
exec nft "\$@"
EOF
chmod +x "$WORK/nft"

# conf NAME RULES...: the seed's globals and router2, then rules by shape.
conf() {
	local name=$1 r m; shift
	{
		printf "config globals 'globals'\n\toption enabled '1'\n\toption mark_mask '0xff000000'\n"
		printf "config gateway 'router2'\n\toption gateway '192.168.1.2'\n"
		for r in "$@"; do
			case $r in
			http) m="list src_mac '52:54:00:c2:a5:43'\n\tlist proto 'tcp'\n\tlist dest_port '80'" ;;
			b) m="list src_ip '10.99.0.0/16'" ;;
			c) m="list dest_ip '192.0.2.1'" ;;
			n) m="list proto 'udp'\n\tlist dest_port '5353'" ;;
			p1 | p2 | p3) m="list dest_ip '10.7${r#p}.0.0/24'" ;;
			pl) m="list dest_ip '10.81.0.0/24'\n\tlist dest_ip '10.82.0.0/24'" ;;
			pl2) r=pl m="list dest_ip '10.81.0.0/24'\n\tlist dest_ip '10.83.0.0/24'" ;;
			gw3)
				printf "config gateway 'router3'\n\toption gateway '192.168.1.3'\n"
				r=via3 m="list proto 'udp'\n\tlist src_ip '10.98.0.0/16'\n\toption gateway 'router3'" ;;
			esac
			case $r in via3) printf "config rule '%s'\n\t$m\n" "$r" ;;
			*) printf "config rule '%s'\n\toption gateway 'router2'\n\t$m\n" "$r" ;; esac
		done
	} > "$WORK/$name.conf"
}

# The table as nft lists it, normalized: no handles, no counter values,
# objects sorted by kind and name, each chain's rules in order.
table_of() {
	in_ns "$1" nft -j list table inet connroute | python3 -c '
import json, sys
objs = json.load(sys.stdin)["nftables"]
out, rules = [], {}
for o in objs:
    (kind, v), = o.items()
    if kind == "metainfo":
        continue
    v.pop("handle", None)
    if kind == "counter":
        v.pop("packets", None); v.pop("bytes", None)
    if kind == "rule":
        rules.setdefault(v["chain"], []).append(v)
    else:
        out.append((kind, v.get("name", ""), v))
out.sort(key=lambda x: (x[0], x[1]))
for kind, name, v in out:
    print(kind, json.dumps(v, sort_keys=True))
    for r in rules.get(name, []) if kind == "chain" else []:
        print("   ", json.dumps(r, sort_keys=True))
'
}


# fresh NAME: the table a fresh load of conf NAME gives (in F).
fresh() {
	rm -f "$WORK/state-f" "$WORK/state-f.batch"
	in_ns f nft delete table inet connroute 2>/dev/null || true
	cr f -c "$WORK/$1.conf" apply >/dev/null 2>&1
	table_of f
}

# unstamped: stdin with the fingerprints in comments masked.
unstamped() { sed -E 's/connroute restore fp=[0-9a-f]{16}/connroute restore fp=MASKED/g'; }

# step NAME [add-only]: apply conf NAME on H as an incremental load (with
# add-only: a batch that deletes nothing); compare with a fresh load of it
# in F (fingerprint comments masked where the update was add-only).
step() {
	local name=$1 before after last mask=cat
	before=$(ls "$LOG" | grep -c 'json$' || true)
	diff=$(cr h --nft "$WORK/nft" -c "$WORK/$name.conf" check --diff)
	case "$diff" in *"~ table inet connroute: "*) ok "$name: check --diff names what the update touches: $(echo "$diff" | grep '~ table')" ;;
	*) fail "$name: check --diff: $diff" ;; esac
	out=$(cr h --nft "$WORK/nft" -v -c "$WORK/$name.conf" apply 2>&1) || fail "$name: apply: $out"
	after=$(ls "$LOG" | grep -c 'json$' || true)
	expect_eq "$name: one nft transaction" 1 $((after - before))
	last=$(ls "$LOG"/*.json | tail -1)
	grep -q '"delete":{"table"' "$last" && fail "$name: the batch deletes the table" || ok "$name: no delete table"
	grep -q '"delete":{"chain":{[^}]*"name":"\(prerouting\|output\)"' "$last" && fail "$name: a base chain deleted" || true
	expect_eq "$name: nft -c accepted the incremental batch" accepted "$(tail -1 "$last.check")"
	cmp -s "$LOG/check.last" "$last" && ok "$name: check --diff checked the batch apply loaded" ||
		fail "$name: check --diff checked another batch than apply loaded"
	grep -q '{"replace"' "$last" && fail "$name: the batch replaces a rule" || ok "$name: no replace rule"
	case "$out" in *"updated table inet connroute"*) ok "$name: $(echo "$out" | grep -o 'updated table[^;]*' | head -1)" ;;
	*) fail "$name: not incremental: $out" ;; esac
	if grep -q '{"delete"\|{"flush"' "$last"; then
		[ "${2:-}" = add-only ] && fail "$name: the add-only update deletes: $(cat "$last")"
	else
		mask=unstamped
		[ "${2:-}" = add-only ] && ok "$name: add-only batch (no delete, no flush)"
	fi
	expect_eq "$name: the live table is what a fresh load gives" "$(fresh "$name" | $mask)" "$(table_of h | $mask)"
	expect_eq "$name: via router #2 works" "hello from h" "$(fetch c http://10.2.0.1/ || true)"
	expect_eq "$name: status current" "drift: none" "$(cr h -c "$WORK/$name.conf" status | grep -o 'drift: none' || true)"
}

conf a http b c
conf added http b n c
conf removed http c
conf gateway http c gw3
conf back http b c
conf vmap http b c p1 p2 pl
conf vmap-added http b c p1 p2 p3 pl
conf vmap-edited http b c p1 p2 p3 pl2
expect_ok "apply a" cr h --nft "$WORK/nft" -c "$WORK/a.conf" apply
expect_eq "via router #2 works" "hello from h" "$(fetch c http://10.2.0.1/ || true)"
step added add-only
# The table still carries a's fingerprint comment; the record says it holds
# "added": status with a's config is drift, not "no record".
st=0
out=$(cr h -c "$WORK/a.conf" status 2>&1) || st=$?
expect_eq "after add-only: status -c a reports drift" 3 "$st"
case "$out" in *"differs from the config"*) ok "after add-only: status -c a: table differs" ;;
*) fail "after add-only: status -c a: $out" ;; esac
for s in removed gateway back; do step "$s"; done
# Prefix rules merged into one verdict map (an anonymous interval set): a
# rule added to it, and a list of two prefixes edited.
step vmap
grep -q '"vmap"' "$(ls "$LOG"/*.json | tail -1)" && grep -q '"prefix"' "$(ls "$LOG"/*.json | tail -1)" &&
	ok "vmap: the batch holds a prefix verdict map" || fail "vmap: no prefix verdict map in the batch"
for s in vmap-added vmap-edited back; do step "$s"; done

# A pinned connection's counter survives an update (named counters stay).
pk() { cr h -c "$WORK/$1.conf" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rules"][0]["packets"])'; }
p0=$(pk back)
step added add-only
p1=$(pk added)
[ "$p1" -ge "$p0" ] && ok "rule counter kept across the update ($p0 -> $p1)" || fail "counter reset: $p0 -> $p1"

# Drift: a rule added by hand is seen, and the table replaced whole.
in_ns h nft add rule inet connroute classify counter
out=$(cr h --nft "$WORK/nft" -v -c "$WORK/removed.conf" apply 2>&1)
grep -q '"delete":{"table"' "$(ls "$LOG"/*.json | tail -1)" && ok "changed by hand: full replace" || fail "drift: $out"
expect_eq "after drift: the live table is a fresh load's" "$(fresh removed)" "$(table_of h)"

# A foreign `flags dormant` switches every hook off: drift, replaced whole.
in_ns h nft add table inet connroute '{ flags dormant; }'
st=0
cr h -c "$WORK/removed.conf" status >/dev/null 2>&1 || st=$?
expect_eq "dormant table: status reports drift" 3 "$st"
out=$(cr h --nft "$WORK/nft" -v -c "$WORK/added.conf" apply 2>&1)
grep -q '"delete":{"table"' "$(ls "$LOG"/*.json | tail -1)" && ok "dormant table: full replace" || fail "dormant: $out"
in_ns h nft list table inet connroute | grep -q dormant && fail "still dormant" || ok "dormant flag cleared"
expect_eq "after dormant: via router #2 works" "hello from h" "$(fetch c http://10.2.0.1/ || true)"
finish

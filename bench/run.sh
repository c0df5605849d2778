#!/usr/bin/env bash
# make bench: connroute against its baselines, per target of issue 13, each
# with the floor (what the kernel or nft alone costs). Writes
# bench/results.md. Timings are medians of repeated runs in namespaces of
# this machine, each compared with its baseline in the same run (ratios:
# machines are noisy). Nothing here asserts on time; not run in CI.
# BENCH_RUNS (default 15), BENCH_SECONDS (iperf3, default 3), BENCH_OUT.
. "$(dirname "$0")/../tests/e2e/lib.sh"
setup_cleanup
TOP=$(cd "$HERE/../.." && pwd)
OUT=${BENCH_OUT:-$TOP/bench/results.md}
RUNS=${BENCH_RUNS:-15}

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m}'; }
# time_runs N SETUP CMD: N timings (µs) of CMD, each after SETUP (untimed).
time_runs() {
	local n=$1 setup=$2 cmd=$3 i t0 t1
	for i in $(seq 1 "$n"); do
		eval "$setup" >/dev/null 2>&1 || true
		t0=$(now_us)
		eval "$cmd" >/dev/null 2>&1 || { echo "bench command failed: $cmd" >&2; return 1; }
		t1=$(now_us)
		echo $((t1 - t0))
	done
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
self_rss() { "$@" -v 2>&1 >/dev/null | sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' | tail -1; }

# ---- Targets 1-3. Apply latency, seed config, against the 3-command recipe --
build_seed
CONF="$TOP/examples/seed.conf"
cat > "$WORK/recipe.nft" <<'NFT'
table inet recipe {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		ct mark & 0xff000000 == 0x01000000 meta mark set meta mark & 0x00ffffff | 0x01000000
		ct state new ether saddr 52:54:00:c2:a5:43 ip saddr != 192.168.1.0/24 tcp dport 80 ct mark set ct mark & 0x00ffffff | 0x01000000 meta mark set meta mark & 0x00ffffff | 0x01000000
	}
	chain output {
		type route hook output priority mangle; policy accept;
		ct mark & 0xff000000 == 0x01000000 meta mark set meta mark & 0x00ffffff | 0x01000000
	}
}
NFT
# The recipe as the seed gives it: three commands, no idempotence.
cat > "$WORK/recipe.sh" <<SH
#!/bin/sh
ip route replace default via 192.168.1.2 table 200
ip rule add fwmark 0x1000000/0xff000000 lookup 200
nft -f $WORK/recipe.nft
SH
recipe_clean="in_ns h sh -c 'ip rule del fwmark 0x1000000/0xff000000 lookup 200; ip route flush table 200; nft delete table inet recipe'"
cr_clean="cr h -c $CONF flush"
recipe="in_ns h sh $WORK/recipe.sh"
connroute="cr h -c $CONF apply"
# A changed config: one more rule.
{ cat "$CONF"; printf "\nconfig rule 'extra'\n\toption gateway 'router2'\n\tlist proto 'udp'\n\tlist dest_port '5353'\n"; } > "$WORK/changed.conf"

eval "$connroute"
[ "$(fetch c http://10.2.0.1/)" = "hello from h" ] || { echo "seed topology not working" >&2; exit 1; }
eval "$cr_clean"
eval "$recipe"
[ "$(fetch c http://10.2.0.1/)" = "hello from h" ] || { echo "recipe not working" >&2; exit 1; }
eval "$recipe_clean"

floor_exec=$(time_runs "$RUNS" : "in_ns h true" | median)
# One nft transaction adding the recipe's table (absent), then removing it.
floor_nft=$(time_runs "$RUNS" "in_ns h nft delete table inet recipe" "in_ns h nft -f $WORK/recipe.nft" | median)
in_ns h nft delete table inet recipe
cold_sh=$(time_runs "$RUNS" "$recipe_clean" "$recipe" | median)
eval "$recipe_clean"
cold_cr=$(time_runs "$RUNS" "$cr_clean" "$connroute" | median)
eval "$connroute"
warm_cr=$(time_runs "$RUNS" : "$connroute" | median)
force_cr=$(time_runs "$RUNS" : "$connroute --force" | median)
changed_cr=$(time_runs "$RUNS" "$connroute" "cr h -c $WORK/changed.conf apply" | median)
eval "$cr_clean"
echo "apply: connroute cold $(ms "$cold_cr") ms, recipe $(ms "$cold_sh") ms" >&2

# ---- Target 4 (rules walked) and scaling with the number of gateways -------
add_ns s
in_ns s ip link add lan type veth peer name lanp
in_ns s ip link set lan up; in_ns s ip link set lanp up
in_ns s ip addr add 10.128.0.1/16 dev lan
in_ns s ip -6 addr add fd00:128::1/64 dev lan nodad
gen() { # N gateways, 4 rules each (MAC + port, device + prefix, port range, v6 destination)
	local n=$1 i
	printf "config globals 'globals'\n\toption enabled '1'\n"
	for i in $(seq 1 "$n"); do
		printf "config gateway 'gw%d'\n\toption gateway '10.128.%d.%d'\n\toption gateway6 'fd00:128::%x'\n\toption device 'lan'\n" \
			"$i" $((i / 250)) $((i % 250 + 2)) $((i + 1))
		printf "config rule\n\toption gateway 'gw%d'\n\tlist src_mac '02:00:00:00:%02x:%02x'\n\tlist proto 'tcp'\n\tlist dest_port '%d'\n" "$i" $((i / 256)) $((i % 256)) $((1000 + i))
		printf "config rule\n\toption gateway 'gw%d'\n\tlist in_device 'lan'\n\tlist src_ip '10.%d.%d.0/24'\n" "$i" $((i / 256 + 1)) $((i % 256))
		printf "config rule\n\toption gateway 'gw%d'\n\tlist proto 'udp'\n\tlist dest_port '%d-%d'\n" "$i" $((20000 + i * 10)) $((20000 + i * 10 + 9))
		printf "config rule\n\toption gateway 'gw%d'\n\tlist dest_ip '2001:db8:%x::/48'\n" "$i" "$i"
	done
}
chain_rules() { in_ns s nft -j list chain inet connroute "$1" | grep -o '"rule"' | wc -l; }
# The ip rules a packet with fwmark M is tested against (IPv4), walking
# `ip rule` output as the kernel does (goto jumps, nop continues).
walk_rules() { # MARK
	in_ns s ip -4 rule | python3 -c '
import re, sys
mark = int(sys.argv[1], 0)
rules = [l for l in sys.stdin if "proto 197" in l]
prio = [int(l.split(":")[0]) for l in rules]
i = n = 0
while i < len(rules):
    l = rules[i]; n += 1
    m = re.search(r"fwmark (\S+)/(\S+)", l)
    hit = m is None or mark & int(m.group(2), 16) == int(m.group(1), 16)
    if " not " in l: hit = not hit
    g = re.search(r"goto (\d+)", l)
    if hit and g: i = prio.index(int(g.group(1))); continue
    if hit and re.search(r"lookup \d+", l): break
    i += 1
print(n)' "$1"
}
scaling=""
for n in 1 10 100 250; do
	gen "$n" > "$WORK/gw$n.conf"
	render=$(time_runs "$RUNS" : "$CONNROUTE -c $WORK/gw$n.conf render" | median)
	cold=$(time_runs 5 "cr s -c $WORK/gw$n.conf flush" "cr s -c $WORK/gw$n.conf apply" | median)
	warm=$(time_runs 5 : "cr s -c $WORK/gw$n.conf apply" | median)
	pre=$(chain_rules prerouting); cls=$(chain_rules classify)
	routes=$(in_ns s sh -c 'ip -4 route show table all proto 197; ip -6 route show table all proto 197' | wc -l)
	rules=$(in_ns s sh -c 'ip -4 rule; ip -6 rule' | grep -c 'proto 197')
	unmarked=$(walk_rules 0); last=$(walk_rules $((n << 24)))
	scaling+="| $n | $(ms "$render") ms | $(ms "$cold") ms | $(ms "$warm") ms | $pre | $cls | $routes | $rules | $unmarked | $last |"$'\n'
	echo "scaling $n: render $(ms "$render") ms apply $(ms "$cold") ms, ip rules walked $unmarked/$last" >&2
	cr s -c "$WORK/gw$n.conf" flush >/dev/null 2>&1
done

# ---- Target 5. Rules at scale: N same-shape rules --------------------------
gen_rules() { # N rules, 2 gateways: host address + tcp port
	python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
t = "config gateway 'a'\n\toption gateway '10.128.0.2'\nconfig gateway 'b'\n\toption gateway '10.128.0.3'\n"
for i in range(n):
    t += "config rule\n\toption gateway '%s'\n\tlist src_ip '10.%d.%d.7'\n\tlist proto 'tcp'\n\tlist dest_port '%d'\n" % ("ab"[i % 2], i // 250, i % 250, 1000 + i % 50)
print(t, end="")
PY
}
# Floor: nft loading the same number of bare counters (one object each).
gen_floor() {
	python3 - "$1" <<'PY'
import json, sys
o = [{"add": {"table": {"family": "inet", "name": "floor"}}}]
o += [{"add": {"counter": {"family": "inet", "table": "floor", "name": "c%d" % i}}} for i in range(int(sys.argv[1]))]
print(json.dumps({"nftables": o}))
PY
}
rules_rows=""
for n in 10 100 1000 10000; do
	gen_rules "$n" > "$WORK/r$n.conf"
	"$CONNROUTE" -c "$WORK/r$n.conf" render > "$WORK/r$n.json"
	gen_floor "$n" > "$WORK/f$n.json"
	render=$(time_runs 5 : "$CONNROUTE -c $WORK/r$n.conf render" | median)
	load=$(time_runs 3 "in_ns s nft delete table inet connroute" "in_ns s nft -j -f $WORK/r$n.json" | median)
	floor=$(time_runs 3 "in_ns s nft delete table inet floor" "in_ns s nft -j -f $WORK/f$n.json" | median)
	cls=$(chain_rules classify)
	rss=$(self_rss "$CONNROUTE" -c "$WORK/r$n.conf" --syslog /x render)
	rules_rows+="| $n | $(ms "$render") ms | $(ms "$load") ms | $(ms "$floor") ms | $(ratio "$load" "$floor") | $cls | $rss KiB |"$'\n'
	echo "rules $n: nft load $(ms "$load") ms, classify $cls rules, RSS $rss KiB" >&2
	in_ns s nft delete table inet connroute; in_ns s nft delete table inet floor
done
# Render memory: one rule with a 100,000-address list (2.6 MB config).
python3 - > "$WORK/a100k.conf" <<'PY'
t = "config gateway 'a'\n\toption gateway '10.128.0.2'\nconfig rule 'big'\n\toption gateway 'a'\n"
t += "".join("\tlist src_ip '10.%d.%d.%d'\n" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(100000))
print(t, end="")
PY
rss_100k=$(self_rss "$CONNROUTE" -c "$WORK/a100k.conf" --syslog /x render)
rss_100k_config=$(self_rss "$CONNROUTE" -c "$WORK/a100k.conf" --syslog /x dump-config)

# ---- Target 4. Per-packet cost: bulk TCP through a router ------------------
# tc (client) -- tr (router) -- ts (server); the router's ruleset varies.
add_ns tc tr ts
link tc eth0 tr in0
link tr out0 ts eth0
in_ns tc ip addr add 10.10.0.2/24 dev eth0; in_ns tc ip route add default via 10.10.0.1
in_ns tr ip addr add 10.10.0.1/24 dev in0; in_ns tr ip addr add 10.20.0.1/16 dev out0
in_ns ts ip addr add 10.20.0.2/16 dev eth0; in_ns ts ip route add default via 10.20.0.1
in_ns ts iperf3 -s -D >/dev/null
sleep 0.5
tput_conf() { # N PORT: N gateways; the last one's rule pins tcp/PORT (5201: the test's traffic)
	local n=$1 port=$2 i
	for i in $(seq 1 "$n"); do
		printf "config gateway 'g%d'\n\toption gateway '10.20.%d.%d'\n\toption device 'out0'\n" "$i" $((i / 250 + 1)) $((i % 250 + 2))
		if [ "$i" = "$n" ]; then
			printf "config rule\n\toption gateway 'g%d'\n\tlist in_device 'in0'\n\tlist proto 'tcp'\n\tlist dest_port '%d'\n" "$i" "$port"
		else
			printf "config rule\n\toption gateway 'g%d'\n\tlist in_device 'in0'\n\tlist proto 'udp'\n\tlist dest_port '%d'\n" "$i" $((30000 + i))
		fi
	done
}
# Pinned packets still reach the server: its /16 is connected in the main
# table, which the shared suppress_prefixlength rule consults first.
gbps() { in_ns tc iperf3 -c 10.20.0.2 -t "${BENCH_SECONDS:-3}" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }
declare -A tput
cases="none p1 u250 p250"
for c in $cases; do tput[$c]=""; done
tput_conf 1 5201 > "$WORK/p1.conf"; tput_conf 250 5202 > "$WORK/u250.conf"; tput_conf 250 5201 > "$WORK/p250.conf"
for round in 1 2 3; do
	for c in $cases; do
		if [ "$c" = none ]; then cr tr -c /dev/null flush >/dev/null 2>&1 || true
		else cr tr -c "$WORK/$c.conf" apply >/dev/null 2>&1; fi
		tput[$c]+="$(gbps) "
	done
	cr tr -c /dev/null flush >/dev/null 2>&1 || true
done
tmed() { tr ' ' '\n' <<<"${tput[$1]}" | grep . | median; }
t0=$(tmed none)
echo "throughput: none $t0, 250 gw unmarked $(tmed u250), pinned $(tmed p250) Gbit/s" >&2

# ---- Footprint ----------------------------------------------------------------
gen 50 > "$WORK/gw50.conf"
tree_rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
rss_render=$(self_rss "$CONNROUTE" -c "$WORK/gw50.conf" --syslog /x render)
apply50=(ip netns exec "$(ns s)" "$CONNROUTE" -c "$WORK/gw50.conf" --syslog /x --lock "$WORK/l" --ids "$WORK/ids" --state "$WORK/state" --no-rt-tables apply)
rss_apply=$(self_rss "${apply50[@]}" --force)
rss_tree=$(tree_rss "${apply50[@]}" --force)
STATIC=${CONNROUTE_STATIC:-}
static_rss="(no static build: run via \`make bench\`)"
if [ -x "$STATIC" ]; then
	r=$(self_rss "$STATIC" -c "$WORK/gw50.conf" --syslog /x render)
	a=$(self_rss ip netns exec "$(ns s)" "$STATIC" -c "$WORK/gw50.conf" --syslog /x --lock "$WORK/l" --ids "$WORK/ids" --state "$WORK/state" --no-rt-tables apply --force)
	r10k=$(self_rss "$STATIC" -c "$WORK/r10000.conf" --syslog /x render)
	static_rss="render $r KiB, apply $a KiB; 10,000-rule render $r10k KiB"
fi
sizes="(run \`make cross\` first for the router targets)"
[ -f "$TOP/dist/sizes.md" ] && sizes=$(cat "$TOP/dist/sizes.md")

{
	echo "# connroute benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d), $(uname -m), $(nproc) cores, kernel $(uname -r),"
	echo "$(nft --version), commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null). Medians of $RUNS runs unless said;"
	echo "times include process start and \`ip netns exec\`, for connroute and the baselines alike."
	echo
	echo "## Targets 1-3. Apply latency, seed config"
	echo
	echo "Baseline: the seed's recipe, 3 commands (\`ip route replace … table 200\`,"
	echo "\`ip rule add fwmark …\`, one \`nft -f\` of the same ruleset). Floors: \`ip netns exec true\`"
	echo "$(ms "$floor_exec") ms; one \`nft -f\` adding the recipe's table $(ms "$floor_nft") ms."
	echo
	echo "| | connroute | baseline | ratio | floor | target |"
	echo "|---|---:|---:|---:|---:|---:|"
	echo "| 1. cold (nothing installed) | $(ms "$cold_cr") ms | $(ms "$cold_sh") ms | $(ratio "$cold_cr" "$cold_sh") | $(ms "$floor_nft") ms | ≤ 0.7 |"
	echo "| 2. re-apply, nothing changed | $(ms "$warm_cr") ms | $(ms "$cold_sh") ms | $(ratio "$warm_cr" "$cold_sh") | $(ms "$floor_exec") ms | ≤ 0.3 |"
	echo "| 3. one rule added | $(ms "$changed_cr") ms | $(ms "$force_cr") ms (\`--force\`, full replace) | $(ratio "$changed_cr" "$force_cr") | $(ms "$floor_nft") ms | < 1 |"
	echo
	echo "## Target 4. Per-packet cost: ip rules walked, and scaling with gateways"
	echo
	echo "N gateways, 4 rules each (IPv4 and IPv6). The last two columns walk the"
	echo "live \`ip -4 rule\` list as the kernel does: how many of connroute's rules an"
	echo "unmarked packet and a packet pinned to the last gateway are tested against"
	echo "(target: 2, and ≤ 2·log2(N)+4)."
	echo
	echo "| N | render | apply, cold | apply, unchanged | rules in \`prerouting\` (every packet) | rules in \`classify\` (new connections) | routes | ip rules | ip rules walked, unmarked | ip rules walked, pinned |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s' "$scaling"
	echo
	echo "Bulk TCP through a router namespace (iperf3, 3 × ${BENCH_SECONDS:-3} s, medians); baseline and floor: no ruleset."
	echo
	echo "| router ruleset | Gbit/s | ratio to none | target | runs |"
	echo "|---|---:|---:|---:|---|"
	echo "| none | $t0 | 1.00 | | ${tput[none]}|"
	echo "| 1 gateway, traffic pinned | $(tmed p1) | $(ratio "$(tmed p1)" "$t0") | | ${tput[p1]}|"
	echo "| 250 gateways, traffic unmarked | $(tmed u250) | $(ratio "$(tmed u250)" "$t0") | ≥ 0.95 | ${tput[u250]}|"
	echo "| 250 gateways, traffic pinned to the last | $(tmed p250) | $(ratio "$(tmed p250)" "$t0") | ≥ 0.9 | ${tput[p250]}|"
	echo
	echo "## Target 5. Rules at scale: N same-shape config rules (host address + tcp port, 2 gateways)"
	echo
	echo "Loading: \`nft -j -f\` of the rendered batch into a fresh namespace (medians of 3);"
	echo "floor: nft loading N bare named counters. RSS: connroute's own peak for \`render\` (host glibc build)."
	echo
	echo "| rules | render | nft load | floor | ratio | rules in \`classify\` | connroute peak RSS |"
	echo "|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s' "$rules_rows"
	echo
	echo "Targets: 10,000 rules load in ≤ 5 s; classify ≤ a few dozen rules; peak RSS ≤ 16 MiB."
	echo "A 100,000-address list (one rule, 2.6 MB config): render peak RSS $rss_100k KiB"
	echo "(target < 40 MB; reading the config alone, \`dump-config\`: $rss_100k_config KiB)."
	echo
	echo "## Footprint"
	echo
	echo "Peak RSS of connroute itself (getrusage RUSAGE_SELF) for a 50-gateway, 200-rule config:"
	echo
	echo "- static musl build (\`x86_64-unknown-linux-musl\`, the routers' libc and allocator): $static_rss"
	echo "- host glibc build: render $rss_render KiB, apply $rss_apply KiB"
	echo
	echo "With its \`nft\` child (\`/usr/bin/time -f %M\`, the largest process of the run): $rss_tree KiB."
	echo
	echo "Host binary: $(wc -c < "$CONNROUTE") bytes. Router targets (\`make cross\`):"
	echo
	echo "$sizes"
} > "$OUT"
cat "$OUT"
finish

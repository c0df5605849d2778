#!/usr/bin/env bash
# make bench: connroute against the hand-written recipe, scaling with the
# number of gateways, per-packet cost, footprint. Writes bench/results.md.
# Timings are medians of repeated runs in namespaces of this machine, each
# compared with its baseline in the same run (ratios: machines are noisy).
# Nothing here asserts on time.
. "$(dirname "$0")/../tests/e2e/lib.sh"
setup_cleanup
TOP=$(cd "$HERE/../.." && pwd)
OUT=${BENCH_OUT:-$TOP/bench/results.md}
RUNS=${BENCH_RUNS:-21}

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

# ---- 1. Apply latency: the seed config against the shell recipe ----------
build_seed
CONF="$TOP/examples/seed.conf"
cat > "$WORK/recipe.nft" <<'NFT'
table inet recipe
delete table inet recipe
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
# The recipe as users write it: idempotent by delete-then-add.
cat > "$WORK/recipe.sh" <<SH
#!/bin/sh
ip route replace default via 192.168.1.2 table 5000
ip rule del priority 5000 2>/dev/null
ip rule add priority 5000 fwmark 0x1000000/0xff000000 lookup main suppress_prefixlength 0
ip rule del priority 5001 2>/dev/null
ip rule add priority 5001 fwmark 0x1000000/0xff000000 lookup 5000
nft -f $WORK/recipe.nft
SH
recipe_clean="in_ns h sh -c 'ip rule del priority 5000; ip rule del priority 5001; ip route flush table 5000; nft delete table inet recipe'"
cr_clean="cr h -c $CONF flush"
recipe="in_ns h sh $WORK/recipe.sh"
connroute="cr h -c $CONF apply"

eval "$connroute"
[ "$(fetch c http://10.2.0.1/)" = "hello from h" ] || { echo "seed topology not working" >&2; exit 1; }
eval "$cr_clean"
eval "$recipe"
[ "$(fetch c http://10.2.0.1/)" = "hello from h" ] || { echo "recipe not working" >&2; exit 1; }
eval "$recipe_clean"

cold_cr=$(time_runs "$RUNS" "$cr_clean" "$connroute" | median)
cold_sh=$(time_runs "$RUNS" "$recipe_clean" "$recipe" | median)
eval "$connroute"; eval "$recipe"
warm_cr=$(time_runs "$RUNS" : "$connroute" | median)
warm_sh=$(time_runs "$RUNS" : "$recipe" | median)
force_cr=$(time_runs "$RUNS" : "$connroute --force" | median)
eval "$cr_clean"; eval "$recipe_clean"
echo "apply: connroute cold $(ms "$cold_cr") ms, recipe $(ms "$cold_sh") ms" >&2

# ---- 2. Scaling with the number of gateways -------------------------------
# N gateways on one link of a router namespace, 4 rules each (MAC + port,
# input device + source prefix, a port range, an IPv6 destination).
add_ns s
in_ns s ip link add lan type veth peer name lanp
in_ns s ip link set lan up; in_ns s ip link set lanp up
in_ns s ip addr add 10.128.0.1/16 dev lan
in_ns s ip -6 addr add fd00:128::1/64 dev lan nodad
gen() { # N
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
scaling=""
for n in 1 10 100 250; do
	gen "$n" > "$WORK/gw$n.conf"
	render=$(time_runs "$RUNS" : "$CONNROUTE -c $WORK/gw$n.conf render" | median)
	cold=$(time_runs 7 "cr s -c $WORK/gw$n.conf flush" "cr s -c $WORK/gw$n.conf apply" | median)
	warm=$(time_runs 7 : "cr s -c $WORK/gw$n.conf apply" | median)
	pre=$(chain_rules prerouting); cls=$(chain_rules classify)
	routes=$(in_ns s sh -c 'ip -4 route show table all proto 197; ip -6 route show table all proto 197' | wc -l)
	rules=$(in_ns s sh -c 'ip -4 rule; ip -6 rule' | grep -c 'proto 197')
	scaling+="| $n | $(ms "$render") | $(ms "$cold") | $(ms "$warm") | $pre | $cls | $routes | $rules |"$'\n'
	echo "scaling $n: render $(ms "$render") ms apply $(ms "$cold") ms" >&2
	cr s -c "$WORK/gw$n.conf" flush >/dev/null 2>&1
done

# ---- 3. Per-packet cost: bulk TCP through a router ------------------------
# tc (client) -- tr (router) -- ts (server); the router's ruleset varies.
add_ns tc tr ts
link tc eth0 tr in0
link tr out0 ts eth0
in_ns tc ip addr add 10.10.0.2/24 dev eth0; in_ns tc ip route add default via 10.10.0.1
in_ns tr ip addr add 10.10.0.1/24 dev in0; in_ns tr ip addr add 10.20.0.1/16 dev out0
in_ns ts ip addr add 10.20.0.2/16 dev eth0; in_ns ts ip route add default via 10.20.0.1
in_ns ts iperf3 -s -D >/dev/null
sleep 0.5
tput_conf() { # N: N gateways; the client's traffic matches the last one's rule
	local n=$1 i
	for i in $(seq 1 "$n"); do
		printf "config gateway 'g%d'\n\toption gateway '10.20.%d.%d'\n\toption device 'out0'\n" "$i" $((i / 250 + 1)) $((i % 250 + 2))
		if [ "$i" = "$n" ]; then
			printf "config rule\n\toption gateway 'g%d'\n\tlist in_device 'in0'\n\tlist proto 'tcp'\n\tlist dest_port '5201'\n" "$i"
		else
			printf "config rule\n\toption gateway 'g%d'\n\tlist in_device 'in0'\n\tlist proto 'udp'\n\tlist dest_port '%d'\n" "$i" $((30000 + i))
		fi
	done
}
# Pinned packets still reach the server: its /16 is connected in the main
# table, which the suppress_prefixlength rule consults first.
gbps() { in_ns tc iperf3 -c 10.20.0.2 -t "${BENCH_SECONDS:-3}" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }
declare -A tput
for n in 0 1 250 rules; do tput[$n]=""; done
for round in 1 2 3; do
	for n in 0 1 250; do
		if [ "$n" = 0 ]; then cr tr -c /dev/null flush >/dev/null 2>&1 || true; else
			tput_conf "$n" > "$WORK/t$n.conf"; cr tr -c "$WORK/t$n.conf" apply >/dev/null 2>&1; fi
		tput[$n]+="$(gbps) "
	done
	# Attribution: 250 gateways' ip rules alone, without the nft table.
	cr tr -c "$WORK/t250.conf" apply >/dev/null 2>&1
	in_ns tr nft delete table inet connroute
	tput[rules]+="$(gbps) "
	cr tr -c "$WORK/t250.conf" flush >/dev/null 2>&1
done
tmed() { tr ' ' '\n' <<<"${tput[$1]}" | grep . | median; }
t0=$(tmed 0); t1=$(tmed 1); t250=$(tmed 250); trules=$(tmed rules)
echo "throughput: none $t0, 1 gw $t1, 250 gw $t250 Gbit/s" >&2

# ---- 4. Footprint ----------------------------------------------------------
gen 50 > "$WORK/gw50.conf"
# Peak RSS of connroute itself (getrusage RUSAGE_SELF, logged with -v;
# the nft child is not counted), and of the whole run with nft for contrast.
self_rss() { "$@" -v 2>&1 >/dev/null | sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' | tail -1; }
tree_rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
rss_render=$(self_rss "$CONNROUTE" -c "$WORK/gw50.conf" --syslog /x render)
apply50=(ip netns exec "$(ns s)" "$CONNROUTE" -c "$WORK/gw50.conf" --syslog /x --lock "$WORK/l" --no-rt-tables apply)
rss_apply=$(self_rss "${apply50[@]}" --force)
rss_tree=$(tree_rss "${apply50[@]}" --force)
STATIC=${CONNROUTE_STATIC:-}
static_rss="(no static build: run via \`make bench\`)"
if [ -x "$STATIC" ]; then
	r=$(self_rss "$STATIC" -c "$WORK/gw50.conf" --syslog /x render)
	a=$(self_rss ip netns exec "$(ns s)" "$STATIC" -c "$WORK/gw50.conf" --syslog /x --lock "$WORK/l" --no-rt-tables apply --force)
	static_rss="render $r KiB, apply $a KiB"
fi
rss_true=$(tree_rss /bin/true)
sizes="(run \`make cross\` first for the router targets)"
[ -f "$TOP/dist/sizes.md" ] && sizes=$(cat "$TOP/dist/sizes.md")

{
	echo "# connroute benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d), $(uname -m), $(nproc) cores, kernel $(uname -r),"
	echo "$(nft --version). Medians of $RUNS runs unless said; times include process start"
	echo "and \`ip netns exec\`, for connroute and the baseline alike."
	echo
	echo "## 1. Apply latency, seed config (host H of the two-router topology)"
	echo
	echo "Baseline: the seed's recipe by hand, as a shell script of \`ip route replace\`,"
	echo "\`ip rule del/add\` (twice) and one \`nft -f\` of the same ruleset (bench/run.sh)."
	echo
	echo "| | connroute | shell recipe | ratio (connroute / recipe) |"
	echo "|---|---:|---:|---:|"
	echo "| cold (nothing installed) | $(ms "$cold_cr") ms | $(ms "$cold_sh") ms | $(ratio "$cold_cr" "$cold_sh") |"
	echo "| re-apply, state present | $(ms "$warm_cr") ms | $(ms "$warm_sh") ms | $(ratio "$warm_cr" "$warm_sh") |"
	echo "| re-apply with \`--force\` (table reloaded) | $(ms "$force_cr") ms | $(ms "$warm_sh") ms | $(ratio "$force_cr" "$warm_sh") |"
	echo
	echo "The recipe's re-apply deletes and re-adds its ip rules: for a moment marked"
	echo "packets have no rule. connroute changes nothing when nothing changed."
	echo
	echo "## 2. Scaling: N gateways, 4 rules each (IPv4 and IPv6)"
	echo
	echo "| N | render | apply, cold | apply, unchanged | rules in \`prerouting\` (every packet) | rules in \`classify\` (new connections only) | routes | ip rules |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s' "$scaling" | sed 's/| \([0-9.]*\) | \([0-9.]*\) | \([0-9.]*\) | \([0-9.]*\) |/| \1 | \2 ms | \3 ms | \4 ms |/'
	echo
	echo "An established packet meets the same two rules at any N: one verdict-map"
	echo "lookup on its ct mark (then one rule in its gateway's restore chain) and a"
	echo "\`ct state new\` test. Only a connection's first packet walks \`classify\`."
	echo
	echo "## 3. Per-packet cost: bulk TCP through a router namespace (iperf3, 3 × ${BENCH_SECONDS:-3} s)"
	echo
	echo "| router ruleset | Gbit/s (median) | ratio to none | runs |"
	echo "|---|---:|---:|---|"
	echo "| none | $t0 | 1.00 | ${tput[0]}|"
	echo "| connroute, 1 gateway | $t1 | $(ratio "$t1" "$t0") | ${tput[1]}|"
	echo "| connroute, 250 gateways (traffic pinned by the last rule) | $t250 | $(ratio "$t250" "$t0") | ${tput[250]}|"
	echo "| 250 gateways' 1000 ip rules, nft table deleted (nothing marked) | $trules | $(ratio "$trules" "$t0") | ${tput[rules]}|"
	echo
	echo "The kernel walks ip rules in order on every route lookup: an unmarked packet"
	echo "passes all ~500 IPv4 fwmark rules before the main table, a packet pinned to the last"
	echo "gateway about as many. The last row, without any nft table, shows that most of"
	echo "the 250-gateway cost is that walk, not nftables."
	echo
	echo "## 4. Footprint"
	echo
	echo "Peak RSS of connroute itself (getrusage RUSAGE_SELF) for a 50-gateway, 200-rule config:"
	echo
	echo "- static musl build (\`x86_64-unknown-linux-musl\`, the routers' libc and allocator): $static_rss"
	echo "- host glibc build: render $rss_render KiB, apply $rss_apply KiB"
	echo
	echo "With its \`nft\` child"
	echo "(\`/usr/bin/time -f %M\`, the largest process of the run): $rss_tree KiB; /bin/true: $rss_true KiB."
	echo
	echo "Host binary: $(wc -c < "$CONNROUTE") bytes. Router targets (\`make cross\`):"
	echo
	echo "$sizes"
} > "$OUT"
cat "$OUT"
finish

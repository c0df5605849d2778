#!/usr/bin/env bash
# make bench: connroute against its baselines, per target of issue 13, each
# with the floor (what the kernel or nft alone costs). Writes
# bench/results.md. Timings are medians of repeated runs in namespaces of
# this machine, each compared with its baseline in the same run (ratios:
# machines are noisy). Nothing here asserts on time; not run in CI.
# BENCH_RUNS (default 15), BENCH_SEED_RUNS (the seed table, default 201),
# BENCH_SECONDS (iperf3, default 2), BENCH_IPERF_ROUNDS (default 10), BENCH_OUT.
. "$(dirname "$0")/../tests/e2e/lib.sh"
setup_cleanup
TOP=$(cd "$HERE/../.." && pwd)
OUT=${BENCH_OUT:-$TOP/bench/results.md}
RUNS=${BENCH_RUNS:-15}
# The seed table (targets 1-3): more rounds, it is the closest call (at 101
# rounds the cold apply's 95% interval was 0.035-0.055 wide on this VM).
SEED_RUNS=${BENCH_SEED_RUNS:-201}

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m}'; }
# time_runs N SETUP CMD: N timings (µs) of CMD, each after SETUP (untimed),
# taken from outside: used for the `ip netns exec` floor and for render.
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
# ns_bench NS ROUNDS LABEL SETUP CMD [LABEL SETUP CMD ...]: one shell inside
# namespace NS (one `ip netns exec` for all runs: entering the namespace is
# test scaffolding no router pays) runs ROUNDS rounds; a round times each
# CMD once after its SETUP (untimed), interleaved, so load that comes and
# goes on a shared machine hits baseline and connroute alike. The order
# changes every round (a Williams design: over each N rounds, 2N for an
# odd number N of commands, every command comes right after every other
# one equally often and takes every position equally often): in a fixed
# order, one build timed right after another connroute run measured
# 0.1-0.25 ms faster than the same build timed first. Prints "LABEL µs"
# lines. Commands are strings evaluated in that shell.
ns_bench() {
	local n=$1; shift
	in_ns "$n" bash -c '
		rounds=$1; shift; L=(); S=(); C=()
		while [ $# -gt 0 ]; do L+=("$1"); S+=("$2"); C+=("$3"); shift 3; done
		# The first round: 0, 1, n-1, 2, n-2, ...; round r adds r (mod n),
		# and for an odd n every other block of n rounds runs backwards.
		n=${#L[@]}; base=(0)
		for ((k = 1; k < n; k++)); do base+=($((k % 2 ? (k + 1) / 2 : n - k / 2))); done
		for ((r = 0; r < rounds; r++)); do
			order=()
			for ((k = 0; k < n; k++)); do
				((n % 2 && (r / n) % 2)) && b=${base[n - 1 - k]} || b=${base[k]}
				order+=($(((b + r) % n)))
			done
			for j in "${order[@]}"; do
				eval "${S[j]}" >/dev/null 2>&1 || true
				t0=${EPOCHREALTIME/./}
				eval "${C[j]}" >/dev/null 2>&1 || { echo "bench command failed: ${C[j]}" >&2; exit 1; }
				t1=${EPOCHREALTIME/./}
				echo "${L[j]} $((t1 - t0))"
			done
		done' ns_bench "$@"
}
pick() { awk -v l="$1" '$1 == l {print $2}' | median; } # LABEL < ns_bench output
# median_ci < numbers (one per line): their median and its 95% interval by
# resampling them (2,000 draws, fixed seed; each draw counts how often it
# takes each of the sorted values, so its median is found in one pass):
# "0.684 (0.662–0.701)"; below 8 values, the median alone. Fails on no input.
median_ci() {
	awk '
		function sort(v, n,   i, j, t) {
			for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j > 0 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
		}
		function kth(k,   j, c) { for (j = 1; j <= n; j++) { c += cnt[j]; if (c >= k) return r[j] } }
		NF { r[++n] = $1 }
		END {
			if (n == 0) exit 1
			sort(r, n)
			lo = int((n + 1) / 2); hi = int(n / 2) + 1
			m = (r[lo] + r[hi]) / 2
			if (n < 8) { printf "%.3f (%d value%s: no interval)", m, n, (n > 1 ? "s" : ""); exit }
			srand(1)
			for (k = 1; k <= 2000; k++) {
				for (j = 1; j <= n; j++) cnt[j] = 0
				for (i = 1; i <= n; i++) cnt[int(rand() * n) + 1]++
				d[k] = (kth(lo) + kth(hi)) / 2
			}
			sort(d, 2000)
			printf "%.3f (%.3f–%.3f)", m, d[50], d[1951]
		}'
}
# paired A B < ns_bench output: the median over rounds of A's time over B's
# in the same round (load that comes and goes hits both alike), with its
# 95% interval (median_ci). Fails on unequal counts or a zero time.
paired() {
	awk -v a="$1" -v b="$2" '
		$1 == a { x[++na] = $2 } $1 == b { y[++nb] = $2 }
		END {
			if (na == 0 || na != nb) exit 1
			for (i = 1; i <= na; i++) if (x[i] <= 0 || y[i] <= 0) exit 1
			for (i = 1; i <= na; i++) printf "%.17g\n", x[i] / y[i]
		}' | median_ci
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
self_rss() { "$@" -v 2>&1 >/dev/null | sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' | tail -1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# The lock and the run state live where they do on a router or a Debian
# host: in a tmpfs (/var/run, /run), here /dev/shm when it is one, else
# $WORK (a disk here: ext4 starts writeback of a file renamed over another).
RUN=$WORK
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
	RUN=$(mktemp -d /dev/shm/connroute-bench.XXXXXX 2>/dev/null); then
	trap 'cleanup; rm -rf "$RUN"' EXIT
else
	RUN=$WORK
fi
# connroute's command line inside namespace NS (lock and run state in
# $RUN, allocations in $WORK): a string for ns_bench. BIN defaults to
# $CONNROUTE.
crc() { echo "${BIN:-$CONNROUTE} --lock $RUN/lock-$1 --ids $WORK/ids-$1 --state $RUN/state-$1 --no-rt-tables --syslog $WORK/no-syslog"; }
# lib.sh's `cr` with the same files.
# shellcheck disable=SC2046
cr() { local n=$1; shift; in_ns "$n" $(crc "$n") "$@"; }
# recipe_of CONF DIR: the hand-written equivalent of what connroute installs
# for CONF, one command per object as an admin's script would do it
# (`ip route replace` per route, `ip rule add fwmark … lookup` per gateway
# and family, one `nft -f` of the same table under another name), as
# DIR/recipe.sh, and DIR/clean.sh undoing it.
recipe_of() {
	local conf=$1 dir=$2
	mkdir -p "$dir"
	"$CONNROUTE" -c "$conf" render --format nft | sed '/^add table\|^delete table/d; s/table inet connroute/table inet recipe/' > "$dir/recipe.nft"
	"$CONNROUTE" -c "$conf" render --routes | awk -v nft="$dir/recipe.nft" -v clean="$dir/clean.sh" '
		BEGIN { print "#!/bin/sh"; print "nft delete table inet recipe" > clean }
		$2 == "route" || $3 == "route" { sub(/ proto 197$/, ""); sub(/ route /, " route replace "); print;
			t = $0; sub(/.* table /, "", t); f = ($2 == "-6") ? "-6 " : ""; print "ip " f "route flush table " t > clean }
		/ lookup [0-9]+ / && / fwmark / { f = ($2 == "-6") ? "-6 " : ""; m = $0; sub(/.* fwmark /, "", m); sub(/ .*/, "", m);
			t = $0; sub(/.* lookup /, "", t); sub(/ .*/, "", t);
			print "ip " f "rule add fwmark " m " lookup " t; print "ip " f "rule del fwmark " m " lookup " t > clean }
		END { print "nft -f " nft }' > "$dir/recipe.sh"
}

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
recipe_clean="ip rule del fwmark 0x1000000/0xff000000 lookup 200; ip route flush table 200; nft delete table inet recipe"
cr_clean="$(crc h) -c $CONF flush"
recipe="sh $WORK/recipe.sh"
connroute="$(crc h) -c $CONF apply"
# A changed config: one more rule.
{ cat "$CONF"; printf "\nconfig rule 'extra'\n\toption gateway 'router2'\n\tlist proto 'udp'\n\tlist dest_port '5353'\n"; } > "$WORK/changed.conf"

cr h -c "$CONF" apply >/dev/null 2>&1
[ "$(fetch c http://10.2.0.1/)" = "hello from h" ] || { echo "seed topology not working" >&2; exit 1; }
cr h -c "$CONF" flush >/dev/null 2>&1
in_ns h sh "$WORK/recipe.sh"
[ "$(fetch c http://10.2.0.1/)" = "hello from h" ] || { echo "recipe not working" >&2; exit 1; }
in_ns h sh -c "$recipe_clean"

floor_exec=$(time_runs "$RUNS" : "in_ns h true" | median)
clean="$recipe_clean; $cr_clean"
static=()
if [ -x "${CONNROUTE_STATIC:-}" ]; then
	static=(cs "$clean" "$(BIN=$CONNROUTE_STATIC crc h) -c $CONF apply"
		ws "$recipe_clean; $(BIN=$CONNROUTE_STATIC crc h) -c $CONF apply" "$(BIN=$CONNROUTE_STATIC crc h) -c $CONF apply")
fi
load_seed=$(loadavg)
ns_bench h "$SEED_RUNS" \
	recipe "$clean" "$recipe" \
	cold "$clean" "$connroute" \
	warm "$recipe_clean; $connroute" "$connroute" \
	"${static[@]}" \
	nft "$clean" "nft -f $WORK/recipe.nft" \
	true : /bin/true \
	force "$recipe_clean; $connroute" "$connroute --force" \
	changed "$recipe_clean; $connroute" "$(crc h) -c $WORK/changed.conf apply" > "$WORK/seed.times"
load_seed="$load_seed → $(loadavg)"
in_ns h sh -c "$clean" >/dev/null 2>&1 || true
for l in recipe cold warm cs ws nft true force changed; do
	declare "t_$l=$(pick "$l" < "$WORK/seed.times")"
done
for l in cold warm cs ws; do
	declare "p_$l=$(paired "$l" recipe < "$WORK/seed.times")"
done
p_changed=$(paired changed force < "$WORK/seed.times")
[ ${#static[@]} -gt 0 ] || t_cs=
echo "apply: connroute cold $(ms "$t_cold") ms, unchanged $(ms "$t_warm") ms, recipe $(ms "$t_recipe") ms (load $load_seed)" >&2

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
scaling=""; growth=""
for n in 1 10 100 250; do
	gen "$n" > "$WORK/gw$n.conf"
	recipe_of "$WORK/gw$n.conf" "$WORK/rc$n"
	render=$(time_runs "$RUNS" : "$CONNROUTE -c $WORK/gw$n.conf render" | median)
	c="$(crc s) -c $WORK/gw$n.conf"
	# The recipe uses connroute's routing tables, and any command may come
	# right after it: connroute's setups remove it first (its clean.sh also
	# removes connroute's routes and rules from those tables, so the
	# unchanged run's setup is an apply that puts them back, untimed).
	both="sh $WORK/rc$n/clean.sh; $c flush"
	l0=$(loadavg)
	ns_bench s 5 \
		recipe "$both" "sh $WORK/rc$n/recipe.sh" \
		nft "nft delete table inet recipe" "nft -f $WORK/rc$n/recipe.nft" \
		cold "$both" "$c apply" \
		warm "sh $WORK/rc$n/clean.sh; $c apply" "$c apply" > "$WORK/gw$n.times"
	for l in recipe nft cold warm; do declare "g_$l=$(pick "$l" < "$WORK/gw$n.times")"; done
	cmds=$(grep -c . "$WORK/rc$n/recipe.sh")
	growth+="| $n | $(ms "$g_recipe") ms ($((cmds - 1)) commands) | $(ms "$g_cold") ms | $(ratio "$g_cold" "$g_recipe") | $(ms "$g_warm") ms | $(ratio "$g_warm" "$g_recipe") | $(ms "$g_nft") ms | $(ms "$render") ms | $l0 → $(loadavg) |"$'\n'
	pre=$(chain_rules prerouting); cls=$(chain_rules classify)
	routes=$(in_ns s sh -c 'ip -4 route show table all proto 197; ip -6 route show table all proto 197' | wc -l)
	rules=$(in_ns s sh -c 'ip -4 rule; ip -6 rule' | grep -c 'proto 197')
	unmarked=$(walk_rules 0); last=$(walk_rules $((n << 24)))
	scaling+="| $n | $pre | $cls | $routes | $rules | $unmarked | $last |"$'\n'
	echo "scaling $n: apply cold $(ms "$g_cold") ms, unchanged $(ms "$g_warm") ms, recipe $(ms "$g_recipe") ms; ip rules walked $unmarked/$last" >&2
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
	in_ns s nft delete table inet connroute; in_ns s nft delete table inet floor
	c="$(crc s) -c $WORK/r$n.conf"
	l0=$(loadavg)
	ns_bench s 3 cold "$c flush" "$c apply" warm "$c apply" "$c apply" > "$WORK/r$n.times"
	cold=$(pick cold < "$WORK/r$n.times"); warm=$(pick warm < "$WORK/r$n.times")
	rss=$(self_rss "$CONNROUTE" -c "$WORK/r$n.conf" --syslog /x render)
	rules_rows+="| $n | $(ms "$render") ms | $(ms "$load") ms | $(ms "$floor") ms | $(ratio "$load" "$floor") | $(ms "$cold") ms | $(ms "$warm") ms | $cls | $rss KiB | $l0 → $(loadavg) |"$'\n'
	echo "rules $n: nft load $(ms "$load") ms, apply cold $(ms "$cold") ms, unchanged $(ms "$warm") ms, classify $cls rules, RSS $rss KiB" >&2
	cr s -c "$WORK/r$n.conf" flush >/dev/null 2>&1
done
# Render memory: one rule with a 100,000-address list (2.6 MB config).
python3 - > "$WORK/a100k.conf" <<'PY'
t = "config gateway 'a'\n\toption gateway '10.128.0.2'\nconfig rule 'big'\n\toption gateway 'a'\n"
t += "".join("\tlist src_ip '10.%d.%d.%d'\n" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(100000))
print(t, end="")
PY
# Shapes that change every two rules: one run of the classify map (and its
# list written into the batch) per pair. Render time should grow with N,
# not N² (checking the whole batch text at every list made 40,000 such
# rules take 14.5 s).
gen_alternating() {
	python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
t = "config gateway 'a'\n\toption gateway '10.0.0.1'\n"
for i in range(n):
    t += "config rule\n\toption gateway 'a'\n"
    if (i // 2) % 2:
        t += "\tlist proto 'tcp'\n\tlist dest_port '%d'\n" % (i % 60000 + 1)
    else:
        t += "\tlist src_ip '10.%d.%d.%d'\n" % (i >> 16 & 255, i >> 8 & 255, i & 255)
print(t, end="")
PY
}
alternating=""
for n in 10000 40000; do
	gen_alternating "$n" > "$WORK/alt$n.conf"
	alternating+="$n: $(ms "$(time_runs 3 : "$CONNROUTE -c $WORK/alt$n.conf render" | median)") ms; "
done
rss_100k=$(self_rss "$CONNROUTE" -c "$WORK/a100k.conf" --syslog /x render)
rss_100k_config=$(self_rss "$CONNROUTE" -c "$WORK/a100k.conf" --syslog /x dump-config)

# ---- Target 4. Per-packet cost: bulk TCP through a router ------------------
# Two identical paths, tc{a,b} -- tr{a,b} -- ts{a,b}; the routers'
# rulesets vary. Both flows run at the same time, both clients on one core
# and both servers on the other. The clients' core runs the senders' TCP,
# the routers' forwarding of the data packets and the receivers' TCP input
# (all in the sender's softirq, charged to its client while the kernel
# does not account irq time apart), so bytes per second of a client's CPU
# time is the inverse of its path's cost per byte, and whatever slows this
# shared VM's core (a neighbour, the host) slows both flows at once. Run
# one after the other, 3 s runs of one path scattered 0.62-1.47 against
# each other (bench/results.md at 80c0dcd, a run of 6111d04); at the same
# time, the control's 10 rounds of 2 × 2 s spanned 0.955-1.064
# (bench/results.md at f472e15, a run of 46ad446).
[ "${BENCH_IPERF_ROUNDS:-10}" -ge 1 ] || { echo "bench: BENCH_IPERF_ROUNDS must be 1 or more" >&2; exit 1; }
add_ns tca tra tsa tcb trb tsb
# The first two CPUs this process may use (a cpuset may leave out 0 or 1).
read -r cpu_a cpu_b < <(awk '/^Cpus_allowed_list:/ { n = split($2, r, ","); for (i = 1; i <= n; i++) {
	m = split(r[i], b, "-"); for (c = b[1]; c <= (m > 1 ? b[2] : b[1]); c++) printf "%d ", c } } END { print "" }' /proc/self/status)
pin_server=() pin_client=()
if [ -n "${cpu_b:-}" ] && command -v taskset >/dev/null; then
	pin_server=(taskset -c "$cpu_b") pin_client=(taskset -c "$cpu_a")
fi
# path_links P: path P's two links and its addresses and routes (the
# namespaces exist).
path_links() {
	link "tc$1" eth0 "tr$1" in0
	link "tr$1" out0 "ts$1" eth0
	in_ns "tc$1" ip addr add 10.10.0.2/24 dev eth0; in_ns "tc$1" ip route add default via 10.10.0.1
	in_ns "tr$1" ip addr add 10.10.0.1/24 dev in0; in_ns "tr$1" ip addr add 10.20.0.1/16 dev out0
	in_ns "ts$1" ip addr add 10.20.0.2/16 dev eth0; in_ns "ts$1" ip route add default via 10.20.0.1
}
for p in a b; do
	path_links "$p"
	# A flow starts without what earlier flows through other rulesets
	# left in the TCP metrics cache (ssthresh, RTT).
	in_ns "tc$p" sysctl -qw net.ipv4.tcp_no_metrics_save=1
	in_ns "ts$p" sysctl -qw net.ipv4.tcp_no_metrics_save=1
	in_ns "ts$p" "${pin_server[@]}" iperf3 -s -D >/dev/null
done
# Packets router a received on in0 (data) and on out0 (ACKs), and bytes
# on in0, summed over its lives (fresh_router starts it anew).
rx() { in_ns tra cat "/sys/class/net/$1/statistics/rx_$2"; }
# count_router_a [-1]: adds router a's counters to the sums (or, with -1,
# takes them off). Each read on its own line: a failed one stops the bench
# (inside $(( )) it would not).
count_router_a() {
	local f=${1:-1} p b a
	p=$(rx in0 packets); b=$(rx in0 bytes); a=$(rx out0 packets)
	in_p=$((in_p + f * p)) in_b=$((in_b + f * b)) ack=$((ack + f * a))
}
# fresh_router P: router P as a namespace that never had an ip rule, with
# new links to its client and server. Once a network namespace has had an
# IPv4 ip rule, until it is deleted, its kernel walks the rules for every
# forwarded packet (fib_has_custom_rules is never cleared; the local and
# main tables stay split) and checks the packet's source with a second,
# reverse lookup through them (even with rp_filter off), also after the
# rule is gone: a router that once had connroute's rules would time "no
# ruleset" with part of their cost. Deleting a link end deletes its pair
# at once (a namespace's devices go asynchronously), so the names are
# free for the new links.
fresh_router() {
	[ "$1" != a ] || count_router_a
	{ in_ns "tr$1" ip link del in0 && in_ns "tr$1" ip link del out0 &&
		ip netns del "$(ns "tr$1")" && add_ns "tr$1" && path_links "$1"; } > "$WORK/fresh.log" 2>&1 ||
		{ echo "bench: making router tr$1 anew failed:" >&2; cat "$WORK/fresh.log" >&2; exit 1; }
}
# links_up: waits (up to 5 s) until every end of both paths' links is up,
# then 0.3 s more for the neighbours and the new namespaces' teardown.
links_up() {
	local p nd n d i
	for p in a b; do
		for nd in "tc$p eth0" "tr$p in0" "tr$p out0" "ts$p eth0"; do
			read -r n d <<<"$nd"
			for i in $(seq 50); do
				[ "$(in_ns "$n" cat "/sys/class/net/$d/operstate")" != up ] || continue 2
				sleep 0.1
			done
			echo "bench: link $d in $n did not come up" >&2; exit 1
		done
	done
	sleep 0.3
}
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
tput_conf 1 5201 > "$WORK/p1.conf"; tput_conf 1 5202 > "$WORK/u1.conf"
tput_conf 250 5202 > "$WORK/u250.conf"; tput_conf 250 5201 > "$WORK/p250.conf"
# ct: conntrack on and nothing else (one `ct state` rule), as on any
# router that NATs: connroute's restore needs the connection's mark.
ct_table='table inet ctonly { chain pre { type filter hook prerouting priority -150; policy accept; ct state new counter; }; }'
# ctrule: conntrack and one `ip rule fwmark … lookup` that no packet here
# matches: the least a router that routes by connection marks with ip
# rules pays (with a first IPv4 ip rule, see fresh_router, every
# forwarded packet takes two lookups through the rules).
one_rule=(fwmark 0x1000000/0xff000000 lookup 6000 pref 6000)
# classic: what connroute replaces, one `ip rule … fwmark … lookup` per
# gateway (250, no packet marked), each tested in turn before main.
classic() { local i; for i in $(seq 1 250); do echo "rule $1 fwmark $((i << 8)) lookup $((1000 + i)) pref $((1000 + i))"; done | in_ns "$2" ip -batch -; }
# A router's ip rules and ruleset with nothing installed, to compare with
# after every run: each removal (connroute's flush among them) must leave
# the router as it found it. The timing no longer depends on it (every
# half starts on new routers); the check does.
router_state() { in_ns "$1" ip -4 rule show; in_ns "$1" ip -6 rule show 2>&1 || true; in_ns "$1" nft list ruleset; }
for r in tra trb; do router_state "$r" > "$WORK/$r.clean"; done
# ruleset_on / ruleset_off ROUTER CASE; what the commands print goes to
# $WORK/ruleset.log, shown when one fails.
ruleset_on() {
	case $2 in
	none) ;;
	ct) in_ns "$1" nft -f - <<<"$ct_table" ;;
	ctrule) in_ns "$1" nft -f - <<<"$ct_table" && in_ns "$1" ip rule add "${one_rule[@]}" ;;
	classic) classic add "$1" ;;
	*) cr "$1" -c "$WORK/$2.conf" apply ;;
	esac > "$WORK/ruleset.log" 2>&1 || { echo "bench: installing '$2' on router $1 failed:" >&2; cat "$WORK/ruleset.log" >&2; exit 1; }
}
ruleset_off() {
	case $2 in
	none) ;;
	ct) in_ns "$1" nft delete table inet ctonly ;;
	ctrule) in_ns "$1" nft delete table inet ctonly && in_ns "$1" ip rule del "${one_rule[@]}" ;;
	classic) classic del "$1" ;;
	*) cr "$1" -c /dev/null flush ;;
	esac > "$WORK/ruleset.log" 2>&1 || { echo "bench: removing '$2' from router $1 failed:" >&2; cat "$WORK/ruleset.log" >&2; exit 1; }
	router_state "$1" > "$WORK/$1.now"
	if ! cmp -s "$WORK/$1.clean" "$WORK/$1.now"; then
		echo "bench: router $1 kept ip rules or a ruleset after '$2':" >&2
		diff "$WORK/$1.clean" "$WORK/$1.now" >&2 || true
		exit 1
	fi
}
# flows P Q: both clients at once for BENCH_SECONDS (a started first,
# whatever the order asked); writes "BYTES CPU_SECONDS" of path P's client,
# then Q's, to $WORK/flows (bytes the server received; the client's own
# CPU time, from its getrusage). iperf3 -J exits 0 when a test fails, so
# its "error" field is checked too.
flows() {
	local p pids=() failed="" k0 t0 k1 t1
	k0=$(ks_time); t0=$(now_us)
	for p in a b; do
		# Bounded: a server that stops answering must not hold the bench.
		in_ns "tc$p" timeout $((${BENCH_SECONDS:-2} + 30)) "${pin_client[@]}" iperf3 -c 10.20.0.2 -t "${BENCH_SECONDS:-2}" -J > "$WORK/flow-$p.json" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || failed=1; done
	[ -z "$failed" ] || { echo "bench: iperf3 failed or ran past its time" >&2; exit 1; }
	k1=$(ks_time); t1=$(now_us)
	ks_sum=$((ks_sum + k1 - k0)) flow_us=$((flow_us + t1 - t0))
	python3 - "$WORK/flow-$1.json" "$WORK/flow-$2.json" > "$WORK/flows" <<-'PY' || exit 1
		import json, sys
		out = []
		for f in sys.argv[1:]:
		    j = json.load(open(f))
		    e = j.get("end", {})
		    if "error" in j or "bytes" not in e.get("sum_received", {}):
		        sys.exit("bench: iperf3 failed (%s): %s" % (f, j.get("error", "no end.sum_received")))
		    out += [e["sum_received"]["bytes"], e["cpu_utilization_percent"]["host_total"] / 100 * e["sum_sent"]["seconds"]]
		print(*out)
	PY
}
# compare X Y: BENCH_IPERF_ROUNDS rounds; a round runs X on router a
# against Y on b, then the other way round (which half comes first
# alternates). Appends, per round, the geometric mean of the two halves'
# ratios of X to Y (a constant difference between the paths cancels) of:
# bytes per CPU-second of their clients, bytes, and the clients' CPU
# time, to $WORK/rounds ("PER_CPU BYTES CPU"), and X's and Y's Gbit/s
# to gbit["X Y:x"] and gbit["X Y:y"].
declare -A gbit
gbps() { awk -v a="$1" -v t="${BENCH_SECONDS:-2}" 'BEGIN { printf "%.2f", a * 8 / t / 1e9 }'; } # BYTES of one flow
compare() {
	local x=$1 y=$2 r h xp yp xb xc yb yc v
	for r in $(seq 1 "${BENCH_IPERF_ROUNDS:-10}"); do
		v="1 1"
		for h in $((r % 2)) $((1 - r % 2)); do
			# X's path and Y's: a and b in the first half, b and a after.
			if [ "$h" = 0 ]; then xp=a yp=b; else xp=b yp=a; fi
			fresh_router a; fresh_router b; links_up
			ruleset_on "tr$xp" "$x"; ruleset_on "tr$yp" "$y"
			flows "$xp" "$yp"; read -r xb xc yb yc < "$WORK/flows"
			ruleset_off "tr$xp" "$x"; ruleset_off "tr$yp" "$y"
			v=$(awk -v v="$v" -v a="$xb" -v b="$yb" -v c="$xc" -v d="$yc" 'BEGIN {
				if (a <= 0 || b <= 0 || c <= 0 || d <= 0) exit 1
				split(v, p, " "); printf "%.17g %.17g", p[1] * a / b, p[2] * c / d }') ||
				{ echo "bench: a flow moved no bytes or used no CPU ($x against $y, round $r: $xb $xc $yb $yc)" >&2; exit 1; }
			gbit["$x $y:x"]+="$(gbps "$xb") "
			gbit["$x $y:y"]+="$(gbps "$yb") "
		done
		awk -v v="$v" 'BEGIN { split(v, p, " "); printf "%.4f %.4f %.4f\n", sqrt(p[1] / p[2]), sqrt(p[1]), sqrt(p[2]) }' >> "$WORK/rounds"
	done
}
# The rows: X, Y, what X is, against what, the issue's target (against
# no ruleset only: that is how the issue states it).
pairs=(
	"none none|no ruleset|no ruleset (the method's own scatter)|"
	"ct none|conntrack only (one \`ct state\` rule)|no ruleset|"
	"ctrule none|conntrack and one \`ip rule fwmark … lookup\`: the floor|no ruleset|"
	"u250 none|250 gateways, traffic unmarked|no ruleset|≥ 0.95"
	"p250 none|250 gateways, traffic pinned to the last|no ruleset|≥ 0.9"
	"u250 ctrule|250 gateways, traffic unmarked|the floor|"
	"p250 ctrule|250 gateways, traffic pinned to the last|the floor|"
	"u250 u1|250 gateways, traffic unmarked|1 gateway, unmarked|"
	"p250 p1|250 gateways, traffic pinned to the last|1 gateway, pinned|"
	"classic none|250 \`ip rule … fwmark … lookup\`, one per gateway (no connroute; what it replaced)|no ruleset|"
)
# What the clients' core did besides the clients: ksoftirqd's CPU time
# there (work one flow's softirq may do for the other); and the packets
# router a forwarded, data (in0) and ACKs (out0).
ksoftirqd=$(pgrep -x "ksoftirqd/${cpu_a:-0}" || true)
ks_time() { if [ -n "$ksoftirqd" ]; then awk '{ print $14 + $15 }' "/proc/$ksoftirqd/stat"; else echo 0; fi; }
irq_time=$({ zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null || true; } |
	awk '/^CONFIG_IRQ_TIME_ACCOUNTING=/ { sub(/.*=/, ""); v = $0 } /^# CONFIG_IRQ_TIME_ACCOUNTING is not set/ { v = "off" }
		/^CONFIG_/ { seen = 1 } END { print v != "" ? v : seen ? "off" : "unknown (no kernel config found)" }')
tput_rows=""
load_tput="$(loadavg) →"
# ksoftirqd's CPU time while the flows ran, and how long they ran.
ks_sum=0 flow_us=0
# The sums start at minus what router a has counted so far.
in_p=0 in_b=0 ack=0
count_router_a -1
for row in "${pairs[@]}"; do
	IFS='|' read -r xy what against target <<<"$row"
	read -r x y <<<"$xy"
	: > "$WORK/rounds"
	compare "$x" "$y"
	if ! per_cpu=$(cut -d' ' -f1 "$WORK/rounds" | median_ci) ||
		! bytes=$(cut -d' ' -f2 "$WORK/rounds" | median_ci); then
		echo "bench: no rounds for '$what' against '$against'" >&2
		exit 1
	fi
	each=$(cut -d' ' -f1 "$WORK/rounds" | awk '{ printf "%s%.3f", (NR > 1 ? " " : ""), $1 }')
	cpu=$(cut -d' ' -f3 "$WORK/rounds" | median | awk '{ printf "%.3f", $1 }')
	range=$(cut -d' ' -f1 "$WORK/rounds" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f–%.3f", lo, hi }')
	tput_rows+="| $what | $against | $per_cpu | $target | $bytes | $cpu | $range | $each |
"
	echo "throughput: $what against $against: $per_cpu per CPU-second, $bytes in bytes" >&2
done
count_router_a
load_tput+=" $(loadavg)"
# ksoftirqd's share of the clients' core while the flows ran, in %.
ks_share=$(awk -v k="$ks_sum" -v hz="$(getconf CLK_TCK)" -v us="$flow_us" 'BEGIN { printf "%.1f", k / hz * 1e6 / us * 100 }')
skb_kb=$(awk -v b="$in_b" -v p="$in_p" 'BEGIN { printf "%.0f", p ? b / p / 1000 : 0 }')
ack_share=$(awk -v a="$ack" -v p="$in_p" 'BEGIN { printf "%.0f", a + p ? a / (a + p) * 100 : 0 }')
tmed() { tr ' ' '\n' <<<"${gbit[$1]}" | grep . | median | awk '{ printf "%.2f", $1 }'; }
method_warn=""
[ "$irq_time" != y ] || method_warn+=" **This kernel accounts irq time apart (CONFIG_IRQ_TIME_ACCOUNTING=y): the forwarding is then not charged to its client, and these ratios are not reliable.**"
awk -v s="$ks_share" 'BEGIN { exit !(s > 10) }' && method_warn+=" **ksoftirqd took more than 10% of the clients' core: part of the forwarding was done for both flows at once, and these ratios are not reliable.**"

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
# Apply at 10,000 rules (cold, unchanged, a rule added, removed): bench/memory.sh.
apply10k() { bash "$TOP/bench/memory.sh" "$1" 100 10000 | awk '/apply,/ { sub(/^rules +apply, /, ""); printf "%s%s %s KiB", sep, $1, $4; sep = ", " }'; }
mem_glibc=$(apply10k "$CONNROUTE")
mem_static="(no static build)"
[ -x "$STATIC" ] && mem_static=$(apply10k "$STATIC")
sizes="(run \`make cross\` first for the router targets)"
[ -f "$TOP/dist/sizes.md" ] && sizes=$(cat "$TOP/dist/sizes.md")

{
	echo "# connroute benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d), $(uname -m), $(nproc) cores, kernel $(uname -r),"
	echo "$(nft --version), commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null). Load average (1, 5, 15 min)"
	echo "before → after each measurement is given with it: the machine may be shared."
	echo
	echo "Method: each latency table is timed by one shell inside the namespace"
	echo "(\`ip netns exec NS bash\` running the loop, \`EPOCHREALTIME\` around each command),"
	echo "the same way for connroute and its baseline, interleaved run by run in an order"
	echo "that changes every round (each command follows each other one equally often); times"
	echo "include starting the processes (connroute and its \`nft\`; the recipe's \`sh\`,"
	echo "\`ip\` and \`nft\`). Entering the namespace is not included: it is test"
	echo "scaffolding no router pays (\`ip netns exec NS true\`, timed from outside:"
	echo "$(ms "$floor_exec") ms here). connroute's lock and run state are in a tmpfs"
	echo "($([ "$RUN" = "$WORK" ] && echo "not here: none found; on disk" || echo "/dev/shm")), as /var/run is on OpenWrt and /run on Debian."
	echo
	echo "## Targets 1-3. Apply latency, seed config"
	echo
	echo "Baseline: the seed's recipe, 3 commands in a \`sh\` script (\`ip route replace … table 200\`,"
	echo "\`ip rule add fwmark …\`, one \`nft -f\` of the same ruleset). Floors: one \`nft -f\`"
	echo "adding the recipe's table (the one transaction any way of doing it pays):"
	echo "$(ms "$t_nft") ms; starting a process that does nothing (\`/bin/true\`): $(ms "$t_true") ms."
	echo "Medians of $SEED_RUNS rounds; load $load_seed. Ratio: of the two medians. Paired: the"
	echo "median of each round's own ratio (connroute over the baseline timed in the same round), with"
	echo "its 95% interval from resampling the rounds."
	echo
	echo "| | connroute | baseline | ratio | paired (95%) | floor | target |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "| 1. cold (nothing installed) | $(ms "$t_cold") ms | $(ms "$t_recipe") ms | $(ratio "$t_cold" "$t_recipe") | $p_cold | $(ms "$t_nft") ms | ≤ 0.7 |"
	echo "| 2. re-apply, nothing changed | $(ms "$t_warm") ms | $(ms "$t_recipe") ms | $(ratio "$t_warm" "$t_recipe") | $p_warm | $(ms "$t_true") ms | ≤ 0.3 |"
	if [ -n "$t_cs" ]; then
		echo "| 1. cold, static musl build (as on routers) | $(ms "$t_cs") ms | $(ms "$t_recipe") ms | $(ratio "$t_cs" "$t_recipe") | $p_cs | $(ms "$t_nft") ms | ≤ 0.7 |"
		echo "| 2. unchanged, static musl build | $(ms "$t_ws") ms | $(ms "$t_recipe") ms | $(ratio "$t_ws" "$t_recipe") | $p_ws | $(ms "$t_true") ms | ≤ 0.3 |"
	fi
	echo "| 3. one rule added | $(ms "$t_changed") ms | $(ms "$t_force") ms (\`--force\`, full replace) | $(ratio "$t_changed" "$t_force") | $p_changed | $(ms "$t_nft") ms | < 1 |"
	echo
	echo "What bounds these: a cold apply is two process starts (connroute, then one \`nft -j -f -\`"
	echo "with an add-only batch) against the recipe's four (\`sh\`, \`ip\`, \`ip\`, \`nft\`); the"
	echo "\`nft\` floor is most of it (nft's own start with its shared libraries, its cache fetch"
	echo "and the commit). An unchanged apply starts no \`nft\`: one process start (the \`/bin/true\`"
	echo "floor; a dynamic glibc binary starts slower than the static one), reading the config,"
	echo "planning, one dump of routes and of ip rules, and two nfnetlink requests (does the table"
	echo "exist, the ruleset generation)."
	echo
	echo "## Targets 1-2 at scale: N gateways"
	echo
	echo "N gateways, 4 rules each (IPv4 and IPv6). Baseline: the same routes, one"
	echo "\`ip rule add fwmark … lookup\` per gateway and family and one \`nft -f\` of the same"
	echo "table, one command each in a \`sh\` script (made from \`connroute render --routes\`"
	echo "and \`--format nft\`). Floor: that \`nft -f\` alone. Medians of 5 rounds."
	echo
	echo "| N | baseline | connroute cold | ratio | connroute unchanged | ratio | floor | render (no kernel) | load |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	printf '%s' "$growth"
	echo
	echo "## Target 4. Per-packet cost: ip rules walked"
	echo
	echo "The configs above. The last two columns walk the"
	echo "live \`ip -4 rule\` list as the kernel does: how many of connroute's rules an"
	echo "unmarked packet and a packet pinned to the last gateway are tested against"
	echo "(target: 2, and ≤ 2·log2(N)+4)."
	echo
	echo "| N | rules in \`prerouting\` (every packet) | rules in \`classify\` (new connections) | routes | ip rules | ip rules walked, unmarked | ip rules walked, pinned |"
	echo "|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s' "$scaling"
	echo
	echo "Bulk TCP through a router namespace (iperf3): two identical paths, client -- router -- server, their flows at the same time$([ ${#pin_client[@]} -gt 0 ] && echo ", both clients on one core and both servers on the other"), so that what slows this shared machine slows both. A round runs X on one router and Y on the other, then the other way round (${BENCH_IPERF_ROUNDS:-10} rounds × 2 × ${BENCH_SECONDS:-2} s), each half on routers made anew (a router that once had connroute's rules would time \"no ruleset\" with part of their cost: see the floor, below); its value is the geometric mean of the two halves' ratios (a constant difference between the paths cancels). The median over rounds, with its 95% interval from resampling them. Ratio per CPU-second: X's bytes per second of its client's CPU time over Y's, the inverse of the cost per byte on the clients' core (the senders' TCP, the routers' forwarding of the data packets and the receivers' TCP input, charged to each client: this kernel's CONFIG_IRQ_TIME_ACCOUNTING is ${irq_time:-unknown}, and ksoftirqd, which may work for both flows, took ${ks_share}% of that core while the flows ran). Bytes: the plain ratio, which the scheduler may compress (a costlier client can get more of the core while the other one waits). What this does not see: the ACKs (${ack_share}% of the packets router a forwarded) are forwarded on the servers' core, which has time to spare; and veth hands the router GSO packets of ${skb_kb} KB on average, so a cost per packet weighs far less than with packets of one MTU. Each flow moved $(tmed "none none:x") Gbit/s in the control row; in the row of 250 gateways, unmarked, against no ruleset, $(tmed "u250 none:x") through connroute's router and $(tmed "u250 none:y") through the other (medians; load $load_tput).${method_warn}"
	echo
	echo "The issue's targets are against no ruleset. Conntrack alone is timed first: connroute's restore and classify need the connection's mark, and every router that NATs runs conntrack already. The floor adds one ip rule that no packet matches: it is what a router that routes by connection marks with ip rules pays before any work of its own. Once a network namespace has an IPv4 ip rule, the kernel routes every forwarded packet through the rules (its local table looked up apart) and checks the packet's source with a second, reverse lookup through them; without one, it looks up the merged main table once and checks the source against local addresses. This lasts as long as the namespace, even after the rule is deleted. The rows against the floor show connroute's own cost above it."
	echo
	echo "| X | against Y | ratio per CPU-second (95%) | target | ratio in bytes (95%) | X's client CPU over Y's | lowest–highest round, per CPU-second | rounds, per CPU-second |"
	echo "|---|---|---:|---:|---:|---:|---|---|"
	printf '%s' "$tput_rows"
	echo
	echo "## Target 5. Rules at scale: N same-shape config rules (host address + tcp port, 2 gateways)"
	echo
	echo "Loading: \`nft -j -f\` of the rendered batch (with its \`delete table\`) into a fresh namespace (medians of 3,"
	echo "each through \`ip netns exec\`); floor: nft loading N bare named counters. Apply: connroute"
	echo "itself, cold (nothing installed; an add-only batch) and unchanged, timed inside the namespace"
	echo "(medians of 3). RSS: connroute's own peak for \`render\` (host glibc build)."
	echo
	echo "| rules | render | nft load | floor | ratio | apply, cold | apply, unchanged | rules in \`classify\` | connroute peak RSS | load |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	printf '%s' "$rules_rows"
	echo
	echo "Targets: 10,000 rules load in ≤ 5 s; classify ≤ a few dozen rules; peak RSS ≤ 16 MiB."
	echo "A 100,000-address list (one rule, 2.6 MB config): render peak RSS $rss_100k KiB"
	echo "(target < 40 MB; reading the config alone, \`dump-config\`: $rss_100k_config KiB)."
	echo "Rules whose shape changes every two rules (one map run and list per pair), render: ${alternating%; }."
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
	echo "Apply with the 10,000-rule config (\`bench/memory.sh\`: cold, unchanged, one rule added, removed), connroute's own peak RSS:"
	echo
	echo "- static musl build: $mem_static"
	echo "- host glibc build: $mem_glibc"
	echo
	echo "Host binary: $(wc -c < "$CONNROUTE") bytes. Router targets (\`make cross\`):"
	echo
	echo "$sizes"
} > "$OUT"
cat "$OUT"
finish

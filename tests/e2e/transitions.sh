#!/usr/bin/env bash
# ip rule transitions in the real kernel: while apply moves between gateway
# sets (added, removed, renamed, explicit marks, 1 to 30 gateways), a
# sampler asks the kernel for the route of a packet with every mark, as
# fast as it can (RTM_GETROUTE with RTA_MARK, answered through the policy
# rules). Every answer must be the table the old or the new config routes
# that mark to: never another gateway's table, never a wrong fallthrough.
. "$(dirname "$0")/lib.sh"
setup_cleanup
add_ns r
in_ns r ip link add lan type veth peer name lanp
in_ns r ip link set lan up
in_ns r ip link set lanp up
in_ns r ip addr add 10.0.0.1/16 dev lan
in_ns r ip route add default via 10.0.255.254

cat > "$WORK/sample.py" <<'PY'
# sample.py MARKS STOP: the tables the kernel answers for each mark,
# until STOP exists (one pass when STOP is "-").
import os, socket, struct, sys
marks = [int(m, 0) for m in sys.argv[1].split(",")]
stop = sys.argv[2]
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
def ask(mark, seq):
    rtm = struct.pack("BBBBBBBBI", socket.AF_INET, 32, 0, 0, 0, 0, 0, 0, 0x1000)  # RTM_F_LOOKUP_TABLE
    attrs = struct.pack("HH", 8, 1) + socket.inet_aton("198.51.100.7")  # RTA_DST
    attrs += struct.pack("HHI", 8, 16, mark)  # RTA_MARK
    body = rtm + attrs
    s.send(struct.pack("IHHII", 16 + len(body), 26, 1, seq, 0) + body)  # RTM_GETROUTE
    d = s.recv(65536)
    length, kind = struct.unpack_from("IH", d, 0)
    if kind == 2:  # NLMSG_ERROR
        return "err%d" % -struct.unpack_from("i", d, 16)[0]
    table, off = d[20], 28
    while off + 4 <= length:
        alen, atype = struct.unpack_from("HH", d, off)
        if alen < 4:
            break
        if atype == 15:  # RTA_TABLE
            table = struct.unpack_from("I", d, off + 4)[0]
        off += (alen + 3) & ~3
    return str(table)
seen = {m: set() for m in marks}
seq = samples = 0
while True:
    for m in marks:
        seq += 1
        seen[m].add(ask(m, seq))
        samples += 1
    if stop == "-" or os.path.exists(stop):
        break
print(samples)
for m in marks:
    print("%#x %s" % (m, " ".join(sorted(seen[m]))))
PY
cat > "$WORK/trace.py" <<'PY'
# trace.py MARKS STOP: replays every IPv4 rule the kernel adds or deletes
# (rtnetlink rule events, in order) on a dump taken first, and after each
# one walks the list as the kernel does (goto: the first rule of exactly
# that priority, none: skipped) for each mark; prints the tables reached,
# like sample.py. Gateway tables always answer (a default route); main
# answers when not suppressed.
import os, socket, struct, sys
marks = [int(m, 0) for m in sys.argv[1].split(",")]
stop = sys.argv[2]
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 1 << 7))  # RTNLGRP_IPV4_RULE (8)
def rule(d, off, length):
    fam, _, _, _, table, _, _, action, flags = struct.unpack_from("BBBBBBBBI", d, off + 16)
    r = {"action": action, "invert": bool(flags & 2), "table": table, "mark": 0, "mask": 0,
         "prio": 0, "goto": 0, "suppress": False}
    o = off + 28
    while o + 4 <= off + length:
        alen, atype = struct.unpack_from("HH", d, o)
        if alen < 4:
            break
        v = struct.unpack_from("I", d, o + 4)[0] if alen >= 8 else 0
        key = {6: "prio", 10: "mark", 16: "mask", 4: "goto", 15: "table"}.get(atype)
        if key:
            r[key] = v
        if atype == 14:
            r["suppress"] = v == 0
        o += (alen + 3) & ~3
    if r["mark"] and not r["mask"]:
        r["mask"] = 0xFFFFFFFF
    return r
def messages(d):
    off = 0
    while off + 16 <= len(d):
        length, kind = struct.unpack_from("IH", d, off)
        yield off, length, kind
        off += (length + 3) & ~3
rules, done = [], False
s.send(struct.pack("IHHII", 28, 34, 0x301, 1, 0) + struct.pack("BBBBBBBBI", socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0))
while not done:
    d = s.recv(1 << 20)
    for off, length, kind in messages(d):
        if kind == 3:
            done = True
        elif kind == 32:
            rules.append(rule(d, off, length))
open(stop + ".ready", "w").close()
def walk(mark):
    i = 0
    while i < len(rules):
        r = rules[i]
        i += 1
        if (((mark ^ r["mark"]) & r["mask"]) == 0) == r["invert"]:
            continue
        if r["action"] == 2:
            j = next((k for k, x in enumerate(rules) if x["prio"] == r["goto"]), None)
            if j is not None:
                i = j
        elif r["action"] == 1 and r["table"] not in (254, 255) and r["table"] != 253:
            return str(r["table"])
        elif r["action"] == 1 and r["table"] == 254 and not r["suppress"]:
            return "254"
    return "none"
seen = {m: set() for m in marks}
def record():
    for m in marks:
        seen[m].add(walk(m))
record()
states = 1
s.settimeout(0.05)
while True:
    try:
        d = s.recv(1 << 20)
    except socket.timeout:
        if os.path.exists(stop):
            break
        continue
    for off, length, kind in messages(d):
        if kind not in (32, 33):
            continue
        r = rule(d, off, length)
        if kind == 32:
            at = max([k + 1 for k, x in enumerate(rules) if x["prio"] <= r["prio"]], default=0)
            rules.insert(at, r)
        else:
            rules.remove(next(x for x in rules if x == r))
        record()
        states += 1
print(states)
for m in marks:
    print("%#x %s" % (m, " ".join(sorted(seen[m]))))
PY
MARKS=$(python3 -c 'print(",".join(hex(i << 24) for i in range(0, 12)))')
sample_once() { in_ns r python3 "$WORK/sample.py" "$MARKS" - | tail -n +2; }

conf() { # NAME SPEC...: gateways NAME:[MARK] on lan
	local f="$WORK/$1.conf" g i=2; shift
	: > "$f"
	for g in "$@"; do
		printf "config gateway '%s'\n\toption gateway '10.0.1.%d'\n" "${g%%:*}" "$i" >> "$f"
		[ "${g#*:}" != "$g" ] && printf "\toption mark '%s'\n" "${g#*:}" >> "$f"
		i=$((i + 1))
	done
	echo "$f"
}
seq_names() { local i; for i in $(seq "$1" "$2"); do printf "g%d " "$i"; done; }
# shellcheck disable=SC2046
configs=(
	"$(conf c1 g1 g2 g3)"
	"$(conf c2 $(seq_names 1 8))"
	"$(conf c3 g1 g3 g4 g6 g7:0x20000000 g8 h1)"
	"$(conf c4 $(seq_names 1 30))"
	"$(conf c5 g9)"
	"$(conf c6 h2:0x09000000 g1 g2 g3)"
	"$(conf c7 $(seq_names 1 8))"
	"$(conf c8 g1 g2 g3)"
	"$(conf c9 $(seq_names 1 8))"
	"$(conf c10 g1 g2 g3)"
	"$(conf c11 $(seq_names 1 8))"
)

expect_ok "first apply" cr r -c "${configs[0]}" apply
before=$(sample_once)
total=0 states=0
for i in $(seq 1 $((${#configs[@]} - 1))); do
	c=${configs[$i]}
	rm -f "$WORK/stop" "$WORK/stop.ready"
	in_ns r python3 "$WORK/sample.py" "$MARKS" "$WORK/stop" > "$WORK/during" &
	sampler=$!
	in_ns r python3 "$WORK/trace.py" "$MARKS" "$WORK/stop" > "$WORK/traced" &
	tracer=$!
	for _ in $(seq 1 50); do [ -e "$WORK/stop.ready" ] && break; sleep 0.1; done
	cr r -c "$c" apply >/dev/null 2>&1 || fail "apply $(basename "$c")"
	sleep 0.1
	touch "$WORK/stop"
	wait "$sampler" "$tracer"
	after=$(sample_once)
	total=$((total + $(head -1 "$WORK/during")))
	states=$((states + $(head -1 "$WORK/traced")))
	for what in during traced; do
	bad=$(python3 - "$WORK/$what" <(echo "$before") <(echo "$after") <<'PY'
import sys
def read(f, skip):
    lines = open(f).read().split("\n")[skip:]
    return {l.split()[0]: set(l.split()[1:]) for l in lines if l.strip()}
during, old, new = read(sys.argv[1], 1), read(sys.argv[2], 0), read(sys.argv[3], 0)
for m, seen in during.items():
    extra = seen - old[m] - new[m]
    if extra:
        print("mark %s: %s (old %s, new %s)" % (m, sorted(extra), sorted(old[m]), sorted(new[m])))
PY
)
	expect_eq "$(basename "$c" .conf), $what: every answer during the apply is the old or the new table" "" "$bad"
	done
	before=$after
done
[ "$total" -gt 1000 ] && ok "$total route lookups sampled" || fail "only $total route lookups sampled"
[ "$states" -gt 100 ] && ok "$states rule lists replayed" || fail "only $states rule lists replayed"
expect_ok "flush" cr r -c "${configs[0]}" flush
finish

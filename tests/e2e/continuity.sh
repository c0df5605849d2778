#!/usr/bin/env bash
# Continuity in the seed topology: while the client keeps opening new
# connections through router #2 (HTTP, port 80) and keeps three long-lived
# connections open (echo, port 9000), host H re-applies 50 times (half of
# them forcing a table reload) and changes its config 10 times (a rule
# added and removed, a second gateway with its own table added and removed).
# Not one connection may fail, hang or be reset.
. "$(dirname "$0")/lib.sh"
setup_cleanup
build_seed
in_ns r2 nft add rule ip nat pre iifname "wan" tcp dport 9000 dnat to 192.168.1.10
in_ns h python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen(16)
def echo(c):
    while True:
        d = c.recv(4096)
        if not d: return
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
' &
base="$WORK/base.conf"
sed "s/^\tlist dest_port '80'/&\n\tlist dest_port '9000'/" "$HERE/../../examples/seed.conf" > "$base"
{ cat "$base"; printf "\nconfig rule 'extra'\n\toption gateway 'router2'\n\tlist proto 'udp'\n\tlist dest_port '5353'\n"; } > "$WORK/rule.conf"
{ cat "$base"; printf "\nconfig gateway 'spare'\n\toption gateway '192.168.1.1'\nconfig rule 'to_spare'\n\toption gateway 'spare'\n\tlist proto 'tcp'\n\tlist dest_port '8443'\n\tlist in_device 'lan'\n"; } > "$WORK/gateway.conf"
expect_ok "apply" cr h -c "$base" apply
expect_eq "reply through router #2" "hello from h" "$(fetch c http://10.2.0.1/)"

cat > "$WORK/load.py" <<'PY'
import socket, sys, threading, time, os
stop = sys.argv[1]
counts = {"new_ok": 0, "new_fail": 0, "long_ok": 0, "long_fail": 0}
errors = []
lock = threading.Lock()
def count(k, err=None):
    with lock:
        counts[k] += 1
        if err and len(errors) < 5: errors.append(err)
def new_conns():
    while not os.path.exists(stop):
        try:
            with socket.create_connection(("10.2.0.1", 80), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while True:
                    d = s.recv(4096)
                    if not d: break
                    data += d
            count("new_ok" if b"hello from h" in data else "new_fail", None if b"hello from h" in data else repr(data[:80]))
        except OSError as e:
            count("new_fail", "new: " + repr(e))
def long_conn(i):
    try:
        s = socket.create_connection(("10.2.0.1", 9000), timeout=3)
        n = 0
        while not os.path.exists(stop):
            msg = b"ping %d %d\n" % (i, n)
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = s.recv(len(msg) - len(got))
                if not d: raise OSError("closed by peer")
                got += d
            count("long_ok" if got == msg else "long_fail")
            n += 1
            time.sleep(0.02)
        s.close()
    except OSError as e:
        count("long_fail", "long %d: %r" % (i, e))
threads = [threading.Thread(target=new_conns) for _ in range(2)] + [threading.Thread(target=long_conn, args=(i,)) for i in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join("%s=%d" % kv for kv in counts.items()), *errors)
PY
in_ns c python3 "$WORK/load.py" "$WORK/stop" > "$WORK/load.out" 2>&1 &
loader=$!
sleep 1

reapplies=0 changes=0 errors=0
for i in $(seq 1 50); do
	if [ $((i % 2)) = 0 ]; then force=--force; else force=; fi
	cr h -c "$base" apply $force >/dev/null 2>&1 || errors=$((errors + 1))
	reapplies=$((reapplies + 1))
	if [ $((i % 5)) = 0 ]; then
		case $((i / 5 % 3)) in 0) conf=$base ;; 1) conf=$WORK/rule.conf ;; 2) conf=$WORK/gateway.conf ;; esac
		cr h -c "$conf" apply >/dev/null 2>&1 || errors=$((errors + 1))
		changes=$((changes + 1))
	fi
	sleep 0.05
done
cr h -c "$base" apply >/dev/null 2>&1 || errors=$((errors + 1))
sleep 1
touch "$WORK/stop"
wait "$loader" || true
result=$(cat "$WORK/load.out")
echo "# $reapplies re-applies, $changes config changes: $result"
expect_eq "50 re-applies and 10 config changes succeeded" "50 10 0" "$reapplies $changes $errors"
num() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$result"; }
expect_eq "no new connection failed" 0 "$(num new_fail)"
expect_eq "no long-lived connection failed or was reset" 0 "$(num long_fail)"
[ "$(num new_ok)" -gt 100 ] && ok "new connections kept flowing ($(num new_ok))" || fail "too few new connections: $result"
[ "$(num long_ok)" -gt 100 ] && ok "long-lived connections kept echoing ($(num long_ok))" || fail "too few echoes: $result"
finish

#!/usr/bin/env bash
# Multi-WAN router R (wan1 default, wan2 extra) with LAN host B. The
# upstream C drops packets arriving on the wrong link (strict reverse-path
# filter, as an ISP does). With `in_device wan2` pinned to a gateway via
# wan2, DNAT replies and R's own replies leave via wan2, IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"
setup_cleanup

add_ns c r b
link c c-w1 r wan1
link c c-w2 r wan2
link r lan b lan
# C: the Internet, with a far client address and strict rpf on both families.
in_ns c ip addr add 198.51.100.1/32 dev lo
in_ns c ip addr add 2001:db8:ff::1/128 dev lo
in_ns c ip addr add 10.1.0.1/24 dev c-w1
in_ns c ip addr add 10.2.0.1/24 dev c-w2
in_ns c ip addr add 2001:db8:1::1/64 dev c-w1 nodad
in_ns c ip addr add 2001:db8:2::1/64 dev c-w2 nodad
in_ns c ip addr add fe80::21/64 dev c-w2 nodad
in_ns c ip -6 route add 2001:db8:42::/64 via 2001:db8:2::2
in_ns c nft -f - <<'NFT'
table inet rpf {
	chain pre { type filter hook prerouting priority raw; fib saddr . iif oif missing counter drop; }
}
NFT
# R: default via wan1 for both families; DNAT tcp/80 on both WANs to B.
in_ns r ip addr add 10.1.0.2/24 dev wan1
in_ns r ip addr add 10.2.0.2/24 dev wan2
in_ns r ip addr add 2001:db8:1::2/64 dev wan1 nodad
in_ns r ip addr add 2001:db8:2::2/64 dev wan2 nodad
in_ns r ip addr add 192.168.2.1/24 dev lan
in_ns r ip addr add 2001:db8:42::1/64 dev lan nodad
in_ns r ip route add default via 10.1.0.1
in_ns r ip -6 route add default via 2001:db8:1::1
in_ns r nft -f - <<'NFT'
table ip nat {
	chain pre { type nat hook prerouting priority dstnat; iifname { "wan1", "wan2" } tcp dport 80 dnat to 192.168.2.10; }
}
NFT
in_ns b ip addr add 192.168.2.10/24 dev lan
in_ns b ip addr add 2001:db8:42::10/64 dev lan nodad
in_ns b ip route add default via 192.168.2.1
in_ns b ip -6 route add default via 2001:db8:42::1
serve b 80 ::
serve r 8080 ::

cat > "$WORK/connroute" <<'CONF'
config gateway 'wan2'
	option gateway '10.2.0.1'
	option gateway6 'fe80::21'
	option device 'wan2'

config rule 'from_wan2'
	option gateway 'wan2'
	list in_device 'wan2'
CONF

v4() { fetch c "$1" --interface 198.51.100.1; }
v6() { fetch c "$1" --interface 2001:db8:ff::1; }

expect_eq "wan1 DNAT works before" "hello from b" "$(v4 http://10.1.0.2/ || true)"
expect_fail "wan2 DNAT fails before (reply leaves by wan1)" v4 http://10.2.0.2/
expect_fail "wan2 to router's own service fails before" v4 http://10.2.0.2:8080/
expect_fail "IPv6 via wan2 fails before" v6 'http://[2001:db8:42::10]/'

expect_ok "apply" cr r -c "$WORK/connroute" apply
expect_eq "wan2 DNAT works after" "hello from b" "$(v4 http://10.2.0.2/ || true)"
expect_eq "router's own service via wan2 works after" "hello from r" "$(v4 http://10.2.0.2:8080/ || true)"
expect_eq "IPv6 via wan2 works after" "hello from b" "$(v6 'http://[2001:db8:42::10]/' || true)"
expect_eq "wan1 DNAT unaffected" "hello from b" "$(v4 http://10.1.0.2/ || true)"
expect_eq "router's own service via wan1 unaffected" "hello from r" "$(v4 http://10.1.0.2:8080/ || true)"
in_ns r ip -6 route show table 5000 | grep -q "default via fe80::21 dev wan2" && ok "IPv6 link-local route in table 5000" || fail "IPv6 route"
cr r -c "$WORK/connroute" status
finish

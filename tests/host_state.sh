#!/bin/sh
# The host state that no test may change: connroute's default paths on the
# host, and the host's own ip rules, nft ruleset and proto-197 routes. Every
# test works in namespaces and temp dirs; `make test` prints this before and
# after the run and fails when they differ.
for f in /etc/connroute /run/connroute.state /var/run/connroute.state \
	/run/connroute.state.batch /var/run/connroute.state.batch \
	/run/connroute.lock /var/run/connroute.lock \
	/etc/iproute2/rt_tables.d/connroute.conf; do
	if [ -e "$f" ] || [ -L "$f" ]; then echo "present: $f"; else echo "absent: $f"; fi
done
ip rule show 2>&1
ip -6 rule show 2>&1
ip route show table all proto 197 2>&1
ip -6 route show table all proto 197 2>&1
nft -s list ruleset 2>&1

#!/usr/bin/env bash
# `make demo`: the seed scenario, narrated. Builds client, router #1, router
# #2 and host H in namespaces, shows the connection through router #2 dying,
# applies connroute in H, shows it working, prints the status, cleans up.
. "$(dirname "$0")/lib.sh"
setup_cleanup
CONF="$HERE/../../examples/seed.conf"
echo "== building: client -- router #1 (10.1.0.1) / router #2 (10.2.0.1) -- LAN -- host H (192.168.1.10, default gw router #1)"
build_seed
echo "== before: through router #1, then through router #2 (3 s timeout)"
fetch c http://10.1.0.1/ || true
fetch c http://10.2.0.1/ || echo "   -> the reply left by router #1 and the connection died"
echo "== connroute apply (in H), with $CONF"
cr h -c "$CONF" -v apply
echo "== after: through router #2"
fetch c http://10.2.0.1/
echo "== connroute status"
cr h -c "$CONF" status
echo "== cleaning up"

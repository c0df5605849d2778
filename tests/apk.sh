#!/bin/sh
# Usage: apk.sh PACKAGE.apk OPENWRT_ARCH RUST_TARGET
# Checks a .apk built by `make apk`:
# 1. structure, with a reader of our own (tests/apk_check.py; no apk-tools):
#    framing, blocks, info fields, paths/modes/hashes, lib/apk/packages/*,
#    keep.d, maintainer scripts, the binary's CPU;
# 2. reproducibility: rebuilding from the same binary gives the same bytes;
# 3. with CONNROUTE_APK=/path/to/apk (a locally built apk-tools v3), the real
#    apk installs it offline, upgrades it (an edited conffile is kept, the new
#    one lands beside it as .apk-new) and removes it leaving nothing but the
#    edited conffile. Without CONNROUTE_APK this part prints one skip line.
set -eu
pkg=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") arch=$2 target=$3
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fails=0 passes=0
check() { if [ "$2" = "$3" ]; then passes=$((passes + 1)); else echo "FAIL: $1: want [$2] got [$3]"; fails=$((fails + 1)); fi; }

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}
SOURCE_DATE_EPOCH=$epoch python3 "$top/tests/apk_check.py" "$pkg" "$arch" "$target" || fails=$((fails + 1))

# The binary back out of the package, then a rebuild from it.
python3 "$top/tests/apk_check.py" --extract "$pkg" usr/sbin/connroute "$tmp/connroute"
SOURCE_DATE_EPOCH=$epoch python3 "$top/openwrt/build-apk.py" "$tmp/connroute" "$arch" "$tmp/again.apk" >/dev/null
cmp -s "$pkg" "$tmp/again.apk" && same=yes || same=no
check "rebuild is byte-identical" yes "$same"

apk=${CONNROUTE_APK:-}
if [ -z "$apk" ]; then
	echo "apk: real apk install/upgrade/remove skipped (set CONNROUTE_APK=/path/to/apk, apk-tools v3)"
else
	ver=$(sed -n 's/^PKG_VERSION:=//p' "$top/openwrt/connroute/Makefile")
	rel=$(sed -n 's/^PKG_RELEASE:=//p' "$top/openwrt/connroute/Makefile")
	A="--allow-untrusted --no-network --no-scripts --arch $arch"
	dump=$("$apk" adbdump "$pkg")
	check "adbdump name/version" "name: connroute|version: $ver-r$rel" \
		"$(echo "$dump" | grep -E '^  (name|version):' | sed 's/^  //' | tr '\n' '|' | sed 's/|$//')"
	mkdir -p "$tmp/x"
	"$apk" extract --allow-untrusted --destination "$tmp/x" "$pkg" >/dev/null || true
	check "apk extract: binary" yes "$(cmp -s "$tmp/x/usr/sbin/connroute" "$tmp/connroute" && echo yes || echo no)"
	# Empty stand-ins for the dependencies, as in an image.
	mkdir -p "$tmp/empty" "$tmp/deps"
	for d in nftables-json kmod-nft-core; do
		"$apk" mkpkg --info "name:$d" --info version:1.0-r1 --info "arch:$arch" \
			--files "$tmp/empty" --output "$tmp/deps/$d.apk"
	done
	R=$tmp/root
	# shellcheck disable=SC2086
	"$apk" --root "$R" --initdb add $A "$tmp"/deps/*.apk "$pkg" >"$tmp/log" 2>&1 || cat "$tmp/log"
	modes=$(cd "$R" && for f in usr/sbin/connroute etc/config/connroute etc/init.d/connroute \
		etc/hotplug.d/iface/30-connroute etc/uci-defaults/90-connroute \
		usr/share/connroute/firewall.include lib/upgrade/keep.d/connroute; do
		stat -c '%n %a %U' "$f" 2>/dev/null || echo "$f missing"; done | tr '\n' ';')
	check "installed modes" "usr/sbin/connroute 755 root;etc/config/connroute 600 root;etc/init.d/connroute 755 root;etc/hotplug.d/iface/30-connroute 644 root;etc/uci-defaults/90-connroute 755 root;usr/share/connroute/firewall.include 755 root;lib/upgrade/keep.d/connroute 644 root;" "$modes"
	check "installed version" "connroute-$ver-r$rel" "$("$apk" --root "$R" --no-network list --installed 2>/dev/null | grep -o "^connroute-[^ ]*")"

	# Upgrade: release+1 with a changed config and init script, over an edited config.
	mkdir -p "$tmp/src"
	cp -r "$top/openwrt" "$top/files" "$tmp/src/"
	sed -i "s/^PKG_RELEASE:=.*/PKG_RELEASE:=$((rel + 1))/" "$tmp/src/openwrt/connroute/Makefile"
	echo "# next release" >> "$tmp/src/files/etc/config/connroute"
	echo "# next release" >> "$tmp/src/files/etc/init.d/connroute"
	SOURCE_DATE_EPOCH=$epoch python3 "$tmp/src/openwrt/build-apk.py" "$tmp/connroute" "$arch" "$tmp/next.apk" >/dev/null
	echo "# edited by the user" >> "$R/etc/config/connroute"
	cp "$R/etc/config/connroute" "$tmp/edited"
	# shellcheck disable=SC2086
	"$apk" --root "$R" add $A "$tmp/next.apk" >"$tmp/log" 2>&1 || cat "$tmp/log"
	check "upgraded version" "connroute-$ver-r$((rel + 1))" "$("$apk" --root "$R" --no-network list --installed 2>/dev/null | grep -o "^connroute-[^ ]*")"
	check "edited conffile kept" yes "$(cmp -s "$tmp/edited" "$R/etc/config/connroute" && echo yes || echo no)"
	check "new conffile as .apk-new" yes "$(cmp -s "$tmp/src/files/etc/config/connroute" "$R/etc/config/connroute.apk-new" && echo yes || echo no)"
	check "init script upgraded" yes "$(cmp -s "$tmp/src/files/etc/init.d/connroute" "$R/etc/init.d/connroute" && echo yes || echo no)"
	check "mode kept on upgrade" 600 "$(stat -c %a "$R/etc/config/connroute")"

	# Removal: only the user's edited config stays.
	# shellcheck disable=SC2086
	"$apk" --root "$R" --no-network --no-scripts --arch "$arch" del connroute >"$tmp/log" 2>&1 || cat "$tmp/log"
	left=$(cd "$R" && find . ! -type d ! -path './lib/apk/db/*' ! -path './etc/apk/*' ! -path './var/*' | sort | tr '\n' ' ')
	check "left after removal" "./etc/config/connroute " "$left"
	check "no connroute package left" "" "$("$apk" --root "$R" --no-network list --installed 2>/dev/null | grep -o "^connroute-[^ ]*" || true)"

	# Install and remove without edits: nothing at all is left.
	R=$tmp/root2
	# shellcheck disable=SC2086
	"$apk" --root "$R" --initdb add $A "$tmp"/deps/*.apk "$pkg" >"$tmp/log" 2>&1 || cat "$tmp/log"
	# shellcheck disable=SC2086
	"$apk" --root "$R" --no-network --no-scripts --arch "$arch" del connroute >"$tmp/log" 2>&1 || cat "$tmp/log"
	left=$(cd "$R" && find . ! -type d ! -path './lib/apk/db/*' ! -path './etc/apk/*' ! -path './var/*' | sort | tr '\n' ' ')
	check "left after unedited removal" "" "$left"
fi
echo "apk: $passes passed, $fails failed ($(basename "$pkg"), $(wc -c < "$pkg") bytes)"
[ "$fails" -eq 0 ]

#!/bin/sh
# Usage: ipk.sh PACKAGE.ipk OPENWRT_ARCH RUST_TARGET
# Unpacks a .ipk built by `make ipk` and checks what opkg relies on: the
# outer members and their order, debian-binary, the control fields,
# conffiles, the keep.d list, executable maintainer scripts that enable/disable the service,
# every installed file with its mode, owner and content, and that the binary
# is an ELF for the right CPU and byte order. With CONNROUTE_OPKG, the real
# opkg installs, upgrades and removes it (else one skip line).
set -eu
ipk=$1 arch=$2 target=$3
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fails=0 passes=0
check() { if [ "$2" = "$3" ]; then passes=$((passes + 1)); else echo "FAIL: $1: want [$2] got [$3]"; fails=$((fails + 1)); fi; }

check "outer members" "./debian-binary ./data.tar.gz ./control.tar.gz" "$(tar -tzf "$ipk" | tr '\n' ' ' | sed 's/ $//')"
mkdir "$tmp/o" "$tmp/c" "$tmp/d"
tar -xzf "$ipk" -C "$tmp/o"
check "debian-binary" "2.0" "$(cat "$tmp/o/debian-binary")"
tar -xzf "$tmp/o/control.tar.gz" -C "$tmp/c"
tar -xzf "$tmp/o/data.tar.gz" -C "$tmp/d"

field() { sed -n "s/^$1: //p" "$tmp/c/control"; }
check "Package" connroute "$(field Package)"
check "Version" "$(sed -n 's/^PKG_VERSION:=//p' "$top/openwrt/connroute/Makefile")-r$(sed -n 's/^PKG_RELEASE:=//p' "$top/openwrt/connroute/Makefile")" "$(field Version)"
check "Architecture" "$arch" "$(field Architecture)"
check "Depends" "nftables-json, kmod-nft-core" "$(field Depends)"
check "License" "GPL-2.0-only" "$(field License)"
check "Installed-Size" "$(find "$tmp/d" -type f -exec cat {} + | wc -c)" "$(field Installed-Size)"
check "Description" 1 "$(grep -c '^Description: ' "$tmp/c/control")"
check "Source" feeds/connroute/connroute "$(field Source)"
check "conffiles" "/etc/config/connroute" "$(cat "$tmp/c/conffiles")"
check "control members" "./ ./conffiles ./control ./postinst ./prerm" "$(tar -tzf "$tmp/o/control.tar.gz" | tr '\n' ' ' | sed 's/ $//')"
for s in postinst prerm; do
	check "$s mode" "-rwxr-xr-x 0/0" "$(tar -tvzf "$tmp/o/control.tar.gz" "./$s" | awk '{print $1, $2}')"
	sh -n "$tmp/c/$s" && ok=yes || ok=no
	check "$s parses" yes "$ok"
done
grep -q '/etc/init.d/connroute enable' "$tmp/c/postinst" && en=yes || en=no
check "postinst enables" yes "$en"
grep -q '/etc/init.d/connroute disable' "$tmp/c/prerm" && dis=yes || dis=no
check "prerm disables" yes "$dis"

# Every data member: mode and owner as the feed Makefile installs them.
listing=$(tar -tvzf "$tmp/o/data.tar.gz" | awk '$1 !~ /^d/ {print $6, $1, $2}' | sort | tr '\n' ';')
check "data files" "./etc/config/connroute -rw------- 0/0;./etc/hotplug.d/iface/30-connroute -rw-r--r-- 0/0;./etc/init.d/connroute -rwxr-xr-x 0/0;./etc/uci-defaults/90-connroute -rwxr-xr-x 0/0;./lib/upgrade/keep.d/connroute -rw-r--r-- 0/0;./usr/sbin/connroute -rwxr-xr-x 0/0;./usr/share/connroute/firewall.include -rwxr-xr-x 0/0;" "$listing"
check "directories 0755" "" "$(tar -tvzf "$tmp/o/data.tar.gz" | awk '$1 ~ /^d/ && $1 != "drwxr-xr-x"')"
check "keep.d (sysupgrade keeps the allocations)" /etc/connroute/ "$(cat "$tmp/d/lib/upgrade/keep.d/connroute")"
for f in etc/config/connroute etc/init.d/connroute etc/hotplug.d/iface/30-connroute etc/uci-defaults/90-connroute usr/share/connroute/firewall.include; do
	cmp -s "$top/files/$f" "$tmp/d/$f" && same=yes || same=no
	check "$f content" yes "$same"
done

# ELF: magic, class/byte order and machine of the target CPU.
elf=$(od -An -tx1 -N20 "$tmp/d/usr/sbin/connroute" | tr -d ' \n')
case $target in
	mipsel-*) want="7f454c460101:0800" ;;
	mips-*) want="7f454c460102:0008" ;;
	aarch64-*) want="7f454c460201:b700" ;;
	arm*) want="7f454c460101:2800" ;;
	x86_64-*) want="7f454c460201:3e00" ;;
	*) want=unknown ;;
esac
check "ELF header for $target" "$want" "$(echo "$elf" | cut -c1-12):$(echo "$elf" | cut -c37-40)"

# With CONNROUTE_OPKG=/path/to/opkg-cl (a locally built opkg-lede): install,
# upgrade over an edited conffile (kept; the new one lands as <file>-opkg)
# and removal in an offline root, as the image builder uses opkg.
opkg=${CONNROUTE_OPKG:-}
if [ -z "$opkg" ]; then
	echo "ipk: real opkg install/upgrade/remove skipped (set CONNROUTE_OPKG=/path/to/opkg-cl, opkg-lede)"
else
	R=$tmp/root
	mkdir -p "$R/etc" "$R/var/lock" "$R/usr/lib/opkg/info"
	printf 'dest root /\narch all 1\narch noarch 1\narch %s 10\n' "$arch" > "$R/etc/opkg.conf"
	for dep in nftables-json kmod-nft-core; do # stand-ins, as installed in an image
		printf 'Package: %s\nVersion: 1\nStatus: install user installed\nArchitecture: %s\n\n' "$dep" "$arch"
		: > "$R/usr/lib/opkg/info/$dep.list"
	done >> "$R/usr/lib/opkg/status"
	o() { "$opkg" --offline-root "$R" -f "$R/etc/opkg.conf" "$@" > "$tmp/log" 2>&1 || cat "$tmp/log"; }
	version() { sed -n '/^Package: connroute$/,/^$/s/^Version: //p' "$R/usr/lib/opkg/status"; }
	o install "$ipk"
	ver=$(field Version)
	check "opkg installed version" "$ver" "$(version)"
	modes=$(cd "$R" && stat -c '%n %a' usr/sbin/connroute etc/config/connroute etc/init.d/connroute \
		lib/upgrade/keep.d/connroute 2>&1 | tr '\n' ';')
	check "opkg installed modes" "usr/sbin/connroute 755;etc/config/connroute 600;etc/init.d/connroute 755;lib/upgrade/keep.d/connroute 644;" "$modes"
	# The next release: changed config and init script, the same binary.
	mkdir -p "$tmp/src"
	cp -r "$top/openwrt" "$top/files" "$tmp/src/"
	rel=${ver##*-r}
	sed -i "s/^PKG_RELEASE:=.*/PKG_RELEASE:=$((rel + 1))/" "$tmp/src/openwrt/connroute/Makefile"
	echo "# next release" >> "$tmp/src/files/etc/config/connroute"
	echo "# next release" >> "$tmp/src/files/etc/init.d/connroute"
	sh "$tmp/src/openwrt/build-ipk.sh" "$tmp/d/usr/sbin/connroute" "$arch" "$tmp/next.ipk" >/dev/null
	echo "# edited by the user" >> "$R/etc/config/connroute"
	cp "$R/etc/config/connroute" "$tmp/edited"
	o install "$tmp/next.ipk"
	check "opkg upgraded version" "${ver%-r*}-r$((rel + 1))" "$(version)"
	check "opkg kept the edited conffile" yes "$(cmp -s "$tmp/edited" "$R/etc/config/connroute" && echo yes || echo no)"
	check "opkg new conffile as -opkg" yes "$(cmp -s "$tmp/src/files/etc/config/connroute" "$R/etc/config/connroute-opkg" && echo yes || echo no)"
	check "opkg upgraded the init script" yes "$(cmp -s "$tmp/src/files/etc/init.d/connroute" "$R/etc/init.d/connroute" && echo yes || echo no)"
	o remove connroute
	left=$(cd "$R" && find . ! -type d ! -path './usr/lib/opkg/*' ! -path ./etc/opkg.conf | sort | tr '\n' ' ')
	check "opkg left after removal" "./etc/config/connroute ./etc/config/connroute-opkg " "$left"
	check "opkg status has no connroute" "" "$(version)"
fi
echo "ipk: $passes passed, $fails failed ($(basename "$ipk"), $(wc -c < "$ipk") bytes)"
[ "$fails" -eq 0 ]

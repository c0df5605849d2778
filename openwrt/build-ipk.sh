#!/bin/sh
# Usage: build-ipk.sh BINARY OPENWRT_ARCH OUT.ipk
# Builds an opkg-installable .ipk the way OpenWrt's ipkg-build does: an outer
# gzipped tar of ./debian-binary, ./data.tar.gz and ./control.tar.gz, owned
# by root, sorted, with fixed mtimes (reproducible). File modes follow the
# feed Makefile's INSTALL_BIN (0755), INSTALL_DATA (0644), INSTALL_CONF (0600).
set -eu
bin=$1 arch=$2 ipk=$3
top=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^PKG_VERSION:=//p' "$top/openwrt/Makefile")
release=$(sed -n 's/^PKG_RELEASE:=//p' "$top/openwrt/Makefile")
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
d=$tmp/data c=$tmp/control

put() { # mode source destination
	mkdir -p "$(dirname "$d$3")"
	cp "$2" "$d$3"
	chmod "$1" "$d$3"
}
put 0755 "$bin" /usr/sbin/connroute
put 0600 "$top/files/etc/config/connroute" /etc/config/connroute
put 0755 "$top/files/etc/init.d/connroute" /etc/init.d/connroute
put 0644 "$top/files/etc/hotplug.d/iface/30-connroute" /etc/hotplug.d/iface/30-connroute
put 0755 "$top/files/etc/uci-defaults/90-connroute" /etc/uci-defaults/90-connroute
put 0755 "$top/files/usr/share/connroute/firewall.include" /usr/share/connroute/firewall.include
find "$d" -type d -exec chmod 0755 {} +

mkdir -p "$c"
size=$(find "$d" -type f -exec cat {} + | wc -c)
cat > "$c/control" <<CONTROL
Package: connroute
Version: $version-r$release
Depends: nftables-json, kmod-nft-core
Source: feeds/packages/net/connroute
SourceName: connroute
License: GPL-2.0-only
LicenseFiles: LICENSE
Section: net
Architecture: $arch
Installed-Size: $size
Maintainer: connroute developers
Description:  Connection-based policy routing: replies leave through the gateway a
 connection came in by (conntrack marks, one nftables table, ip rules and
 routes over netlink, IPv4 and IPv6). Static binary, no libc dependency.
CONTROL
echo /etc/config/connroute > "$c/conffiles"
cp "$top/openwrt/postinst" "$top/openwrt/prerm" "$c/"
chmod 0755 "$c/postinst" "$c/prerm"
chmod 0644 "$c/control" "$c/conffiles"
printf '2.0\n' > "$tmp/debian-binary"

pack() { # archive directory members...
	a=$1 dir=$2
	shift 2
	(cd "$dir" && tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
		--mtime="@$epoch" -cf - "$@") | gzip -9n > "$a"
}
pack "$tmp/data.tar.gz" "$d" .
pack "$tmp/control.tar.gz" "$c" .
mkdir -p "$(dirname "$ipk")"
pack "$ipk" "$tmp" ./debian-binary ./data.tar.gz ./control.tar.gz
echo "$ipk"

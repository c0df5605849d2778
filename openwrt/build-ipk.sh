#!/bin/sh
# Usage: build-ipk.sh BINARY OPENWRT_ARCH OUT.ipk
# Builds an opkg-installable .ipk the way OpenWrt's ipkg-build does: an outer
# gzipped tar of ./debian-binary, ./data.tar.gz and ./control.tar.gz, owned
# by root, sorted, with fixed mtimes (reproducible). The data is what the feed
# Makefile's Package/connroute/install installs (openwrt/pkgdef.py stage:
# INSTALL_BIN 0755, INSTALL_DATA 0644, INSTALL_CONF 0600), plus the
# lib/upgrade/keep.d list OpenWrt makes for conffiles that are not shipped.
set -eu
bin=$1 arch=$2 ipk=$3
top=$(cd "$(dirname "$0")/.." && pwd)
field() { python3 "$top/openwrt/pkgdef.py" field "$1"; }
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
d=$tmp/data c=$tmp/control

python3 "$top/openwrt/pkgdef.py" stage "$bin" "$d"

mkdir -p "$c"
size=$(find "$d" -type f -exec cat {} + | wc -c)
{
	printf 'Package: connroute\nVersion: %s\n' "$(field version)"
	printf 'Depends: %s\n' "$(field depends | paste -sd, | sed 's/,/, /g')"
	printf 'Source: %s\nSourceName: connroute\n' "$(field origin)"
	printf 'License: %s\nLicenseFiles: %s\n' "$(field license)" "$(field license_files)"
	printf 'Section: net\nArchitecture: %s\nInstalled-Size: %s\n' "$arch" "$size"
	printf 'Maintainer: %s\n' "$(field maintainer)"
	# package-pack.mk: `printf "Description: "; echo "$DESCRIPTION" | sed 's,^[[:space:]]*, ,g'`
	printf 'Description: '
	field description_lines | sed 's,^[[:space:]]*, ,g'
} > "$c/control"
# ipkg-build keeps the conffiles that are regular files in the package.
for f in $(field conffiles); do
	[ ! -f "$d$f" ] || echo "$f"
done > "$c/conffiles"
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

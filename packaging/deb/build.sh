#!/bin/sh
# build.sh STAGE VERSION OUT.deb: turns a `make install DESTDIR=STAGE
# PREFIX=/usr` tree into a Debian binary package with dpkg-deb alone:
# gzipped man page, copyright and changelog, control (Depends from the
# binary's shared libraries), conffiles, md5sums and maintainer scripts.
# MAINTAINER and SOURCE_DATE_EPOCH come from the environment (the Makefile).
set -eu
stage=$1 version=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${MAINTAINER:?}" "${SOURCE_DATE_EPOCH:?}"
export SOURCE_DATE_EPOCH
bin="$stage/usr/sbin/connroute"
arch=$(dpkg --print-architecture)
doc="$stage/usr/share/doc/connroute"

# `install -s` strips symbols only; drop the compiler's notes as dh_strip does.
objcopy --remove-section=.comment "$bin"
find "$stage/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9nf {} +
install -d -m 0755 "$doc" "$stage/DEBIAN"

# Depends: nft at run time, and the libraries the binary links, at the
# newest symbol version it uses.
glibc=$(readelf -V --wide "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -n 1)
depends="nftables, libc6 (>= $glibc)"
for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
	case $lib in
	libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1) ;;
	libgcc_s.so.1)
		gcc=$(readelf -V --wide "$bin" | grep -o 'GCC_[0-9.]*' | sed 's/GCC_//' | sort -Vu | tail -n 1)
		depends="$depends, libgcc-s1 (>= ${gcc:-3.0})" ;;
	*) echo "build.sh: no Debian package known for $lib" >&2; exit 1 ;;
	esac
done

cat > "$stage/DEBIAN/control" <<CONTROL
Package: connroute
Version: $version
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Recommends: iproute2
Suggests: conntrack
Section: net
Priority: optional
Description: connection-based policy routing for Linux gateways
 Answers every connection through the gateway it came in by: a host or
 router with two gateways (a second router on the LAN, or a second uplink)
 pins each new connection a rule matches to its gateway with a conntrack
 mark, and routes every packet of it through that gateway's table.
 .
 One nftables table of its own (inet connroute), ip rules and routes tagged
 with protocol 197, config in UCI format (/etc/config/connroute), and a
 systemd unit that keeps them applied.
CONTROL

echo /etc/config/connroute > "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$stage/DEBIAN/$s"
done

sh "$here/copyright.sh" "$repo" > "$doc/copyright"
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
printf 'connroute (%s) unstable; urgency=medium\n\n  * Built from the connroute repository.\n\n -- %s  %s\n' \
	"$version" "$MAINTAINER" "$date" | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.Debian.gz"

# md5sums of every shipped file except conffiles (dpkg tracks those itself).
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' | sed 's|^\./||' | LC_ALL=C sort |
	xargs md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

mkdir -p "$(dirname "$out")"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out: $(wc -c < "$out") bytes"

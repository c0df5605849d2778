#!/bin/sh
# tests/deb.sh DEB: the .deb's structure, then its whole life in a throwaway
# root: install, upgrade over an edited conffile, remove, purge. dpkg runs
# with --root and --force-script-chrootless, so the maintainer scripts run
# with DPKG_ROOT set and must touch nothing outside that root (stand-ins for
# systemctl, deb-systemd-invoke and connroute record any call, and the host's
# systemd directories are compared before and after). Last, the scripts'
# live-system branches run against stand-ins only.
set -eu
deb=$(realpath "$1")
work=$(mktemp -d /tmp/connroute-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*" >&2; failed=1; }
check() { # NAME CMD...: ok when CMD succeeds
	name=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else fail "$name"; fi
}
eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: want [$2] got [$3]"; fi; }

# ---- the package file -------------------------------------------------------
x="$work/x"
dpkg-deb -R "$deb" "$x"
eq "package name" connroute "$(dpkg-deb -f "$deb" Package)"
case $(dpkg-deb -f "$deb" Depends) in
nftables,*libc6*) ok "depends on nftables and libc6" ;;
*) fail "Depends: $(dpkg-deb -f "$deb" Depends)" ;;
esac
eq "conffiles" /etc/config/connroute "$(cat "$x/DEBIAN/conffiles")"
want="etc/config/connroute
lib/systemd/system/connroute.service
usr/sbin/connroute
usr/share/bash-completion/completions/connroute
usr/share/doc/connroute/changelog.Debian.gz
usr/share/doc/connroute/copyright
usr/share/man/man8/connroute.8.gz"
eq "files shipped" "$want" "$(cd "$x" && find . -type f ! -path './DEBIAN/*' | sed 's|^\./||' | LC_ALL=C sort)"
eq "directories shipped" "" "$(cd "$x" && find . -type d -empty ! -path ./etc/connroute)"
eq "owners root:root" "" "$(dpkg-deb -c "$deb" | awk '$2 != "root/root"')"
eq "modes" "" "$(dpkg-deb -c "$deb" | awk '
	$6 == "./usr/sbin/connroute" { if ($1 != "-rwxr-xr-x") print; next }
	$1 ~ /^d/ { if ($1 != "drwxr-xr-x") print; next }
	$1 != "-rw-r--r--" { print }')"
eq "maintainer scripts executable" "-rwxr-xr-x -rwxr-xr-x -rwxr-xr-x" \
	"$(cd "$x/DEBIAN" && ls -l postinst prerm postrm | awk '{printf "%s%s", sep, $1; sep=" "}')"
for s in postinst prerm postrm; do check "$s parses as sh" sh -n "$x/DEBIAN/$s"; done
check "md5sums match" sh -c "cd '$x' && md5sum --quiet -c DEBIAN/md5sums"
eq "md5sums cover every file but the conffile" "$(echo "$want" | grep -v '^etc/')" \
	"$(awk '{print $2}' "$x/DEBIAN/md5sums")"
check "man page gzipped roff" sh -c "gzip -dc '$x/usr/share/man/man8/connroute.8.gz' | grep -q '^\.TH CONNROUTE 8'"
check "copyright names GPL-2 and the linked crates" sh -c \
	"grep -q '^License: GPL-2' '$x/usr/share/doc/connroute/copyright' && grep -q '^ serde_json ' '$x/usr/share/doc/connroute/copyright'"
check "unit runs the watcher, flushes on stop" sh -c \
	"grep -qx 'ExecStart=/usr/sbin/connroute watch' '$x/lib/systemd/system/connroute.service' &&
	 grep -qx 'ExecStopPost=/usr/sbin/connroute flush' '$x/lib/systemd/system/connroute.service'"

# ---- life cycle in a throwaway root ------------------------------------------
root="$work/root"
admin="$root/var/lib/dpkg"
mkdir -p "$admin/info" "$admin/updates" "$root/etc/iproute2/rt_tables.d"
# The dependencies, as installed on this host (or as recent stand-ins).
for p in nftables libc6 libgcc-s1; do
	v=$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null | head -n 1) || true
	printf 'Package: %s\nStatus: install ok installed\nVersion: %s\nArchitecture: all\nMaintainer: none\nDescription: stand-in\n\n' \
		"$p" "${v:-99}" >> "$admin/status"
done
stubs="$work/stubs"
calls="$work/calls"
mkdir -p "$stubs"
: > "$calls"
for c in systemctl deb-systemd-invoke connroute; do
	printf '#!/bin/sh\necho "%s $*" >> "%s"\n' "$c" "$calls" > "$stubs/$c"
	chmod +x "$stubs/$c"
done
host_state() {
	for d in /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled; do
		find "$d" -name 'connroute*' 2>/dev/null || true
	done
	ls -l /usr/sbin/connroute /etc/config/connroute 2>/dev/null || true
	dpkg-query -W connroute 2>/dev/null || true
}
host_before=$(host_state)
d() { PATH="$stubs:$PATH" dpkg --root="$root" --force-script-chrootless --log="$work/dpkg.log" "$@" </dev/null; }
pkg_status() { dpkg-query --admindir="$admin" -W -f '${Status} ${Version}' connroute 2>/dev/null || true; }
enabled="$root/etc/systemd/system/multi-user.target.wants/connroute.service"

check "install" d -i "$deb"
eq "installed" "install ok installed $(dpkg-deb -f "$deb" Version)" "$(pkg_status)"
eq "dpkg --verify clean" "" "$(dpkg --root="$root" --verify connroute 2>&1)"
check "enabled at install" test -L "$enabled"
check "config installed disabled" grep -q "option enabled '0'" "$root/etc/config/connroute"

# An admin edits the config and disables the unit; a new version keeps both.
printf "\n# edited by the admin\n" >> "$root/etc/config/connroute"
cp "$root/etc/config/connroute" "$work/edited"
rm "$enabled" # what `systemctl disable` does
v2=$(dpkg-deb -f "$deb" Version).1
sed -i "s/^Version: .*/Version: $v2/" "$x/DEBIAN/control"
dpkg-deb --root-owner-group -b "$x" "$work/v2.deb" >/dev/null
check "upgrade" d -i "$work/v2.deb"
eq "upgraded" "install ok installed $v2" "$(pkg_status)"
check "edited conffile kept" cmp "$work/edited" "$root/etc/config/connroute"
check "disabled unit stays disabled" test ! -e "$enabled"

# State connroute writes while it runs, and a foreign names file.
echo "router2 1" > "$root/etc/connroute/ids"
printf '# Written by connroute: its routing tables, by gateway name.\n5000\trouter2\n' \
	> "$root/etc/iproute2/rt_tables.d/connroute.conf"
printf '100\tmine\n' > "$root/etc/iproute2/rt_tables.d/admin.conf"

check "remove" d -r connroute
eq "config-files left" "deinstall ok config-files $v2" "$(pkg_status)"
check "binary and unit gone" test ! -e "$root/usr/sbin/connroute" -a ! -e "$root/lib/systemd/system/connroute.service"
check "config and ids kept on remove" test -f "$root/etc/config/connroute" -a -f "$root/etc/connroute/ids"

check "purge" d -P connroute
eq "purged" "" "$(pkg_status | grep -v '^unknown ok not-installed' || true)"
eq "only the admin's file is left" "./etc/iproute2/rt_tables.d/admin.conf" \
	"$(cd "$root" && find . -path ./var -prune -o -type f -print -o -type l -print)"
eq "admin's names file untouched" "$(printf '100\tmine')" "$(cat "$root/etc/iproute2/rt_tables.d/admin.conf")"
eq "no enable state left" "" "$(find "$root/var/lib/systemd" -name '*connroute*' 2>/dev/null)"

# A connroute.conf the admin wrote is not connroute's: purge keeps it.
check "reinstall" d -i "$deb"
printf '200\tadmin-table\n' > "$root/etc/iproute2/rt_tables.d/connroute.conf"
check "purge again" d -P connroute
check "admin's connroute.conf kept" grep -q admin-table "$root/etc/iproute2/rt_tables.d/connroute.conf"

eq "no systemctl, invoke or connroute run with DPKG_ROOT" "" "$(cat "$calls")"
eq "host untouched" "$host_before" "$(host_state)"

# ---- live-system branches, against stand-ins only ----------------------------
printf '#!/bin/sh\necho "deb-systemd-helper $*" >> "%s"\n' "$calls" > "$stubs/deb-systemd-helper"
chmod +x "$stubs/deb-systemd-helper"
live() { : > "$calls"; env -u DPKG_ROOT PATH="$stubs:$PATH" sh "$x/DEBIAN/$1" "$2" ${3:+"$3"}; cat "$calls"; }
if [ -d /run/systemd/system ]; then
	eq "prerm remove stops and flushes" "deb-systemd-invoke stop connroute.service
connroute flush" "$(live prerm remove)"
	eq "postinst upgrade restarts" "deb-systemd-helper --quiet was-enabled connroute.service
deb-systemd-helper enable connroute.service
systemctl --system daemon-reload
deb-systemd-invoke restart connroute.service" "$(live postinst configure 0.1)"
else
	eq "prerm remove flushes (no systemd running)" "connroute flush" "$(live prerm remove)"
	eq "postinst enables only (no systemd running)" "deb-systemd-helper --quiet was-enabled connroute.service
deb-systemd-helper enable connroute.service" "$(live postinst configure)"
fi
eq "prerm upgrade leaves it running" "" "$(live prerm upgrade 0.2)"

if [ "$failed" = 0 ]; then echo "PASS deb.sh"; else echo "FAILED deb.sh" >&2; exit 1; fi

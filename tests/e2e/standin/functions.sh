# Stand-in for OpenWrt's /lib/functions.sh: the parts maintainer scripts
# use. default_postinst runs the package's uci-defaults (deleting each that
# succeeds), then enables (not on upgrade) and starts its init scripts;
# default_prerm disables (not on upgrade) and stops them. $pkgname names
# the package; its files are listed in /usr/lib/opkg/info/$pkgname.list.
add_group_and_user() { :; }
pkg_files() { cat "/usr/lib/opkg/info/$pkgname.list" 2>/dev/null; }
default_postinst() {
	local f
	[ -n "${IPKG_INSTROOT:-}" ] && return 0
	for f in $(pkg_files | grep '^/etc/uci-defaults/'); do
		[ -f "$f" ] && ( . "$f" ) && rm -f "$f"
	done
	for f in $(pkg_files | grep '^/etc/init.d/'); do
		[ "${PKG_UPGRADE:-}" = 1 ] || "$f" enable
		"$f" start
	done
	return 0
}
default_prerm() {
	local f
	for f in $(pkg_files | grep '^/etc/init.d/'); do
		[ "${PKG_UPGRADE:-}" = 1 ] || "$f" disable
		[ -n "${IPKG_INSTROOT:-}" ] || "$f" stop
	done
	return 0
}

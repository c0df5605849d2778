#!/bin/sh
# tests/install.sh: `make install` into a DESTDIR (default and Debian
# prefixes), the config kept when present, `make uninstall`, the unit through
# `systemd-analyze verify`, and the man page and bash completion against the
# binary's own --help. Run from the repository after `make build`.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/connroute-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*" >&2; failed=1; }
eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: want [$2] got [$3]"; fi; }
mk() { make -s -C "$repo" "$@"; }
tree() { (cd "$1" && find . ! -type d -printf '%M %P\n' | LC_ALL=C sort -k2); }

d="$work/local"
mk install DESTDIR="$d" >/dev/null
eq "make install (PREFIX=/usr/local)" "-rw-r--r-- etc/config/connroute
-rw-r--r-- usr/local/lib/systemd/system/connroute.service
-rwxr-xr-x usr/local/sbin/connroute
-rw-r--r-- usr/local/share/bash-completion/completions/connroute
-rw-r--r-- usr/local/share/man/man8/connroute.8" "$(tree "$d")"
eq "unit runs the installed binary" "ExecStart=/usr/local/sbin/connroute watch
ExecStopPost=/usr/local/sbin/connroute flush" \
	"$(grep -E '^Exec(Start|StopPost)=' "$d/usr/local/lib/systemd/system/connroute.service")"
eq "the installed binary runs" "connroute $(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)" \
	"$("$d/usr/local/sbin/connroute" --version)"

echo "# mine" >> "$d/etc/config/connroute"
cp "$d/etc/config/connroute" "$work/mine"
eq "reinstall keeps the config" "kept $d/etc/config/connroute" "$(mk install DESTDIR="$d" | grep '^kept')"
if cmp -s "$work/mine" "$d/etc/config/connroute"; then ok "config unchanged"; else fail "config overwritten"; fi

mk uninstall DESTDIR="$d" >/dev/null
eq "make uninstall keeps only the config" "-rw-r--r-- etc/config/connroute" "$(tree "$d")"

u="$work/usr"
mk install DESTDIR="$u" PREFIX=/usr >/dev/null
eq "PREFIX=/usr: /usr/sbin in the unit" "ExecStart=/usr/sbin/connroute watch" \
	"$(grep '^ExecStart=' "$u/usr/lib/systemd/system/connroute.service")"

# systemd-analyze verify: the installed unit, its binary path pointed into
# the DESTDIR (verify checks that it is executable), the man page found
# through MANPATH. A minimal unit first tells whether verify works here.
mkdir -p "$work/probe" "$work/unit"
printf '[Service]\nExecStart=/bin/true\n' > "$work/probe/probe.service"
if ! command -v systemd-analyze >/dev/null; then
	echo "skipped: systemd-analyze verify (systemd-analyze is not installed)"
elif ! systemd-analyze verify --man=no "$work/probe/probe.service" >/dev/null 2>&1; then
	echo "skipped: systemd-analyze verify (it cannot run in this container)"
else
	sed "s|/usr/sbin/connroute|$u/usr/sbin/connroute|g" \
		"$u/usr/lib/systemd/system/connroute.service" > "$work/unit/connroute.service"
	man=--man=yes
	command -v man >/dev/null || { man=--man=no; echo "note: man is not installed, the Documentation= check is skipped"; }
	if out=$(MANPATH="$u/usr/share/man:" systemd-analyze verify "$man" "$work/unit/connroute.service" 2>&1) &&
		[ -z "$out" ]; then
		ok "systemd-analyze verify connroute.service"
	else
		fail "systemd-analyze verify: $out"
	fi
fi

# The man page is clean roff (groff comes with man-db).
if command -v groff >/dev/null; then
	eq "man page: no groff warnings" "" "$(groff -man -ww -z "$repo/man/connroute.8" 2>&1)"
else
	echo "skipped: groff warnings check (groff is not installed)"
fi

# Every command and flag the binary documents is in the man page, and the
# completion offers it (global flags after any command, a command's own
# flags after it).
bin="$repo/target/release/connroute"
comp() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _connroute; echo "${COMPREPLY[*]}"' \
		_ "$repo/completion/connroute.bash" "$@"
}
has() { printf '%s\n' "$1" | grep -Eq -- "(^|[^a-z-])$2([^a-z-]|\$)"; }
commands=$("$bin" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p')
manpage=$(sed 's/\\-/-/g' "$repo/man/connroute.8")
offered=$(comp connroute '')
missing="" words=0
for c in $commands; do
	printf '%s\n' "$manpage" | grep -Eq "^\.BR? $c( |\$)" || missing="$missing man:$c"
	has "$offered" "$c" || missing="$missing completion:$c"
	flags=$("$bin" "$c" --help | grep -o -- '--[a-z][a-z-]*' | LC_ALL=C sort -u)
	after=$(comp connroute "$c" --)
	for f in $flags; do
		words=$((words + 1))
		has "$manpage" "$f" || missing="$missing man:$f"
		has "$after" "$f" || missing="$missing completion:$c:$f"
	done
done
eq "man page and completion cover --help ($words command flags)" "" "$(for m in $missing; do echo "$m"; done | sort -u | xargs)"
eq "completes a command" "apply" "$(comp connroute -c /etc/config/connroute ap)"
eq "completes --format values" "json nft" "$(comp connroute render --format '')"
eq "completes a command's flag" "--json" "$(comp connroute status --js)"

if [ "$failed" = 0 ]; then echo "PASS install.sh"; else echo "FAILED install.sh" >&2; exit 1; fi

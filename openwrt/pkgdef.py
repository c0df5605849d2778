#!/usr/bin/env python3
"""connroute's package definition, read from the feed Makefile
(openwrt/connroute/Makefile) so that `make ipk` / `make apk` ship what the
OpenWrt SDK ships: the PKG_* fields, the description, the conffiles, the
install section (file modes of INSTALL_BIN/DATA/CONF) and the maintainer
scripts composed the way include/package-pack.mk composes them.

Usage: pkgdef.py stage BINARY DIR    install the package files into DIR
       pkgdef.py field NAME          print a field (version, description, ...)
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
MAKEFILE = os.path.join(HERE, "connroute", "Makefile")
NAME = "connroute"
# Package dependencies of the static binary (no libc: it links musl in).
DEPENDS = ["nftables-json", "kmod-nft-core"]
# SOURCE of a package in the `connroute` feed, as the SDK records it.
ORIGIN = "feeds/connroute/connroute"
MODES = {"INSTALL_BIN": 0o755, "INSTALL_DATA": 0o644, "INSTALL_CONF": 0o600}


class PkgError(Exception):
    """A Makefile construct this reader does not understand."""


def read_makefile(path=MAKEFILE):
    """Returns ({PKG_X: value}, {define name: [lines]}) of the feed Makefile."""
    fields, defines, cur = {}, {}, None
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if cur is not None:
                if line.strip() == "endef":
                    cur = None
                else:
                    defines[cur].append(line)
                continue
            m = re.match(r"^define\s+(\S+)\s*$", line)
            if m:
                cur = m.group(1)
                defines[cur] = []
                continue
            m = re.match(r"^(PKG_\w+):=(.*)$", line)
            if m:
                fields[m.group(1)] = m.group(2).strip()
    return fields, defines


class Package:
    """What the SDK would put in the package, from the feed Makefile."""

    def __init__(self, path=MAKEFILE):
        try:
            self._load(*read_makefile(path))
        except KeyError as e:
            raise PkgError("%s: %s is not defined" % (path, e.args[0])) from e

    def _load(self, fields, defines):
        self.version = "%s-r%s" % (fields["PKG_VERSION"], fields["PKG_RELEASE"])
        self.license = fields["PKG_LICENSE"]
        self.license_files = fields.get("PKG_LICENSE_FILES", "")
        self.maintainer = fields["PKG_MAINTAINER"]
        self.url = fields.get("PKG_URL", "")
        desc = defines["Package/%s/description" % NAME]
        # make's $(strip): one line, single spaces.
        self.description = " ".join(" ".join(desc).split())
        self.description_lines = [line.strip() for line in desc if line.strip()]
        conf = defines["Package/%s/conffiles" % NAME]
        self.conffiles = [line.strip() for line in conf if line.strip()]
        self.install = parse_install(defines["Package/%s/install" % NAME])
        self.depends = list(DEPENDS)
        self.origin = ORIGIN

    def stage(self, binary, root):
        """Installs the files into root as Package/install would, plus the
        keep.d list package-pack.mk makes for conffiles that are not shipped.
        Returns the relative paths of the files, sorted."""
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        for kind, mode, src, dest in self.install:
            path = os.path.join(root, dest)
            if kind == "dir":
                makedirs(root, dest)
                continue
            makedirs(root, os.path.dirname(dest))
            source = binary if src is None else os.path.join(TOP, src)
            with open(source, "rb") as fi, open(path, "wb") as fo:
                fo.write(fi.read())
            os.chmod(path, mode)
        keep = [c for c in self.conffiles
                if not os.path.isfile(os.path.join(root, c.lstrip("/")))]
        if keep:
            makedirs(root, "lib/upgrade/keep.d")
            path = os.path.join(root, "lib/upgrade/keep.d", NAME)
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(k + "\n" for k in keep))
            os.chmod(path, 0o644)
        return sorted(walk_files(root))

    def script(self, kind):
        """An apk script body as package-pack.mk generates it (CONFIG_USE_APK):
        kind is post-install, post-upgrade or pre-deinstall."""
        head = ["#!/bin/sh"]
        if kind in ("post-install", "post-upgrade"):
            head.append('[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0')
        head += ["[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0",
                 ". ${IPKG_INSTROOT}/lib/functions.sh",
                 'export root="${IPKG_INSTROOT}"',
                 'export pkgname="%s"' % NAME]
        if kind == "pre-deinstall":
            text = "\n".join(head + ["default_prerm"]) + "\n" + body("prerm")
        else:
            text = "\n".join(head + ["add_group_and_user", "default_postinst"])
            text += "\n" + body("postinst")
        if kind == "post-upgrade":
            text = "#!/bin/sh\nexport PKG_UPGRADE=1\n" + drop_shebangs(text)
        return text


def body(name):
    """The Makefile's postinst/prerm body as the SDK's echo writes it (with a
    final newline), shebang lines removed like package-pack.mk's sed does."""
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        text = f.read()
    # $(file <) drops one final newline, echo adds one back.
    return drop_shebangs(text[:-1] if text.endswith("\n") else text) + "\n"


def drop_shebangs(text):
    """sed '/^\\s*#!/d'."""
    return "".join(line for line in text.splitlines(True)
                   if not re.match(r"^\s*#!", line))


def parse_install(lines):
    """(kind, mode, source relative to the checkout or None for the binary,
    destination relative to the package root) per Package/install line."""
    out = []
    for line in lines:
        words = line.split()
        if not words:
            continue
        macro = re.fullmatch(r"\$\((INSTALL_\w+)\)", words[0])
        if not macro:
            raise PkgError("install line not understood: %s" % line.strip())
        dest = words[-1]
        if not dest.startswith("$(1)/"):
            raise PkgError("install destination not under $(1): %s" % line.strip())
        dest = dest[len("$(1)/"):]
        if macro.group(1) == "INSTALL_DIR" and len(words) == 2:
            out.append(("dir", 0o755, None, dest))
            continue
        if macro.group(1) not in MODES or len(words) != 3:
            raise PkgError("install line not understood: %s" % line.strip())
        src = words[1]
        if src == "$(PKG_INSTALL_DIR)/bin/%s" % NAME:
            src = None
        elif src.startswith("$(PKG_BUILD_DIR)/"):
            src = src[len("$(PKG_BUILD_DIR)/"):]
        else:
            raise PkgError("install source not understood: %s" % src)
        out.append(("file", MODES[macro.group(1)], src, dest))
    return out


def makedirs(root, rel):
    """mkdir -p with mode 0755 for every level (INSTALL_DIR)."""
    path = root
    for part in [p for p in rel.split("/") if p]:
        path = os.path.join(path, part)
        if not os.path.isdir(path):
            os.mkdir(path)
        os.chmod(path, 0o755)


def walk_files(root):
    """Relative paths of every file and symlink under root."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            yield os.path.relpath(os.path.join(dirpath, name), root)


def main(argv):
    pkg = Package()
    if len(argv) == 4 and argv[1] == "stage":
        pkg.stage(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "field":
        value = getattr(pkg, argv[2].replace("-", "_"))
        print("\n".join(value) if isinstance(value, list) else value)
    elif len(argv) == 3 and argv[1] == "script":
        sys.stdout.write(pkg.script(argv[2]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

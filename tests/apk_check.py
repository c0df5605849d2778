#!/usr/bin/env python3
"""Structural checks of connroute's .apk (apk-tools v3 ADB) with a reader of
its own (no apk-tools, no code shared with openwrt/build-apk.py): the outer
framing and block layout, the info fields against the feed Makefile, every
path with its mode/owner/size/mtime/sha256 against the DATA blocks and the
checkout's files, lib/apk/packages/*, the keep.d list and the maintainer
scripts composed as OpenWrt's package-pack.mk composes them.

Usage: apk_check.py PACKAGE.apk OPENWRT_ARCH RUST_TARGET
       apk_check.py --extract PACKAGE.apk PATH OUT   (one file's content)
Prints one line per failure and a summary; exits 1 on any failure.
"""

import hashlib
import os
import re
import struct
import sys
import zlib

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKEFILE = os.path.join(TOP, "openwrt", "connroute", "Makefile")
ELF = {"mipsel": "0101:0800", "mips": "0102:0008", "aarch64": "0201:b700",
       "arm": "0101:2800", "armv7": "0101:2800", "x86_64": "0201:3e00"}
SHIPPED = {  # path: (mode, source in the checkout or None for the binary)
    "usr/sbin/connroute": (0o755, None),
    "etc/config/connroute": (0o600, "files/etc/config/connroute"),
    "etc/init.d/connroute": (0o755, "files/etc/init.d/connroute"),
    "etc/hotplug.d/iface/30-connroute": (0o644, "files/etc/hotplug.d/iface/30-connroute"),
    "etc/uci-defaults/90-connroute": (0o755, "files/etc/uci-defaults/90-connroute"),
    "usr/share/connroute/firewall.include": (0o755, "files/usr/share/connroute/firewall.include"),
    "lib/upgrade/keep.d/connroute": (0o644, None),
}
LISTS = ["lib/apk/packages/connroute." + s for s in ("list", "conffiles", "conffiles_static")]


class Adb:
    """Read-only view of an ADB block: 32-bit tags, high nibble = type."""

    def __init__(self, buf):
        self.buf = buf

    def val(self, tag):
        t, v = tag >> 28, tag & 0x0FFFFFFF
        if tag == 0:
            return None
        if t == 0x1:
            return v
        if t == 0x2:
            return struct.unpack_from("<I", self.buf, v)[0]
        if t == 0x3:
            return struct.unpack_from("<Q", self.buf, v)[0]
        if t in (0x8, 0x9, 0xA):
            w = {0x8: 1, 0x9: 2, 0xA: 4}[t]
            n = int.from_bytes(self.buf[v:v + w], "little")
            if v + w + n > len(self.buf):
                raise ValueError("blob past the end of the ADB block")
            return bytes(self.buf[v + w:v + w + n])
        if t in (0xD, 0xE):
            n = struct.unpack_from("<I", self.buf, v)[0]
            return list(struct.unpack_from("<%dI" % n, self.buf, v))
        raise ValueError("unknown value type %x" % t)

    def obj(self, tag):
        """{field number: raw tag} of an object (or 1-based array)."""
        slots = self.val(tag) or [1]
        return {i: slots[i] for i in range(1, len(slots)) if slots[i]}

    def arr(self, tag):
        return [self.obj(t) for t in (self.val(tag) or [1])[1:]]

    def text(self, o, i):
        return self.val(o[i]).decode() if i in o else ""


def frames(path):
    """(ADB payload, [(path idx, file idx, content)]) after the framing checks."""
    raw = open(path, "rb").read()
    if raw[:4] != b"ADBd":
        raise ValueError("not a deflate-compressed ADB file: %r" % raw[:4])
    data = zlib.decompress(raw[4:], -15)
    if data[:8] != b"ADB.pckg":
        raise ValueError("bad file header %r" % data[:8])
    pos, adb, blocks = 8, None, []
    while pos < len(data):
        word = struct.unpack_from("<I", data, pos)[0]
        kind, size = word >> 30, word & 0x3FFFFFFF
        payload = data[pos + 4:pos + size]
        if size < 4 or pos + size > len(data) or pos % 8:
            raise ValueError("block at %d: bad size %d" % (pos, size))
        if kind == 0 and adb is None and not blocks:
            adb = payload
        elif kind == 2 and adb is not None:
            pi, fi = struct.unpack_from("<II", payload)
            blocks.append((pi, fi, payload[8:]))
        else:
            raise ValueError("block type %d not allowed at %d" % (kind, pos))
        pad = -size % 8
        if data[pos + size:pos + size + pad] != bytes(pad):
            raise ValueError("non-zero block padding at %d" % pos)
        pos += size + pad
    return adb, blocks


def makefile():
    text = open(MAKEFILE, encoding="utf-8").read()
    f = dict(re.findall(r"^(PKG_\w+):=(.*)$", text, re.M))
    desc = re.search(r"^define Package/connroute/description\n(.*?)^endef", text, re.M | re.S)
    f["description"] = " ".join(desc.group(1).split())
    conf = re.search(r"^define Package/connroute/conffiles\n(.*?)^endef", text, re.M | re.S)
    f["conffiles"] = conf.group(1)
    return f


def script(kind):
    """The script package-pack.mk writes, composed here independently."""
    def body(name):
        lines = open(os.path.join(TOP, "openwrt", name), encoding="utf-8").read().splitlines()
        return "".join(line + "\n" for line in lines if not re.match(r"\s*#!", line))
    head = ('#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n'
            "[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n"
            ". ${IPKG_INSTROOT}/lib/functions.sh\n"
            'export root="${IPKG_INSTROOT}"\nexport pkgname="connroute"\n')
    if kind == "pre-deinstall":
        return head.replace('[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n', "") + \
            "default_prerm\n" + body("prerm")
    post = head + "add_group_and_user\ndefault_postinst\n" + body("postinst")
    if kind == "post-upgrade":
        return "#!/bin/sh\nexport PKG_UPGRADE=1\n" + post[len("#!/bin/sh\n"):]
    return post


class Checks:
    def __init__(self):
        self.passes, self.fails = 0, 0

    def eq(self, what, want, got):
        if want == got:
            self.passes += 1
        else:
            self.fails += 1
            print("FAIL: %s: want [%s] got [%s]" % (what, want, got))


def check_info(c, db, info, arch, mk):
    c.eq("name", "connroute", db.text(info, 1))
    c.eq("version", "%s-r%s" % (mk["PKG_VERSION"], mk["PKG_RELEASE"]), db.text(info, 2))
    # apk's version syntax (apk-package(5)), also a valid opkg version.
    ok = re.fullmatch(r"\d+(\.\d+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*"
                      r"(~[0-9a-f]+)?(-r\d+)?", db.text(info, 2))
    c.eq("version valid for apk", True, bool(ok))
    c.eq("description", mk["description"], db.text(info, 4))
    c.eq("arch", arch, db.text(info, 5))
    c.eq("license", mk["PKG_LICENSE"], db.text(info, 6))
    c.eq("origin", "feeds/connroute/connroute", db.text(info, 7))
    c.eq("maintainer", mk["PKG_MAINTAINER"], db.text(info, 8))
    deps = [db.text(d, 1) for d in db.arr(info[15])]
    c.eq("depends (sorted, unversioned)", ["kmod-nft-core", "nftables-json"], deps)
    c.eq("depends have no version", [False, False], [2 in d for d in db.arr(info[15])])


def check_paths(c, db, pkg, blocks, epoch):
    """Returns {relative path: content} of every file."""
    files, want_dirs, sizes, order = {}, set(), 0, []
    paths = db.arr(pkg[2])
    names = [db.text(d, 1) for d in paths]
    c.eq("directories sorted, root first", sorted(names), names)
    for pi, d in enumerate(paths, 1):
        dname = db.text(d, 1)
        acl = db.obj(d[2])
        c.eq("dir %s acl" % (dname or "/"), (0o755, b"root", b"root"),
             (db.val(acl[1]), db.val(acl[2]), db.val(acl[3])))
        fl = db.arr(d[3]) if 3 in d else []
        c.eq("files of %s sorted" % dname, sorted(db.text(f, 1) for f in fl), [db.text(f, 1) for f in fl])
        for fi, f in enumerate(fl, 1):
            rel = os.path.join(dname, db.text(f, 1))
            acl = db.obj(f[2])
            size = db.val(f[3]) or 0
            sizes += size
            want = [(p, fi_, body) for p, fi_, body in blocks if (p, fi_) == (pi, fi)]
            body = want[0][2] if want else b""
            c.eq(rel + " data blocks", 1 if size else 0, len(want))
            c.eq(rel + " size", size, len(body))
            c.eq(rel + " sha256", hashlib.sha256(body).digest(), db.val(f[5]))
            c.eq(rel + " mtime", epoch if epoch is not None else db.val(f[4]), db.val(f[4]))
            c.eq(rel + " owner", (b"root", b"root"), (db.val(acl[2]), db.val(acl[3])))
            mode = SHIPPED.get(rel, (0o644, None))[0]
            c.eq(rel + " mode", oct(mode), oct(db.val(acl[1])))
            files[rel] = body
            order.append((pi, fi))
            for i in range(1, rel.count("/") + 1):
                want_dirs.add("/".join(rel.split("/")[:i]))
    c.eq("one directory entry per level", sorted(want_dirs | {""}), sorted(names))
    c.eq("DATA blocks in path/file order", [o for o in order if files_nonempty(blocks, o)],
         [(p, f) for p, f, _ in blocks])
    c.eq("installed-size", sizes, db.val(db.obj(pkg[1])[12]))
    return files


def files_nonempty(blocks, key):
    return any((p, f) == key for p, f, _ in blocks)


def check_files(c, files, target, mk):
    c.eq("file set", sorted(list(SHIPPED) + LISTS), sorted(files))
    for rel, (mode, src) in SHIPPED.items():
        if src:
            c.eq(rel + " content", open(os.path.join(TOP, src), "rb").read(), files.get(rel))
    c.eq("keep.d", b"/etc/connroute/\n", files.get("lib/upgrade/keep.d/connroute"))
    listed = sorted("/" + f for f in files if not f.startswith("lib/apk/packages/"))
    c.eq(".list", "".join(p + "\n" for p in listed).encode(), files.get(LISTS[0]))
    c.eq(".conffiles", mk["conffiles"].encode(), files.get(LISTS[1]))
    conf = files.get("etc/config/connroute", b"")
    c.eq(".conffiles_static", ("/etc/config/connroute %s\n" % hashlib.sha256(conf).hexdigest()).encode(),
         files.get(LISTS[2]))
    elf = files.get("usr/sbin/connroute", b"")[:20]
    got = "%s:%s" % (elf[4:6].hex(), elf[18:20].hex())
    c.eq("ELF magic", b"\x7fELF", elf[:4])
    c.eq("ELF class/order:machine for " + target, ELF.get(target.split("-")[0], "?"), got)


def extract(path, rel, out):
    """Writes the content of the packaged file rel to out."""
    adb, blocks = frames(path)
    db = Adb(adb)
    pkg = db.obj(struct.unpack_from("<I", adb, 4)[0])
    for pi, d in enumerate(db.arr(pkg[2]), 1):
        for fi, f in enumerate(db.arr(d[3]) if 3 in d else [], 1):
            if os.path.join(db.text(d, 1), db.text(f, 1)) == rel:
                body = [b for p, i, b in blocks if (p, i) == (pi, fi)]
                with open(out, "wb") as o:
                    o.write(body[0] if body else b"")
                return 0
    print("%s: no %s in the package" % (path, rel))
    return 1


def main(argv):
    if len(argv) == 5 and argv[1] == "--extract":
        return extract(argv[2], argv[3], argv[4])
    path, arch, target = argv[1:4]
    c = Checks()
    adb, blocks = frames(path)
    db = Adb(adb)
    c.eq("ADB header compat/version", (0, 0), (adb[0], adb[1]))
    pkg = db.obj(struct.unpack_from("<I", adb, 4)[0])
    info = db.obj(pkg[1])
    uid = info[3] & 0x0FFFFFFF
    zeroed = bytearray(adb)
    zeroed[uid + 1:uid + 21] = bytes(20)
    c.eq("hashes = sha256(ADB block)[:20]", hashlib.sha256(zeroed).digest()[:20], db.val(info[3]))
    mk = makefile()
    check_info(c, db, info, arch, mk)
    epoch = int(os.environ["SOURCE_DATE_EPOCH"]) if os.environ.get("SOURCE_DATE_EPOCH") else None
    files = check_paths(c, db, pkg, blocks, epoch)
    check_files(c, files, target, mk)
    scripts = db.obj(pkg[3])
    c.eq("script slots (post-install, pre-deinstall, post-upgrade)", [3, 4, 7], sorted(scripts))
    for kind, slot in (("post-install", 3), ("pre-deinstall", 4), ("post-upgrade", 7)):
        c.eq(kind, script(kind), db.text(scripts, slot))
    c.eq("no triggers / replaces-priority", [1, 2, 3], sorted(pkg))
    print("apk structure: %d passed, %d failed (%s, %d bytes)" % (
        c.passes, c.fails, os.path.basename(path), os.path.getsize(path)))
    return 1 if c.fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

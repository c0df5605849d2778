#!/usr/bin/env python3
"""Builds connroute's OpenWrt 25.x package, an apk-tools v3 .apk, without
apk-tools: what `apk mkpkg` makes when OpenWrt's package-pack.mk calls it.

Usage: build-apk.py BINARY OPENWRT_ARCH OUT.apk

The v3 format (apk-tools doc/apk-v3.5): "ADBd" then a raw deflate stream of
the file header ("ADB." and the schema "pckg") and 8-byte aligned blocks,
each with a 32-bit little-endian header (2 bits type, 30 bits size incl. the
header): one ADB block holding the package object, then one DATA block per
non-empty file ({u32 path index, u32 file index} and the content). Values in
the ADB block are 32-bit tags (4 bits type, 28 bits immediate or offset);
objects and arrays are u32 slot lists whose slot 0 is the slot count.
Identical values are stored once. Output is deterministic: mtimes are
SOURCE_DATE_EPOCH (or the last commit's time), everything is sorted.
"""

import hashlib
import os
import stat
import struct
import subprocess
import sys
import tempfile
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pkgdef  # noqa: E402

T_INT, T_INT32, T_INT64 = 0x10000000, 0x20000000, 0x30000000
T_BLOB8, T_BLOB16, T_BLOB32 = 0x80000000, 0x90000000, 0xA0000000
# The format has an array tag (0xd), but apk mkpkg tags arrays as objects
# (0xe) and readers take either: write what apk mkpkg writes.
T_OBJECT = 0xE0000000
NULL = 0
BLOCK_ADB, BLOCK_DATA = 0, 2
SCHEMA_PACKAGE = b"pckg"
# Field numbers (apk-tools' package schemas, doc/apk-package.5).
PI = {"name": 1, "version": 2, "hashes": 3, "description": 4, "arch": 5,
      "license": 6, "origin": 7, "maintainer": 8, "url": 9,
      "installed-size": 12, "depends": 15}
PKG_INFO, PKG_PATHS, PKG_SCRIPTS = 1, 2, 3
SCRIPTS = {"post-install": 3, "pre-deinstall": 4, "post-upgrade": 7}
FILE_NAME, FILE_ACL, FILE_SIZE, FILE_MTIME, FILE_HASH = 1, 2, 3, 4, 5
DIR_NAME, DIR_ACL, DIR_FILES = 1, 2, 3
ACL_MODE, ACL_USER, ACL_GROUP = 1, 2, 3
DEP_NAME = 1


class Adb:
    """An ADB block being written: values are appended, deduplicated."""

    def __init__(self):
        self.buf = bytearray(8)  # header: compat 0, version 0, root later
        self.seen = {}

    def _write(self, data, align, cache=True):
        off = self.seen.get(data) if cache else None
        if off is not None and off % align == 0:
            return off
        self.buf += bytes(-len(self.buf) % align)
        off = len(self.buf)
        self.buf += data
        if cache:
            self.seen[data] = off
        return off

    def blob(self, data, cache=True):
        """A string/bytes value; empty is NULL."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        n = len(data)
        if n == 0:
            return NULL
        if n <= 0xFF:
            return T_BLOB8 | self._write(struct.pack("<B", n) + data, 1, cache)
        if n <= 0xFFFF:
            return T_BLOB16 | self._write(struct.pack("<H", n) + data, 2, cache)
        return T_BLOB32 | self._write(struct.pack("<I", n) + data, 4, cache)

    def int(self, v):
        """An unsigned integer: immediate below 2^28, else stored."""
        if v < 0x10000000:
            return T_INT | v
        if v < 1 << 32:
            return T_INT32 | self._write(struct.pack("<I", v), 4)
        return T_INT64 | self._write(struct.pack("<Q", v), 4)

    def obj(self, slots):
        """An object (slots from field 1 on, NULL for unset) or an array."""
        vals = list(slots)
        while vals and vals[-1] == NULL:
            vals.pop()
        if not vals:
            return NULL
        words = struct.pack("<%dI" % (len(vals) + 1), len(vals) + 1, *vals)
        return T_OBJECT | self._write(words, 4)

    def fields(self, pairs):
        """An object from {field number: value}."""
        slots = [NULL] * max(pairs)
        for k, v in pairs.items():
            slots[k - 1] = v
        return self.obj(slots)

    def root(self, value):
        """Sets the root object in the block header."""
        struct.pack_into("<I", self.buf, 4, value)


def block(kind, payload):
    """One block: header (type, raw size), payload, zero padding to 8."""
    raw = 4 + len(payload)
    return struct.pack("<I", (kind << 30) | raw) + payload + bytes(-raw % 8)


def acl(db, mode):
    """Mode and owner (always root:root, as fakeroot packs it)."""
    return db.fields({ACL_MODE: db.int(mode), ACL_USER: db.blob("root"),
                      ACL_GROUP: db.blob("root")})


def tree(root):
    """{directory ("" = root): [file names]} of a staged package, sorted."""
    dirs = {"": []}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        dirs[rel] = sorted(filenames)
    return dict(sorted(dirs.items()))


def package_adb(pkg, arch, root, epoch):
    """The ADB block payload of the package and the DATA order
    [(path index, file index, relative path)]."""
    db = Adb()
    info = {PI["name"]: db.blob(pkgdef.NAME), PI["version"]: db.blob(pkg.version),
            PI["description"]: db.blob(pkg.description), PI["arch"]: db.blob(arch),
            PI["license"]: db.blob(pkg.license), PI["origin"]: db.blob(pkg.origin),
            PI["maintainer"]: db.blob(pkg.maintainer), PI["url"]: db.blob(pkg.url)}
    deps = [(name, db.fields({DEP_NAME: db.blob(name)})) for name in pkg.depends]
    info[PI["depends"]] = db.obj([v for _, v in sorted(deps)])
    paths, data, size = [], [], 0
    for pi, (rel, names) in enumerate(tree(root).items(), 1):
        files = []
        for fi, name in enumerate(names, 1):
            path = os.path.join(root, rel, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                raise pkgdef.PkgError("%s: only regular files are packed" % path)
            with open(path, "rb") as f:
                content = f.read()
            size += len(content)
            entry = {FILE_NAME: db.blob(name),
                     FILE_HASH: db.blob(hashlib.sha256(content).digest()),
                     FILE_MTIME: db.int(epoch), FILE_SIZE: db.int(len(content))}
            entry[FILE_ACL] = acl(db, st.st_mode & 0o7777)
            files.append(db.fields(entry))
            if content:
                data.append((pi, fi, os.path.join(rel, name)))
        name = db.blob(rel)
        mode = os.lstat(os.path.join(root, rel)).st_mode & 0o7777
        paths.append(db.fields({DIR_NAME: name, DIR_ACL: acl(db, mode),
                                DIR_FILES: db.obj(files)}))
    info[PI["installed-size"]] = db.int(size or 1)
    # Unique id: the first 20 bytes of the block's SHA-256, taken with them zero.
    uid = db.blob(bytes(20), cache=False)
    info[PI["hashes"]] = uid
    pkgv = {PKG_INFO: db.fields(info), PKG_PATHS: db.obj(paths)}
    scripts = {}
    for kind in sorted(SCRIPTS, key=SCRIPTS.get):
        scripts[SCRIPTS[kind]] = db.blob(pkg.script(kind))
    pkgv[PKG_SCRIPTS] = db.fields(scripts)
    db.root(db.fields(pkgv))
    at = (uid & 0x0FFFFFFF) + 1
    db.buf[at:at + 20] = hashlib.sha256(bytes(db.buf)).digest()[:20]
    return bytes(db.buf), data


def build(binary, arch, out, epoch):
    """Stages the package and writes OUT.apk."""
    pkg = pkgdef.Package()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        files = pkg.stage(binary, root)
        write_apk_lists(pkg, root, files)
        adb, data = package_adb(pkg, arch, root, epoch)
        stream = [b"ADB." + SCHEMA_PACKAGE, block(BLOCK_ADB, adb)]
        for pi, fi, rel in data:
            with open(os.path.join(root, rel), "rb") as f:
                stream.append(block(BLOCK_DATA, struct.pack("<II", pi, fi) + f.read()))
    z = zlib.compressobj(9, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    body = z.compress(b"".join(stream)) + z.flush()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "wb") as f:
        f.write(b"ADBd" + body)


def write_apk_lists(pkg, root, files):
    """lib/apk/packages/NAME.{list,conffiles,conffiles_static} as
    package-pack.mk writes them (the list is made before the other two)."""
    d = os.path.join(root, "lib/apk/packages")
    pkgdef.makedirs(root, "lib/apk/packages")
    base = os.path.join(d, pkgdef.NAME)
    listing = sorted("/" + f for f in files)
    put(base + ".list", "".join(p + "\n" for p in listing))
    put(base + ".conffiles", "".join(c + "\n" for c in pkg.conffiles))
    static = []
    for c in pkg.conffiles:
        path = os.path.join(root, c.lstrip("/"))
        if os.path.isfile(path):
            with open(path, "rb") as f:
                static.append("%s %s\n" % (c, hashlib.sha256(f.read()).hexdigest()))
    if static:
        put(base + ".conffiles_static", "".join(static))


def put(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o644)


def source_epoch():
    """SOURCE_DATE_EPOCH, else the last commit's time, else 0."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "-C", pkgdef.TOP, "log", "-1", "--format=%ct"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip() or 0)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 0


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    try:
        build(argv[1], argv[2], argv[3], source_epoch())
    except (OSError, pkgdef.PkgError) as e:
        sys.stderr.write("build-apk: %s\n" % e)
        return 1
    print(argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

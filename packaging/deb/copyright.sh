#!/bin/sh
# copyright.sh REPO: debian/copyright (machine-readable format 1.0) for the
# binary package, listing the Rust crates linked into the binary.
set -eu
cd "$1"
crates=$(cargo tree -e normal,no-proc-macro --prefix none --format '{p} {l}' --locked --offline -q |
	sed 's/ (\*)$//; s/ (\/.*)//' | grep -v '^connroute ' | LC_ALL=C sort -u | sed 's/^/  /')
cat <<TEXT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: connroute
Comment: The connroute binary is statically linked with these Rust crates
 (name, version, license; where a crate offers a choice, it is used under
 MIT or Apache-2.0):
 .
$(echo "$crates" | sed 's/^  / /')

Files: *
Copyright: 2026 the connroute authors
License: GPL-2
 This program is free software; you can redistribute it and/or modify it
 under the terms of the GNU General Public License, version 2, as published
 by the Free Software Foundation.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 2 can be found in /usr/share/common-licenses/GPL-2.

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a
 copy of this software and associated documentation files (the "Software"),
 to deal in the Software without restriction, including without limitation
 the rights to use, copy, modify, merge, publish, distribute, sublicense,
 and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
 FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
 DEALINGS IN THE SOFTWARE.

License: Apache-2.0
 On Debian systems, the complete text of the Apache License, version 2.0,
 can be found in /usr/share/common-licenses/Apache-2.0.
TEXT

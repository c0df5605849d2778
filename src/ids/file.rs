//! The ids file: text, one gateway a line, `NAME mark 0xMARK table N
//! [retired]`, `#` comments. Read strictly (any doubt is an error naming
//! file and line: a guessed allocation could re-point connections);
//! written atomically.

use super::{Ids, Record};
use crate::config::source::split_as_written;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const HEADER: &str = "\
# connroute: marks and routing tables handed to gateways without an explicit
# mark/table, kept so that editing the config never moves another gateway's
# connections. Written by 'connroute apply'; lines of removed gateways stay
# as 'retired'. Format: NAME mark 0xMARK table TABLE [retired]
";

/// Longest ids file read (far above 65535 gateways' lines).
pub const MAX_BYTES: usize = 4 << 20;

/// The bytes of `path`, `None` when it does not exist. Opened without
/// following a symlink and without blocking (a FIFO there must not hang a
/// run that holds the lock); anything but a regular file is an error
/// naming the path. Shared by the ids and run-state readers.
pub fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match crate::config::source::read_regular(path, MAX_BYTES as u64, false) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Err(format!("{}: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

/// Parses the file's bytes; `file` names it in errors (`file:line: …`).
pub fn parse(bytes: &[u8], file: &str) -> Result<Ids, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("{file}: longer than {MAX_BYTES} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{file}: not UTF-8 text"))?;
    let mut ids = Ids::default();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let (mut marks, mut tables) = (BTreeSet::new(), BTreeSet::new());
    for (i, line) in text.lines().enumerate() {
        let at = |m: String| format!("{file}:{}: {m}", i + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let r = record(line).map_err(at)?;
        if names.insert(r.name.clone(), i).is_some() {
            return Err(at(format!("gateway '{}' appears twice", r.name)));
        }
        if !marks.insert(r.mark) {
            return Err(at(format!("mark 0x{:08x} appears twice", r.mark)));
        }
        if !tables.insert(r.table) {
            return Err(at(format!("table {} appears twice", r.table)));
        }
        ids.records.push(r);
    }
    Ok(ids)
}

fn record(line: &str) -> Result<Record, String> {
    let w: Vec<&str> = line.split_ascii_whitespace().collect();
    let retired = match w.len() {
        5 => false,
        6 if w[5] == "retired" => true,
        _ => {
            return Err(format!(
                "expected 'NAME mark 0xMARK table TABLE [retired]', got '{}'",
                crate::uci::clip(line)
            ));
        }
    };
    let name = w[0];
    let name_ok = !name.is_empty()
        && name.len() <= crate::config::MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !name_ok {
        return Err(format!(
            "'{}' is not a gateway name",
            crate::uci::clip(name)
        ));
    }
    if w[1] != "mark" || w[3] != "table" {
        return Err(format!(
            "expected 'NAME mark 0xMARK table TABLE [retired]', got '{}'",
            crate::uci::clip(line)
        ));
    }
    let mark = w[2]
        .strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .filter(|m| *m != 0)
        .ok_or_else(|| {
            format!(
                "'{}' is not a mark (0x and 1 to 8 hex digits, not 0)",
                crate::uci::clip(w[2])
            )
        })?;
    let table = w[4]
        .parse::<u32>()
        .ok()
        .filter(|t| !crate::config::values::RESERVED_TABLES.contains(t) && !w[4].starts_with('+'))
        .ok_or_else(|| format!("'{}' is not a usable table id", crate::uci::clip(w[4])))?;
    Ok(Record {
        name: name.to_string(),
        mark,
        table,
        retired,
    })
}

/// The file's text for `ids`.
pub fn render(ids: &Ids) -> String {
    let mut out = String::from(HEADER);
    for r in &ids.records {
        out.push_str(&format!(
            "{} mark 0x{:08x} table {}",
            r.name, r.mark, r.table
        ));
        out.push_str(if r.retired { " retired\n" } else { "\n" });
    }
    out
}

/// The highest `pid_max` any Linux allows (`PID_MAX_LIMIT` of 64-bit
/// kernels; 32-bit ones stop at 32,768): no write makes a higher pid.
const MAX_PID: u32 = 4_194_304;

/// The name of the temporary file process `pid` writes the ids file
/// `name` through: `.NAME.PID.tmp`.
fn temporary(name: &OsStr, pid: u32) -> OsString {
    let mut t = OsString::from(".");
    t.push(name);
    t.push(format!(".{pid}.tmp"));
    t
}

/// The pid digits in `file` when it is a name [`temporary`] makes for
/// `name`.
fn temporary_pid<'a>(file: &'a OsStr, name: &OsStr) -> Option<&'a [u8]> {
    file.as_bytes()
        .strip_prefix(b".")?
        .strip_prefix(name.as_bytes())?
        .strip_prefix(b".")?
        .strip_suffix(b".tmp")
}

/// Whether no process `pid` exists (then a temporary file of it is stale).
pub(super) fn gone(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Whether a temporary file named with `pid` (decimal, as written) is a
/// killed writer's: a canonical pid of a process that no longer runs, or
/// this process's own (a killed run's that had it: this process has not
/// made its own yet). Shared by the ids and run-state writers, which both
/// hold the lock while they remove them.
pub fn stale_writer(pid: &[u8]) -> bool {
    let Some(n) = std::str::from_utf8(pid)
        .ok()
        .and_then(|d| d.parse::<u32>().ok())
    else {
        return false;
    };
    let canonical = n.to_string().as_bytes() == pid;
    canonical && (1..=MAX_PID).contains(&n) && (n == std::process::id() || gone(n))
}

/// Removes the temporary files (`.NAME.PID.tmp` beside the ids file at
/// `path`) that writes killed midway left behind: those of a pid that no
/// longer runs, or of this process's own pid (a killed run's that had it;
/// this process has not made its own yet). The caller holds the lock, as
/// every writer does. Only regular files whose name [`write`] could have
/// made: a symlink or anything else there was not made by it, and is left
/// alone. The directory is read through `/proc/self/fd`: where /proc is
/// not mounted, nothing is removed.
///
/// Pids are this process's pid namespace's: a write under another
/// `--lock`, from another pid namespace, is not told apart from a dead
/// one. A temporary left by a power cut stays while its pid belongs to
/// another process (it never blocks a write: only this process's own
/// name would).
pub fn remove_temporaries(path: &Path) {
    use std::os::fd::AsRawFd;
    let Some((dir, name)) = split_as_written(path) else {
        return;
    };
    // The directory is opened once, and its entries are listed, checked
    // and unlinked through that descriptor: a path component swapped
    // meanwhile cannot send the removal elsewhere.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir);
    let Ok(d) = opened else {
        return;
    };
    let fd = d.as_raw_fd();
    let Ok(entries) = fs::read_dir(format!("/proc/self/fd/{fd}")) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        if !temporary_pid(&file, name).is_some_and(stale_writer) {
            continue;
        }
        let Ok(c) = std::ffi::CString::new(file.as_bytes()) else {
            continue;
        };
        // SAFETY: stat is plain data that fstatat fills; `c` is a valid
        // C string and `fd` an open directory for both calls.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let plain = libc::fstatat(fd, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0
                && st.st_mode & libc::S_IFMT == libc::S_IFREG;
            if plain {
                libc::unlinkat(fd, c.as_ptr(), 0);
            }
        }
    }
}

/// Writes `ids` to `path` atomically: a new temporary file in the same
/// directory (created exclusively, never through a symlink), synced, then
/// renamed over `path`, and the directory synced. Temporary files of
/// killed writes are removed first ([`remove_temporaries`]; the caller
/// holds the lock).
pub fn write(path: &Path, ids: &Ids) -> Result<(), String> {
    let (dir, name) =
        split_as_written(path).ok_or_else(|| format!("{}: not a file path", path.display()))?;
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    remove_temporaries(path);
    let tmp = dir.join(temporary(name, std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| {
            format!(
                "cannot write {} (creating {}): {e}",
                path.display(),
                tmp.display()
            )
        })?;
    // From here on the temporary file is ours: remove it on any failure.
    let result = f
        .write_all(render(ids).as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path))
        .and_then(|()| fs::File::open(dir)?.sync_all());
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

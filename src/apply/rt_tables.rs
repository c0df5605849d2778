//! The iproute2 names file of connroute's routing tables
//! (`/etc/iproute2/rt_tables.d/connroute.conf`, so `ip route show table
//! router2` works).
//!
//! Ownership: connroute only ever rewrites or removes a regular file whose
//! first line is [`MARKER`]. Anything else at the path (a foreign file, a
//! symlink, a FIFO) is left byte-identical, with a warning; apply still
//! succeeds, since the names are a convenience and routing does not depend
//! on them. The file is replaced atomically via a temporary file in the same
//! directory, created with `O_EXCL|O_NOFOLLOW` under a random name, synced,
//! then renamed over the path: a symlink planted there is never followed.
//!
//! Gateway names that iproute2 already knows as another table (in
//! `rt_tables` or `rt_tables.d/*.conf`) are refused ([`collisions`]): with
//! two meanings, `ip route … table NAME` would pick one silently.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// First line of every file connroute writes; its proof of ownership.
pub const MARKER: &str = "# Written by connroute: its routing tables, by gateway name.";

/// Largest names file read (a real one is a few hundred bytes).
const MAX_READ: u64 = 1 << 20;

/// What [`write`] or [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to do: the file already says this, or is absent (remove).
    Unchanged,
    /// The file was written.
    Written,
    /// connroute's file was removed.
    Removed,
    /// No iproute2 configuration directory: nothing would read the names.
    Skipped,
    /// Something connroute did not create is at the path; left untouched.
    Foreign(String),
}

impl Change {
    /// The report line of a change to the system (`wrote …`, `removed …`).
    pub fn summary(&self, path: &Path) -> Option<String> {
        match self {
            Change::Written => Some(format!("wrote {}", path.display())),
            Change::Removed => Some(format!("removed {}", path.display())),
            _ => None,
        }
    }
}

/// Failures of this stage, with their exit code.
#[derive(Debug)]
pub enum RtTablesError {
    /// Reading or writing the file failed (exit 1).
    Io(PathBuf, io::Error),
    /// A gateway name is already another table's name (exit 2).
    Collision {
        /// The gateway (and table) name.
        name: String,
        /// The table connroute gives it.
        ours: u32,
        /// The table the other file gives it.
        theirs: u32,
        /// The other file.
        file: PathBuf,
        /// Its line, from 1.
        line: usize,
    },
}

impl RtTablesError {
    /// 2 for a name collision (fix the config), 1 for I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            RtTablesError::Io(..) => 1,
            RtTablesError::Collision { .. } => 2,
        }
    }
}

impl fmt::Display for RtTablesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtTablesError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            RtTablesError::Collision {
                name,
                ours,
                theirs,
                file,
                line,
            } => write!(
                f,
                "{}:{line}: table name '{name}' already means table {theirs}; \
                 gateway '{name}' (table {ours}) needs another name",
                file.display()
            ),
        }
    }
}

impl std::error::Error for RtTablesError {}

impl From<RtTablesError> for String {
    fn from(e: RtTablesError) -> String {
        e.to_string()
    }
}

/// What is at the path.
enum Found {
    Absent,
    Ours(String),
    Foreign(String),
}

/// The text of `path` if it is a regular file (`None` otherwise), opened
/// without blocking on a FIFO and, unless `follow`, without following a
/// symlink (`ELOOP`). Not UTF-8 reads as empty: it cannot be connroute's.
fn read_regular(path: &Path, follow: bool) -> io::Result<Option<String>> {
    let flags = if follow { 0 } else { libc::O_NOFOLLOW };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut text = String::new();
    match file.take(MAX_READ).read_to_string(&mut text) {
        Err(e) if e.kind() != io::ErrorKind::InvalidData => Err(e),
        _ => Ok(Some(text)),
    }
}

fn is_ours(text: &str) -> bool {
    text.lines().next() == Some(MARKER)
}

/// What is at `path`, never following a symlink there.
fn inspect(path: &Path) -> io::Result<Found> {
    match read_regular(path, false) {
        Ok(Some(text)) if is_ours(&text) => Ok(Found::Ours(text)),
        Ok(Some(_)) => Ok(Found::Foreign("not written by connroute".into())),
        Ok(None) => Ok(Found::Foreign("not a regular file".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Found::Absent),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Ok(Found::Foreign("a symbolic link".into()))
        }
        Err(e) => Err(e),
    }
}

/// The file's contents for these `(table, name)` pairs.
pub fn render(names: &[(u32, String)]) -> String {
    let mut text = format!("{MARKER}\n");
    for (id, name) in names {
        text.push_str(&format!("{id}\t{name}\n"));
    }
    text
}

fn foreign(path: &Path, why: String) -> Change {
    log::warn!(
        "{}: {why}; left untouched (connroute only rewrites or removes files it wrote)",
        path.display()
    );
    Change::Foreign(why)
}

/// Writes the names file unless it already says the same, or belongs to
/// someone else.
pub fn write(path: &Path, names: &[(u32, String)]) -> Result<Change, RtTablesError> {
    let io_err = |e| RtTablesError::Io(path.into(), e);
    let text = render(names);
    match inspect(path).map_err(io_err)? {
        Found::Ours(old) if old == text => return Ok(Change::Unchanged),
        Found::Foreign(why) => return Ok(foreign(path, why)),
        _ => {}
    }
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Ok(Change::Skipped);
    };
    if dir
        .parent()
        .is_some_and(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        return Ok(Change::Skipped); // no iproute2 config directory
    }
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let random = RandomState::new().hash_one(std::process::id());
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{random:016x}"));
    let tmp = dir.join(tmp_name);
    let result = replace(&tmp, path, dir, text.as_bytes());
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| Change::Written).map_err(io_err)
}

/// Writes `bytes` to the new file `tmp`, syncs it and renames it to `path`.
fn replace(tmp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true) // O_EXCL: never an existing file or symlink
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, path)?;
    // The rename itself reaches the disk when the directory is synced.
    File::open(dir)?.sync_all()
}

/// Removes the names file if connroute wrote it.
pub fn remove(path: &Path) -> Result<Change, RtTablesError> {
    match inspect(path).map_err(|e| RtTablesError::Io(path.into(), e))? {
        Found::Absent => Ok(Change::Unchanged),
        Found::Foreign(why) => Ok(foreign(path, why)),
        Found::Ours(_) => match std::fs::remove_file(path) {
            Ok(()) => Ok(Change::Removed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Change::Unchanged),
            Err(e) => Err(RtTablesError::Io(path.into(), e)),
        },
    }
}

/// A note for `status` when the path holds a file connroute did not write.
pub fn foreign_note(path: &Path) -> Option<String> {
    match inspect(path) {
        Ok(Found::Foreign(why)) => Some(format!(
            "{}: {why}; connroute leaves it untouched and does not name its tables",
            path.display()
        )),
        _ => None,
    }
}

/// The iproute2 configuration directory of a names file: the parent of its
/// `rt_tables.d`, else its own directory.
pub fn iproute2_dir(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    match (dir.file_name(), dir.parent()) {
        (Some(n), Some(up)) if n == "rt_tables.d" => up.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// The files iproute2 reads table names from under `dir`: `rt_tables`,
/// then `rt_tables.d/*.conf` in name order.
fn name_files(dir: &Path) -> Vec<PathBuf> {
    let mut conf: Vec<PathBuf> = std::fs::read_dir(dir.join("rt_tables.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    conf.sort();
    let mut files = vec![dir.join("rt_tables")];
    files.extend(conf);
    files
}

/// `(line, table, name)` of each entry, parsed like iproute2 does.
fn entries(text: &str) -> impl Iterator<Item = (usize, u32, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let mut words = line.split_whitespace();
        let id = words.next().filter(|w| !w.starts_with('#'))?;
        let id = match id.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => id.parse().ok()?,
        };
        Some((i + 1, id, words.next()?))
    })
}

/// Refuses a gateway name that another names file under `dir` (the iproute2
/// configuration directory) already gives to a different table. `own` (our
/// file) and files carrying [`MARKER`] are skipped; unreadable files too,
/// as iproute2 cannot read them either.
pub fn collisions(dir: &Path, own: &Path, names: &[(u32, String)]) -> Result<(), RtTablesError> {
    for file in name_files(dir) {
        if file == own {
            continue;
        }
        let Ok(Some(text)) = read_regular(&file, true) else {
            continue;
        };
        if is_ours(&text) {
            continue;
        }
        for (line, theirs, name) in entries(&text) {
            if let Some((ours, _)) = names.iter().find(|(id, n)| n == name && *id != theirs) {
                return Err(RtTablesError::Collision {
                    name: name.to_string(),
                    ours: *ours,
                    theirs,
                    file,
                    line,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "rt_tables_tests.rs"]
mod tests;

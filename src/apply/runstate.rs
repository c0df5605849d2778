//! The run-state file: what the last apply left in the kernel, so the next
//! run can tell "nothing changed" without running nft. One line:
//! `NETNS GENERATION FINGERPRINT DIGEST`: the network namespace it was
//! recorded in, the nf_tables generation after the load, the plan's
//! fingerprint and the hash of the table as listed right after the load
//! (`-` when it could not be taken without a race).

use super::incr::Shape;
use crate::plan::Commands;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The recorded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    /// Inode of the network namespace (`/proc/self/ns/net`).
    pub netns: u64,
    /// nf_tables generation after the last load (or verification).
    pub generation: u32,
    /// The plan fingerprint loaded.
    pub fingerprint: String,
    /// Hash of the normalized table listing right after the load.
    pub digest: Option<u64>,
}

/// This process's network namespace inode (0 if unreadable).
pub fn netns() -> u64 {
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino())
}

/// The run state recorded at `sys.state`, if any; refuses a path that is
/// not a regular file.
pub fn recorded(sys: &super::System) -> Result<Option<RunState>, super::error::ApplyError> {
    match &sys.state {
        Some(p) => RunState::load(p).map_err(super::error::ApplyError::State),
        None => Ok(None),
    }
}

impl RunState {
    /// Reads the file; `None` when absent or unreadable (nothing is trusted).
    pub fn read(path: &Path) -> Option<RunState> {
        RunState::load(path).ok().flatten()
    }

    /// Reads the file (`None` when absent or not parseable); an error
    /// naming the path when it is not a regular file or cannot be read.
    pub fn load(path: &Path) -> Result<Option<RunState>, String> {
        let bytes = crate::ids::read_regular(path)?;
        Ok(bytes.and_then(|b| RunState::parse(&String::from_utf8_lossy(&b))))
    }

    /// Parses the one line.
    pub fn parse(text: &str) -> Option<RunState> {
        let mut w = text.split_whitespace();
        let s = RunState {
            netns: w.next()?.parse().ok()?,
            generation: w.next()?.parse().ok()?,
            fingerprint: w.next()?.to_string(),
            digest: match w.next()? {
                "-" => None,
                d => Some(u64::from_str_radix(d, 16).ok()?),
            },
        };
        w.next().is_none().then_some(s)
    }

    /// The one line.
    pub fn line(&self) -> String {
        let digest = self
            .digest
            .map_or_else(|| "-".to_string(), |d| format!("{d:016x}"));
        format!(
            "{} {} {} {digest}\n",
            self.netns, self.generation, self.fingerprint
        )
    }

    /// True when nothing is at `path`, or an empty regular file (nothing
    /// to lose), or one holding a run-state line: only then may connroute
    /// write or remove it (a foreign file, a symlink, a directory or a
    /// FIFO put there by mistake is left alone).
    pub fn is_ours_or_absent(path: &Path) -> bool {
        match crate::ids::read_regular(path) {
            Ok(None) => true,
            Ok(Some(bytes)) if bytes.is_empty() => true,
            Ok(Some(bytes)) => RunState::parse(&String::from_utf8_lossy(&bytes)).is_some(),
            Err(_) => false,
        }
    }

    /// Removes the file if it is connroute's (see [`Self::is_ours_or_absent`]),
    /// the batch recorded beside it, and what runs killed while writing
    /// either left ([`remove_temporaries`]).
    pub fn remove(path: &Path) {
        if path.exists() && Self::is_ours_or_absent(path) {
            let _ = std::fs::remove_file(path);
        }
        Batch::remove(path);
        remove_temporaries(path);
    }

    /// Writes the file atomically (same-dir temp, no symlink followed);
    /// refuses to replace a file that is not connroute's run state.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if !Self::is_ours_or_absent(path) {
            return Err(std::io::Error::other(format!(
                "{} is not connroute's run state: left alone",
                path.display()
            )));
        }
        write_atomically(path, |w| w.write_all(self.line().as_bytes()))
    }
}

/// Removes the temporary files [`write_atomically`] makes for the run
/// state at `state` and for its batch record (`STATE.tmpPID`,
/// `STATE.batch.tmpPID`) that runs killed mid-write left behind: those of
/// a pid that no longer runs, or of this process's own
/// ([`crate::ids::stale_writer`], as for the ids file's). Only names of
/// that exact form, and only files or symlinks (a symlink is removed, not
/// followed).
fn remove_temporaries(state: &Path) {
    let Some((dir, name)) = crate::config::source::split_as_written(state) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let name = name.as_encoded_bytes();
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(rest) = file.as_encoded_bytes().strip_prefix(name) else {
            continue;
        };
        let pid = rest
            .strip_prefix(b".tmp")
            .or_else(|| rest.strip_prefix(b".batch.tmp"));
        let temporary = pid.is_some_and(crate::ids::stale_writer);
        let plain = e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink());
        if temporary && plain {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes what `fill` writes (buffered: a few large writes) to `path`
/// through a same-directory temporary file (no symlink followed), renamed
/// over it. The directory is made, and a temporary file left by a killed
/// run that had this pid removed, only when the first create says so:
/// every apply that loads writes two of these files.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(&tmp)
    };
    let f = match create() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            create()?
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            create()?
        }
        r => r?,
    };
    let mut f = std::io::BufWriter::with_capacity(64 << 10, f);
    let res = fill(&mut f).and_then(|()| f.flush());
    drop(f);
    match res.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The batch the last load came from, kept beside the run state
/// (`STATE.batch`) so the next changed config can load only the
/// difference. First line `connroute batch FINGERPRINT CHECKSUM`, then one
/// command per line (compact JSON holds no newline). At most
/// [`Batch::MAX_BYTES`]: a bigger batch is not kept (the next change then
/// replaces the whole table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The fingerprint of the plan that made it.
    pub fingerprint: String,
    /// Its commands.
    pub commands: Vec<String>,
}

const BATCH_TAG: &str = "connroute batch ";
const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

impl Batch {
    /// Largest batch file kept (it lives in /var/run, RAM on a router).
    pub const MAX_BYTES: usize = 8 << 20;

    /// Where the batch beside the run state `state` lives.
    pub fn path(state: &Path) -> std::path::PathBuf {
        let mut p = state.as_os_str().to_owned();
        p.push(".batch");
        p.into()
    }

    fn checksum<S: Commands + ?Sized>(commands: &S) -> u64 {
        (0..commands.count()).fold(FNV0, |h, i| Batch::feed(h, commands.text(i)))
    }

    /// The checksum `h` after one more command.
    fn feed(h: u64, command: &str) -> u64 {
        let bytes = command.as_bytes().iter().chain(b"\n");
        bytes.fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    }

    /// Parses a batch file; `None` unless its header and checksum hold.
    pub fn parse(text: &str) -> Option<Batch> {
        let (head, body) = text.split_once('\n')?;
        let mut w = head.strip_prefix(BATCH_TAG)?.split(' ');
        let fingerprint = w.next()?.to_string();
        let sum = u64::from_str_radix(w.next()?, 16).ok()?;
        let commands: Vec<String> = body.lines().map(str::to_string).collect();
        (w.next().is_none() && Batch::checksum(&commands) == sum).then_some(Batch {
            fingerprint,
            commands,
        })
    }

    /// The batch recorded beside `state` for `fingerprint`, if any and whole.
    pub fn read(state: &Path, fingerprint: &str) -> Option<Batch> {
        let path = Batch::path(state);
        let bytes =
            crate::config::source::read_regular(&path, Batch::MAX_BYTES as u64, false).ok()?;
        let b = Batch::parse(std::str::from_utf8(&bytes).ok()?)?;
        (b.fingerprint == fingerprint).then_some(b)
    }

    /// Absent, an empty regular file (nothing to lose), or a regular file
    /// starting with the batch header.
    fn ours_or_absent(path: &Path) -> bool {
        use std::io::Read;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path);
        let mut head = [0u8; BATCH_TAG.len()];
        match file {
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            Ok(mut f) => match f.metadata() {
                Ok(m) if m.is_file() && m.len() == 0 => true,
                Ok(m) if m.is_file() => {
                    f.read_exact(&mut head).is_ok() && head == BATCH_TAG.as_bytes()
                }
                _ => false,
            },
        }
    }

    /// Records `commands` (of the plan `fingerprint`) beside `state`; a
    /// batch over the size limit removes the old record instead. A file
    /// there that is not connroute's is left alone (an error).
    pub fn write<S: Commands + ?Sized>(
        state: &Path,
        fingerprint: &str,
        commands: &S,
    ) -> std::io::Result<()> {
        let path = Batch::path(state);
        if !Batch::ours_or_absent(&path) {
            return Err(std::io::Error::other(format!(
                "{} is not connroute's batch record: left alone",
                path.display()
            )));
        }
        let texts = || (0..commands.count()).map(|i| commands.text(i));
        let size: usize = texts().map(|c| c.len() + 1).sum();
        if size + 64 > Batch::MAX_BYTES || texts().any(|c| c.contains('\n')) {
            log::info!(
                "batch of {size} bytes not kept (over {} MiB): the next change replaces the whole table",
                Batch::MAX_BYTES >> 20
            );
            Batch::remove(state);
            return Ok(());
        }
        let head = format!(
            "{BATCH_TAG}{fingerprint} {:016x}\n",
            Batch::checksum(commands)
        );
        write_atomically(&path, |w| {
            w.write_all(head.as_bytes())?;
            texts().try_for_each(|c| {
                w.write_all(c.as_bytes())?;
                w.write_all(b"\n")
            })
        })
    }

    /// The shape of the batch recorded beside `state` for `fingerprint`
    /// ([`Shape`]), read line by line: the record's texts are never held
    /// whole, only their sums. `None` unless the record is whole (header,
    /// checksum) and of a shape the incremental diff knows.
    pub fn read_shape(state: &Path, fingerprint: &str) -> Option<Shape<'static>> {
        use std::io::{BufRead, Read};
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(Batch::path(state))
            .ok()?;
        let meta = file.metadata().ok()?;
        let max = Batch::MAX_BYTES as u64;
        if !meta.is_file() || meta.len() > max {
            return None;
        }
        let mut r = std::io::BufReader::with_capacity(64 << 10, file.take(max + 1));
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let mut w = line.strip_suffix('\n')?.strip_prefix(BATCH_TAG)?.split(' ');
        let ours = w.next()? == fingerprint;
        let sum = u64::from_str_radix(w.next()?, 16).ok()?;
        if !ours || w.next().is_some() {
            return None;
        }
        let (mut h, mut shape) = (FNV0, Shape::default());
        loop {
            line.clear();
            if r.read_line(&mut line).ok()? == 0 {
                break;
            }
            let c = line.strip_suffix('\n').unwrap_or(&line);
            let c = c.strip_suffix('\r').unwrap_or(c);
            h = Batch::feed(h, c);
            shape.push(c)?;
        }
        (h == sum).then_some(())?;
        shape.finish()
    }

    /// Removes the batch recorded beside `state`, if it is connroute's.
    pub fn remove(state: &Path) {
        let path = Batch::path(state);
        if path.exists() && Batch::ours_or_absent(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run state for the file tests.
    fn sample() -> RunState {
        RunState {
            netns: 1,
            generation: 2,
            fingerprint: "f".into(),
            digest: None,
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let s = RunState {
            netns: 4026531992,
            generation: 17,
            fingerprint: "0ec28984c47e2c65".into(),
            digest: Some(0xabc),
        };
        assert_eq!(RunState::parse(&s.line()), Some(s.clone()));
        let none = RunState { digest: None, ..s };
        assert_eq!(RunState::parse(&none.line()), Some(none));
        for bad in ["", "1 2 fp", "1 2 fp zz", "x 2 fp -", "1 2 fp - extra"] {
            assert_eq!(RunState::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn writes_atomically() {
        let dir = std::env::temp_dir().join(format!("cr-runstate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state");
        let s = sample();
        s.write(&p).unwrap();
        s.write(&p).unwrap();
        assert_eq!(RunState::read(&p), Some(s.clone()));
        // A foreign file there is neither replaced nor removed.
        let other = dir.join("foreign");
        std::fs::write(&other, "keep\n").unwrap();
        assert!(s.write(&other).is_err());
        RunState::remove(&other);
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep\n");
        RunState::remove(&p);
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_made_and_a_killed_runs_temporary_file_replaced() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("cr-tmpfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("run").join("state");
        let s = sample();
        s.write(&p).unwrap();
        assert_eq!(RunState::read(&p), Some(s.clone()));
        // What a run with this pid left when killed mid-write: a stale
        // file, then a symlink (removed, never written through).
        let tmp = dir
            .join("run")
            .join(format!("state.tmp{}", std::process::id()));
        let target = dir.join("target");
        std::fs::write(&tmp, "half a line").unwrap();
        let s2 = RunState {
            generation: 3,
            ..s.clone()
        };
        s2.write(&p).unwrap();
        assert_eq!(RunState::read(&p), Some(s2.clone()));
        std::fs::write(&target, "keep\n").unwrap();
        symlink(&target, &tmp).unwrap();
        s.write(&p).unwrap();
        assert_eq!(RunState::read(&p), Some(s));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        assert!(
            std::fs::symlink_metadata(&tmp).is_err(),
            "temporary file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn removing_the_state_removes_what_killed_writers_left_and_nothing_else() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("cr-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state.tmp4")).unwrap();
        let p = dir.join("state");
        let s = sample();
        s.write(&p).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "keep\n").unwrap();
        // Pids of writers that are gone (and this process's own, which a
        // killed run before it had): stale. A live pid's (1, init) and a
        // name no pid makes are someone else's: kept.
        let dead = crate::ids::tests::unused_pid(4_000_000);
        let (dead2, me) = (crate::ids::tests::unused_pid(dead - 1), std::process::id());
        for stale in [format!("state.tmp{dead}"), format!("state.batch.tmp{me}")] {
            std::fs::write(dir.join(stale), "half").unwrap();
        }
        symlink(&target, dir.join(format!("state.tmp{dead2}"))).unwrap();
        let kept = [
            "state.tmp",
            "state.tmp12x",
            "state.batch.tmp",
            "state.old",
            "other.tmp5",
            "xstate.tmp5",
            "state.tmp1",
            "state.batch.tmp1",
            "state.tmp01",
        ];
        for k in kept {
            std::fs::write(dir.join(k), "keep\n").unwrap();
        }
        // Written as `D/sub/.`: its temporaries would be `D/sub/..tmpN`,
        // never `D/sub.tmpN`.
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub.tmp42"), "keep\n").unwrap();
        RunState::remove(&dir.join("sub").join("."));
        assert!(dir.join("sub.tmp42").exists(), "removed through D/sub/.");
        std::fs::remove_file(dir.join("sub.tmp42")).unwrap();
        std::fs::remove_dir(dir.join("sub")).unwrap();
        RunState::remove(&p);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
        want.extend(["state.tmp4".into(), "target".into()]);
        want.sort();
        assert_eq!(left, want);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_files_are_taken_over_other_odd_ones_left_alone() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("cr-empty-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state");
        let s = sample();
        // A zero-byte state and batch record (a truncation, `touch`): ours.
        std::fs::write(&state, "").unwrap();
        std::fs::write(Batch::path(&state), "").unwrap();
        s.write(&state).unwrap();
        assert_eq!(RunState::read(&state), Some(s.clone()));
        Batch::write(&state, "f", &["{}"]).unwrap();
        assert!(Batch::read(&state, "f").is_some());
        // A symlink to an empty file, a directory, a FIFO: left alone.
        let target = dir.join("target");
        std::fs::write(&target, "").unwrap();
        for odd in ["link", "dir", "fifo"] {
            let p = dir.join(odd);
            let batch = Batch::path(&p);
            match odd {
                "link" => {
                    symlink(&target, &p).unwrap();
                    symlink(&target, &batch).unwrap();
                }
                "dir" => {
                    std::fs::create_dir(&p).unwrap();
                    std::fs::create_dir(&batch).unwrap();
                }
                _ => {
                    for f in [&p, &batch] {
                        let c = std::ffi::CString::new(f.as_os_str().as_encoded_bytes()).unwrap();
                        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
                    }
                }
            }
            assert!(s.write(&p).is_err(), "{odd}");
            assert!(Batch::write(&p, "f", &["{}"]).is_err(), "{odd}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn batch_record_round_trips_and_is_refused_when_damaged_foreign_or_big() {
        let dir = std::env::temp_dir().join(format!("cr-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state");
        let cmds = ["{\"add\":{\"table\":{}}}", "{\"add\":{\"chain\":{}}}"];
        Batch::write(&state, "00ff", &cmds).unwrap();
        let b = Batch::read(&state, "00ff").unwrap();
        assert_eq!(b.commands, cmds);
        assert_eq!(Batch::read(&state, "00fe"), None, "another fingerprint");
        // One byte changed: the checksum no longer holds.
        let path = Batch::path(&state);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("chain", "chaim")).unwrap();
        assert_eq!(Batch::read(&state, "00ff"), None);
        // Too big to keep: the old record goes, nothing is written.
        let big = vec!["x".repeat(1 << 20); Batch::MAX_BYTES >> 20];
        Batch::write(&state, "00ff", &big).unwrap();
        assert!(!path.exists());
        // A file that is not connroute's is neither replaced nor removed.
        std::fs::write(&path, "keep\n").unwrap();
        assert!(Batch::write(&state, "00ff", &cmds).is_err());
        RunState::remove(&state);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep\n");
        std::fs::remove_file(&path).unwrap();
        // Removing the run state removes the record beside it.
        Batch::write(&state, "00ff", &cmds).unwrap();
        RunState::remove(&state);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

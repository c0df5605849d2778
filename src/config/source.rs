//! Reading the config (and the ids file) safely: only a regular file, and
//! only up to a size limit, so `-c /dev/zero` or a FIFO is refused at once
//! instead of filling memory or blocking forever. Also where the files
//! connroute writes (ids, run state) keep their temporaries.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The directory and file name of `path`, split where it is written, as
/// the temporary files beside connroute's own files are named (`Path`
/// would read `D/sub/.` as `D/sub`, whose directory is `D`); `None` when
/// the last part names no file (empty, `.`, `..`).
pub fn split_as_written(path: &Path) -> Option<(&Path, &OsStr)> {
    let raw = path.as_os_str().as_bytes();
    let (dir, name) = match raw.iter().rposition(|&b| b == b'/') {
        Some(0) => (&b"/"[..], &raw[1..]),
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (&b"."[..], raw),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return None;
    }
    Some((Path::new(OsStr::from_bytes(dir)), OsStr::from_bytes(name)))
}

/// Largest config file read (a 100,000-address rule is under 3 MiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads the regular file at `path`, at most `max` bytes. It is opened
/// non-blocking, so a FIFO cannot stall the open; anything that is not a
/// regular file is refused with [`io::ErrorKind::InvalidInput`], a file
/// over `max` bytes with [`io::ErrorKind::InvalidData`], both before
/// anything is read. With `follow` false a symlink at `path` is refused
/// too (files connroute writes itself: ids, run state).
pub fn read_regular(path: &Path, max: u64, follow: bool) -> io::Result<Vec<u8>> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | nofollow)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let too_big = |size: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{size} bytes, more than the {max} bytes allowed"),
        )
    };
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file growing while read is still cut at the limit.
    file.by_ref().take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit() {
        let dir = std::env::temp_dir().join(format!("connroute-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_regular(&f, 10, true).unwrap(), b"0123456789");
        let e = read_regular(&f, 9, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "10 bytes, more than the 9 bytes allowed");
        for special in [Path::new("/dev/zero"), dir.as_path()] {
            let e = read_regular(special, 10, true).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{special:?}");
        }
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever in a blocking open with no writer.
        let e = read_regular(&fifo, 10, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

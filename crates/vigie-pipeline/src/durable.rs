//! Durable file replacement: the one way Vigie writes a file that must survive a crash
//! whole (the detector snapshot, the compacted outbox journal, the account salt).
//!
//! A durable write is: write a temporary file beside the target, fsync it, rename it over
//! the target, fsync the directory. After a crash at any point the target holds either
//! its previous content or the new one, never a mix; once the function returns, the new
//! content survives a power loss (on file systems that honour fsync). The rename alone
//! is not enough: until the directory is fsync'd, the new directory entry may be lost
//! while the caller has already acted on it (committed Kafka offsets, for the snapshot).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Returns the temporary file a durable write of `path` goes through: a hidden sibling
/// (same directory, so the rename stays within one file system).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces `path` with `bytes` durably (temp file, fsync, rename, directory fsync).
///
/// On error the target is untouched (previous content, or still absent) and the
/// temporary file is removed; the error names the file that failed.
pub fn durable_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    durable_write_with(path, |writer| writer.write_all(bytes))
}

/// Replaces `path` durably with what `write` writes (streamed through a buffer, for large
/// files such as the detector snapshot); see [`durable_write`].
pub fn durable_write_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = write_and_rename(path, &tmp, write);
    if result.is_err() {
        // Best effort: a leftover temp file is harmless (overwritten by the next write)
        // but takes space, which may be what just ran out.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_and_rename(
    path: &Path,
    tmp: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let with_path = |what: &str, file: &Path| {
        let file = file.display().to_string();
        let what = what.to_owned();
        move |err: std::io::Error| {
            std::io::Error::new(err.kind(), format!("cannot {what} {file}: {err}"))
        }
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(with_path("create", tmp))?;
    let mut writer = BufWriter::new(file);
    write(&mut writer).map_err(with_path("write", tmp))?;
    let file = writer
        .into_inner()
        .map_err(|err| err.into_error())
        .map_err(with_path("write", tmp))?;
    file.sync_all().map_err(with_path("fsync", tmp))?;
    drop(file);
    std::fs::rename(tmp, path).map_err(with_path("rename into place", path))?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, making a rename or creation in it durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("cannot fsync directory {}: {err}", dir.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_new_file_and_replaces_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.bin");
        durable_write(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        durable_write(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert!(!temp_path(&path).exists(), "no temp file left behind");
    }

    #[test]
    fn a_failure_before_the_rename_leaves_the_old_content_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.bin");
        durable_write(&path, b"old content").unwrap();
        // Fails halfway through the new content, as a full disk or a crash would.
        let err = durable_write_with(&path, |writer| {
            writer.write_all(b"new cont")?;
            writer.flush()?;
            Err(std::io::Error::other("simulated failure"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("simulated failure"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old content");
        assert!(!temp_path(&path).exists());

        // A target that never existed stays absent.
        let absent = dir.path().join("absent.bin");
        durable_write_with(&absent, |_| Err(std::io::Error::other("simulated"))).unwrap_err();
        assert!(!absent.exists());
    }

    /// A real ENOSPC: the temp file is a symlink to `/dev/full`, which refuses every
    /// write with "No space left on device".
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_gives_a_clear_error_naming_the_file_and_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("detector.snapshot");
        durable_write(&path, b"old snapshot").unwrap();
        std::os::unix::fs::symlink("/dev/full", temp_path(&path)).unwrap();
        let err = durable_write(&path, &vec![7u8; 64 * 1024]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
        let message = err.to_string();
        assert!(message.contains(".detector.snapshot.tmp"), "{message}");
        assert!(message.contains("No space left"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old snapshot");
        // Space is back (the symlink was removed with the failed temp file).
        durable_write(&path, b"new snapshot").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new snapshot");
    }
}

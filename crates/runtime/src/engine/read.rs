//! Reads of files that may be hostile (a plugin, a policy, an input, a cache entry, a report):
//! only regular files, opened without blocking (a FIFO with no writer would otherwise block the
//! open forever), and with the size limit applied while reading, so `/dev/zero`, a growing
//! file or a huge sparse file costs at most the limit plus one byte.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why [`read_regular_file`] read nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The path names something other than a regular file (a FIFO, a device, a folder, a
    /// socket); nothing was read from it.
    #[error("it is a {0}, not a regular file")]
    NotRegular(&'static str),
    /// The file holds more than the limit; at most the limit and one byte were read.
    #[error("it is larger than the {0} bytes read at most")]
    TooLarge(u64),
}

/// What kind of file a non-regular file type is, for [`ReadError::NotRegular`].
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "folder"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Opens `path` for reading without blocking and checks, on the open handle, that it is a
/// regular file.
pub(crate) fn open_regular(path: &Path) -> Result<File, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    check_regular(&file)?;
    Ok(file)
}

/// Refuses an open handle that is not a regular file.
pub(crate) fn check_regular(file: &File) -> Result<(), ReadError> {
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(ReadError::NotRegular(kind_of(file_type)));
    }
    Ok(())
}

/// Reads an open regular file up to `limit` bytes; more is [`ReadError::TooLarge`]. The buffer
/// grows with what is read, never with what the file claims its size is.
pub(crate) fn read_limited(file: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    let claimed = file.metadata()?.len();
    if claimed > limit {
        return Err(ReadError::TooLarge(limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(claimed).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Reads a regular file of at most `limit` bytes. A FIFO, a device, a folder or a socket is
/// refused without reading from it (and without blocking); a file that holds more than
/// `limit` bytes, or grows past it while being read, is refused after reading at most
/// `limit + 1` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_limited(open_regular(path)?, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular_file(&file, 5).unwrap(), b"12345");
        assert!(matches!(
            read_regular_file(&file, 4),
            Err(ReadError::TooLarge(4))
        ));
        assert!(matches!(
            read_regular_file(dir.path(), 100),
            Err(ReadError::NotRegular("folder"))
        ));
        assert!(matches!(
            read_regular_file(Path::new("/dev/zero"), 100),
            Err(ReadError::NotRegular("character device"))
        ));
    }

    #[test]
    fn a_fifo_without_a_writer_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let error = read_regular_file(&fifo, 100).unwrap_err();
        assert_eq!(error.to_string(), "it is a FIFO, not a regular file");
    }
}

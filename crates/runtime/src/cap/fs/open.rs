//! File and directory handles for front ends that keep files open (WASI preview 1). Opening
//! is decided like any path operation; every read, write and size change on an open handle is
//! decided again (with its bytes, for the quotas) against the path it was opened by, so a
//! handle carries no authority beyond what the policy grants each call.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use cap_std::fs::{Dir, MetadataExt, OpenOptions};
use sandbox_policy::{FsAccess, FsQuery, LinkRequest, Policy, Request};

use super::{io_error, open_dir_nofollow, open_file_nofollow, walk_nofollow, Mounts, Prepared};
use crate::broker::{Broker, HostError, Permit};

mod posix;

pub(crate) use posix::TimeSpec;

/// The path a handle was opened by, as decided: what the guest asked and what it resolved to.
#[derive(Debug, Clone)]
pub(crate) struct DecidedPath {
    request_path: String,
    resolved: Option<String>,
}

impl DecidedPath {
    fn query(&self, op: FsAccess, bytes: u64) -> FsQuery<'_> {
        FsQuery {
            op,
            path: &self.request_path,
            not_utf8: false,
            resolved: self.resolved.as_deref(),
            bytes,
        }
    }
}

/// Fuel charged for each directory entry a listing reads (the 24 bytes of a WASI `dirent`),
/// before it is read.
pub(crate) const LIST_FUEL_PER_ENTRY: u64 = 3;

/// Counts one file, folder or link the guest created (`filesystem.quotas.entries`).
pub(crate) fn count_entry(broker: &mut Broker) {
    let usage = broker.usage_mut();
    usage.fs_entries_created = usage.fs_entries_created.saturating_add(1);
}

/// An open regular file.
#[derive(Debug)]
pub(crate) struct GuestFile {
    file: std::fs::File,
    path: DecidedPath,
    pub readable: bool,
    pub writable: bool,
    /// Each write without an offset goes to the end (emulated: the host file is never
    /// opened `O_APPEND`, so the flag can be toggled and combined with truncation).
    pub append: bool,
    /// Reported by `fd_fdstat_get`; regular files never block, so it changes nothing else.
    pub nonblock: bool,
}

impl GuestFile {
    /// The guest path the file was opened by, as resolved.
    pub(crate) fn guest_path(&self) -> &str {
        self.path
            .resolved
            .as_deref()
            .unwrap_or(&self.path.request_path)
    }
}

/// An open directory; relative paths are taken from its guest path.
#[derive(Debug)]
pub(crate) struct GuestDir {
    dir: DirHandle,
    /// Normalised and resolved guest path, e.g. `/data/sub`.
    pub guest: String,
}

/// A mount's root is the broker's own handle; other directories are opened by the guest.
#[derive(Debug)]
enum DirHandle {
    Mount(usize),
    Opened(Dir),
}

pub(crate) enum Opened {
    File(GuestFile),
    Dir(GuestDir),
}

/// What a guest asks for when it opens a path.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OpenSpec {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub directory: bool,
    pub append: bool,
    /// Kept on the handle and reported back; regular files never block.
    pub nonblock: bool,
    /// Follow a symlink in the last component (beneath the mount, as every resolution).
    pub follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    Other,
}

/// File metadata as front ends report it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub kind: FileKind,
    pub size: u64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub atime_ns: u64,
    pub mtime_ns: u64,
    pub ctime_ns: u64,
}

fn nanos(secs: i64, nsecs: i64) -> u64 {
    u64::try_from(secs)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(nsecs).unwrap_or(0))
}

impl Stat {
    fn of(meta: &cap_std::fs::Metadata) -> Stat {
        let file_type = meta.file_type();
        let kind = if file_type.is_symlink() {
            FileKind::Symlink
        } else if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_file() {
            FileKind::Regular
        } else {
            FileKind::Other
        };
        Stat {
            kind,
            size: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
            nlink: meta.nlink(),
            atime_ns: nanos(meta.atime(), meta.atime_nsec()),
            mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One directory entry as front ends list it.
#[derive(Debug, Clone)]
pub(crate) struct DirEntry {
    pub name: Vec<u8>,
    pub kind: FileKind,
    pub ino: u64,
}

impl Mounts {
    /// The root of mount `index`, handed to the guest as a preopened directory. Handing it out
    /// grants nothing: every operation beneath it is decided on its own.
    pub(crate) fn preopen(&self, policy: &Policy, index: usize) -> GuestDir {
        GuestDir {
            dir: DirHandle::Mount(index),
            guest: policy.filesystem.mounts[index].guest.clone(),
        }
    }

    /// The host directory of a guest directory handle, for what `permit` allows.
    fn dir_of<'a>(&'a self, permit: &Permit, dir: &'a GuestDir) -> &'a Dir {
        match &dir.dir {
            DirHandle::Mount(index) => self.root(permit, *index),
            DirHandle::Opened(handle) => handle,
        }
    }

    fn lstat_of(&self, policy: &Policy, prepared: &Prepared) -> Option<cap_std::fs::Metadata> {
        let (dir, rel) = self.locate_lookup(policy, prepared)?;
        dir.symlink_metadata(&rel)
    }

    /// Opens a file or directory. Each access the open implies is decided first: `create`
    /// for a new file, `read` and `write` as asked, and truncation counts as a write.
    pub(crate) fn open(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
        spec: OpenSpec,
    ) -> Result<Opened, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, spec.follow)?;
        let meta = self.lstat_of(&policy, &prepared);
        let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
        // A trailing slash asks for a directory, as `O_DIRECTORY` does.
        let spec = OpenSpec {
            directory: spec.directory || (prepared.trailing_slash && meta.is_some() && !is_dir),
            ..spec
        };
        if spec.directory || (is_dir && !spec.write && !spec.truncate && !spec.create) {
            let event = broker.check_fs(&prepared.query(FsAccess::Stat, 0))?;
            let result = match &meta {
                None => Err(HostError::NotFound),
                Some(m) if m.is_symlink() => Err(HostError::Loop),
                Some(m) if !m.is_dir() => Err(HostError::NotDir),
                // A directory cannot be opened for writing (`EISDIR`, as in Wasmtime).
                Some(_) if spec.write => Err(HostError::WrongKind),
                Some(_) => self.open_dir_at(&event, &policy, &prepared),
            };
            return match result {
                Ok(dir) => {
                    let _ = broker.finish(event, Ok(0));
                    Ok(Opened::Dir(dir))
                }
                Err(e) => Err(broker.finish(event, Err(e)).unwrap_err()),
            };
        }

        let mut events = Vec::with_capacity(3);
        if meta.is_none() && spec.create {
            events.push(broker.check_fs(&prepared.query(FsAccess::Create, 0))?);
        }
        if spec.read {
            events.push(broker.check_fs(&prepared.query(FsAccess::Read, 0))?);
        }
        if spec.write || spec.truncate {
            events.push(broker.check_fs(&prepared.query(FsAccess::Write, 0))?);
        }
        if events.is_empty() {
            events.push(broker.check_fs(&prepared.query(FsAccess::Stat, 0))?);
        }
        let result = match &meta {
            // `open("dir/", O_CREAT)`: a file cannot be made under a directory's name.
            Some(m) if spec.create && prepared.trailing_slash && m.is_dir() => {
                Err(HostError::WrongKind)
            }
            Some(_) if spec.create && spec.exclusive => Err(HostError::Exists),
            None if !spec.create => Err(self.missing(&policy, &prepared)),
            // `open("new/", O_CREAT)`: a file cannot be made under a directory's name.
            None if prepared.trailing_slash => Err(HostError::WrongKind),
            Some(m) if m.is_dir() => Err(HostError::WrongKind),
            // A symlink the guest did not ask to follow is `ELOOP`, as `O_NOFOLLOW` is.
            Some(m) if m.is_symlink() => Err(HostError::Loop),
            // FIFOs, devices and symlinks (when not following) are never opened.
            Some(m) if !m.is_file() => Err(HostError::WrongKind),
            _ => self.open_file_at(&events[0], &policy, &prepared, spec),
        };
        if result.is_ok() && meta.is_none() && spec.create {
            count_entry(broker);
        }
        for event in events {
            let _ = broker.finish(event, result.as_ref().map(|_| 0).map_err(Clone::clone));
        }
        result.map(Opened::File)
    }

    fn open_dir_at(
        &self,
        permit: &Permit,
        policy: &Policy,
        prepared: &Prepared,
    ) -> Result<GuestDir, HostError> {
        let (root, rel) = self
            .locate(permit, policy, prepared)
            .ok_or(HostError::NotFound)?;
        let dir = open_dir_nofollow(root, &rel).map_err(io_error)?;
        let guest = prepared.effective().unwrap_or("/").to_owned();
        Ok(GuestDir {
            dir: DirHandle::Opened(dir),
            guest,
        })
    }

    fn open_file_at(
        &self,
        permit: &Permit,
        policy: &Policy,
        prepared: &Prepared,
        spec: OpenSpec,
    ) -> Result<GuestFile, HostError> {
        let (root, rel) = self
            .locate(permit, policy, prepared)
            .ok_or(HostError::NotFound)?;
        let writes = spec.write || spec.truncate;
        if spec.create && !writes {
            // Like std, cap-std refuses `create` without `write` (C's `O_CREAT|O_RDONLY`):
            // make the file, then open it only as asked.
            let mut make = OpenOptions::new();
            make.write(true).create_new(true);
            match open_file_nofollow(root, &rel, &make) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !spec.exclusive => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        let mut options = OpenOptions::new();
        options
            // An open with neither right (for `fd_filestat_get`) reads nothing.
            .read(spec.read || !writes)
            .write(writes)
            .truncate(spec.truncate)
            .create(spec.create && writes);
        if spec.create && spec.exclusive && writes {
            options.create_new(true);
        }
        let file = open_file_nofollow(root, &rel, &options).map_err(io_error)?;
        Ok(GuestFile {
            file: file.into_std(),
            path: DecidedPath {
                request_path: prepared.request_path.to_string(),
                resolved: prepared.resolved.clone(),
            },
            // Like Wasmtime, an open with neither right may read (each read is decided).
            readable: spec.read || !writes,
            writable: writes,
            append: spec.append,
            nonblock: spec.nonblock,
        })
    }

    /// Reads from an open file, at `offset` or at its position. Decided on the bytes the
    /// read would return, so a read that would cross the quota is refused whole.
    pub(crate) fn file_read(
        &self,
        broker: &mut Broker,
        file: &mut GuestFile,
        offset: Option<u64>,
        buf: &mut [u8],
    ) -> Result<u64, HostError> {
        let size = file.file.metadata().map_err(io_error)?.len();
        let position = match offset {
            Some(at) => at,
            None => file.file.stream_position().map_err(io_error)?,
        };
        let available = size.saturating_sub(position).min(buf.len() as u64);
        let event = broker.check_fs(&file.path.query(FsAccess::Read, available))?;
        let buf = &mut buf[..available as usize];
        let mut filled = 0;
        let result = loop {
            if filled == buf.len() {
                break Ok(filled as u64);
            }
            let read = match offset {
                Some(at) => file.file.read_at(&mut buf[filled..], at + filled as u64),
                None => file.file.read(&mut buf[filled..]),
            };
            match read {
                Ok(0) => break Ok(filled as u64),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(io_error(e)),
            }
        };
        if let Ok(n) = result {
            let usage = broker.usage_mut();
            usage.fs_read_bytes = usage.fs_read_bytes.saturating_add(n);
        }
        broker.finish(event, result)
    }

    /// Writes to an open file, at `offset` or at its position (the end, in append mode). A
    /// write that starts past the end also grows the file by the hole before it, and is
    /// charged for it, as `file_set_size` charges growth: the quota bounds how far files grow.
    pub(crate) fn file_write(
        &self,
        broker: &mut Broker,
        file: &mut GuestFile,
        offset: Option<u64>,
        data: &[u8],
    ) -> Result<u64, HostError> {
        let size = file.file.metadata().map_err(io_error)?.len();
        let start = match offset {
            _ if file.append => size,
            Some(at) => at,
            None => file.file.stream_position().map_err(io_error)?,
        };
        let charged = start.saturating_sub(size).saturating_add(data.len() as u64);
        let event = broker.check_fs(&file.path.query(FsAccess::Write, charged))?;
        let result = match offset {
            // As Wasmtime (and Linux's `O_APPEND`): in append mode a positioned write appends.
            Some(_) if file.append => file
                .file
                .seek(SeekFrom::End(0))
                .and_then(|_| file.file.write_all(data)),
            Some(at) => file.file.write_all_at(data, at),
            None if file.append => file
                .file
                .seek(SeekFrom::End(0))
                .and_then(|_| file.file.write_all(data)),
            None => file.file.write_all(data),
        }
        .map(|()| charged)
        .map_err(io_error);
        if let Ok(n) = result {
            let usage = broker.usage_mut();
            usage.fs_write_bytes = usage.fs_write_bytes.saturating_add(n);
        }
        // The guest is told the bytes of its data, whatever the hole cost.
        broker.finish(event, result).map(|_| data.len() as u64)
    }

    /// Sets an open file's size. Growth counts as bytes written; shrinking is a write of none.
    pub(crate) fn file_set_size(
        &self,
        broker: &mut Broker,
        file: &mut GuestFile,
        size: u64,
    ) -> Result<(), HostError> {
        let current = file.file.metadata().map_err(io_error)?.len();
        let growth = size.saturating_sub(current);
        let event = broker.check_fs(&file.path.query(FsAccess::Write, growth))?;
        let result = file.file.set_len(size).map(|()| growth).map_err(io_error);
        if let Ok(n) = result {
            let usage = broker.usage_mut();
            usage.fs_write_bytes = usage.fs_write_bytes.saturating_add(n);
        }
        broker.finish(event, result).map(|_| ())
    }

    /// Moves an open file's position (a handle operation: its open was decided).
    pub(crate) fn file_seek(
        &self,
        _permit: &Permit,
        file: &mut GuestFile,
        to: SeekFrom,
    ) -> Result<u64, HostError> {
        file.file.seek(to).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => HostError::Invalid,
            _ => io_error(e),
        })
    }

    /// Flushes an open file to disk (a handle operation: its open was decided).
    pub(crate) fn file_sync(&self, _permit: &Permit, file: &GuestFile) -> Result<(), HostError> {
        file.file.sync_all().map_err(io_error)
    }

    /// Metadata of an open file: the open was decided, so this is not decided again.
    pub(crate) fn file_stat(&self, _permit: &Permit, file: &GuestFile) -> Result<Stat, HostError> {
        let meta = file.file.metadata().map_err(io_error)?;
        Ok(Stat::of(&cap_std::fs::Metadata::from_just_metadata(meta)))
    }

    /// Metadata of an open directory: the open was decided, so this is not decided again.
    pub(crate) fn dir_stat(&self, permit: &Permit, dir: &GuestDir) -> Result<Stat, HostError> {
        let meta = match &dir.dir {
            DirHandle::Mount(index) => self.root(permit, *index).dir_metadata().ok(),
            DirHandle::Opened(handle) => handle.dir_metadata().ok(),
        };
        Ok(Stat::of(&meta.ok_or(HostError::Io)?))
    }

    /// Lists an open directory, sorted by name, `.` and `..` first; decided as `list`.
    pub(crate) fn dir_list(
        &self,
        broker: &mut Broker,
        dir: &GuestDir,
    ) -> Result<Vec<DirEntry>, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, dir.guest.as_bytes(), true)?;
        let event = broker.check_fs(&prepared.query(FsAccess::List, 0))?;
        let result = (|| {
            let handle = self.dir_of(&event, dir);
            let this = handle.dir_metadata().map_err(io_error)?;
            let mut entries = Vec::new();
            // Each entry is paid for before it is read; the deadline is checked in slices.
            for (i, e) in handle.entries().map_err(io_error)?.enumerate() {
                broker.charge_fuel(LIST_FUEL_PER_ENTRY)?;
                if i % 256 == 255 {
                    broker.check_deadline()?;
                }
                let Ok(e) = e else { continue };
                let kind = match e.file_type() {
                    Ok(t) if t.is_symlink() => FileKind::Symlink,
                    Ok(t) if t.is_dir() => FileKind::Directory,
                    Ok(t) if t.is_file() => FileKind::Regular,
                    _ => FileKind::Other,
                };
                entries.push(DirEntry {
                    name: e.file_name().into_encoded_bytes(),
                    kind,
                    ino: e.metadata().map(|m| m.ino()).unwrap_or(0),
                });
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let mut all = Vec::with_capacity(entries.len() + 2);
            for name in [&b"."[..], &b".."[..]] {
                all.push(DirEntry {
                    name: name.to_vec(),
                    kind: FileKind::Directory,
                    ino: this.ino(),
                });
            }
            all.extend(entries);
            Ok(all)
        })();
        let bytes = result
            .as_ref()
            .map(|e| e.len() as u64)
            .map_err(Clone::clone);
        let _ = broker.finish(event, bytes);
        result
    }

    /// Metadata of a path, decided as `stat`.
    pub(crate) fn path_stat(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
        follow: bool,
    ) -> Result<Stat, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, follow)?;
        let event = broker.check_fs(&prepared.query(FsAccess::Stat, 0))?;
        // As Wasmtime: a trailing slash is not checked here, and a file met before the
        // last component is `ENOTDIR`.
        let result = self
            .lstat_of(&policy, &prepared)
            .ok_or_else(|| self.missing(&policy, &prepared));
        let _ = broker.finish(event, result.as_ref().map(|_| 0).map_err(Clone::clone));
        result.map(|m| Stat::of(&m))
    }

    /// Creates a directory, decided as `create`.
    pub(crate) fn make_dir(&self, broker: &mut Broker, raw_path: &[u8]) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, false)?;
        let event = broker.check_fs(&prepared.query(FsAccess::Create, 0))?;
        let result = self.in_parent(&event, &policy, &prepared, |parent, name| {
            parent.create_dir(name)
        });
        if result.is_ok() {
            count_entry(broker);
        }
        broker.finish(event, result).map(|_| ())
    }

    /// Removes an empty directory, decided as `delete`.
    pub(crate) fn remove_dir(&self, broker: &mut Broker, raw_path: &[u8]) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, false)?;
        let event = broker.check_fs(&prepared.query(FsAccess::Delete, 0))?;
        let dot = raw_path.ends_with(b"/.") || raw_path.ends_with(b"/./");
        let result = if prepared.trailing_slash || dot {
            // Wasmtime (cap-std) refuses `rmdir("d/")` and `rmdir(".")` with `EINVAL`; so
            // does the sandbox.
            self.must_be_dir(&policy, &prepared)
                .and(Err(HostError::Invalid))
        } else {
            self.in_parent(&event, &policy, &prepared, |parent, name| {
                parent.remove_dir(name)
            })
        };
        broker.finish(event, result).map(|_| ())
    }

    /// Renames a file or directory; decided as `rename` on both the old and the new path.
    pub(crate) fn rename(
        &self,
        broker: &mut Broker,
        raw_from: &[u8],
        raw_to: &[u8],
    ) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        let from = self.prepare(broker, &policy, raw_from, false)?;
        let to = self.prepare(broker, &policy, raw_to, false)?;
        let from_event = broker.check_fs(&from.query(FsAccess::Rename, 0))?;
        let to_event = broker.check_fs(&to.query(FsAccess::Rename, 0))?;
        let result = (|| {
            if from.trailing_slash || to.trailing_slash {
                self.must_be_dir(&policy, &from)?;
            }
            let (from_root, from_rel) = self
                .locate(&from_event, &policy, &from)
                .ok_or(HostError::NotFound)?;
            let (to_root, to_rel) = self
                .locate(&to_event, &policy, &to)
                .ok_or(HostError::NotFound)?;
            let (from_dir, from_name) = walk_nofollow(from_root, &from_rel).map_err(io_error)?;
            let (to_dir, to_name) = walk_nofollow(to_root, &to_rel).map_err(io_error)?;
            let (Some(from_name), Some(to_name)) = (from_name, to_name) else {
                // A mount root cannot be renamed, nor replaced.
                return Err(HostError::Invalid);
            };
            from_dir
                .rename(&from_name, &to_dir, &to_name)
                .map(|()| 0)
                .map_err(io_error)
        })();
        let _ = broker.finish(from_event, result.clone());
        broker.finish(to_event, result).map(|_| ())
    }

    /// Creates a symlink: decided as `symlink` on the link's path, then its target by the
    /// policy's link rule (`fs.symlink_target`: relative, no `..`, inside the link's own
    /// mount), whose bytes count against the write quota. A host process following the link
    /// later would read an escaping target as a host path.
    pub(crate) fn make_symlink(
        &self,
        broker: &mut Broker,
        target: &[u8],
        raw_link: &[u8],
    ) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_link, false)?;
        let event = broker.check_fs(&prepared.query(FsAccess::Symlink, 0))?;
        // A link is not a directory: `symlink(t, "new/")` makes nothing.
        if prepared.trailing_slash {
            let refused = match self.lstat_of(&policy, &prepared) {
                Some(m) if m.is_dir() => HostError::Exists,
                Some(_) => HostError::NotDir,
                None => HostError::NotFound,
            };
            return broker.finish(event, Err(refused)).map(|_| ());
        }
        let link = Request::FsLink(LinkRequest {
            link: prepared
                .normalized
                .as_deref()
                .unwrap_or(&prepared.request_path)
                .to_owned(),
            target: String::from_utf8_lossy(target).into_owned(),
            not_utf8: std::str::from_utf8(target).is_err(),
        });
        let target_permit = match broker.check(link) {
            Ok(permit) => permit,
            Err(e) => {
                let _ = broker.finish(event, Err(HostError::Invalid));
                return Err(e);
            }
        };
        let text = String::from_utf8_lossy(target).into_owned();
        let result = self.in_parent(&event, &policy, &prepared, |parent, name| {
            parent.symlink(&text, name)
        });
        if result.is_ok() {
            let usage = broker.usage_mut();
            usage.fs_write_bytes = usage.fs_write_bytes.saturating_add(target.len() as u64);
            usage.fs_entries_created = usage.fs_entries_created.saturating_add(1);
        }
        let _ = broker.finish(target_permit, result.clone().map(|_| target.len() as u64));
        broker.finish(event, result).map(|_| ())
    }

    /// The contents of a symlink, decided as `read` of its bytes (they count against the read
    /// quota). The link is read with a lookup first, to know how many bytes the decision is on.
    pub(crate) fn read_symlink(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
    ) -> Result<Vec<u8>, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, false)?;
        if prepared.trailing_slash {
            // "link/" names what the link points to, never a link: `ENOTDIR` or `EINVAL`.
            let event = broker.check_fs(&prepared.query(FsAccess::Read, 0))?;
            let refused = self
                .must_be_dir(&policy, &prepared)
                .and(Err(HostError::Invalid));
            return broker.finish(event, refused).map(|_| Vec::new());
        }
        let contents = self
            .locate_lookup(&policy, &prepared)
            .and_then(|(dir, rel)| dir.read_link_contents(&rel).ok())
            .map(|target| target.into_os_string().into_encoded_bytes());
        let bytes = contents.as_ref().map_or(0, |c| c.len() as u64);
        let event = broker.check_fs(&prepared.query(FsAccess::Read, bytes))?;
        let Some(contents) = contents else {
            let missing = match self.lstat_of(&policy, &prepared) {
                None => HostError::NotFound,
                Some(_) => HostError::Invalid,
            };
            return broker.finish(event, Err(missing)).map(|_| Vec::new());
        };
        let usage = broker.usage_mut();
        usage.fs_read_bytes = usage.fs_read_bytes.saturating_add(bytes);
        broker.finish(event, Ok(bytes)).map(|_| contents)
    }

    /// Runs `op` on the parent directory of a path and its last component, opened without
    /// following symlinks.
    fn in_parent(
        &self,
        permit: &Permit,
        policy: &Policy,
        prepared: &Prepared,
        op: impl FnOnce(&Dir, &std::ffi::OsStr) -> std::io::Result<()>,
    ) -> Result<u64, HostError> {
        let (root, rel) = self
            .locate(permit, policy, prepared)
            .ok_or(HostError::NotFound)?;
        let (parent, name) = walk_nofollow(root, &rel).map_err(io_error)?;
        // The mount root itself has no parent inside the mount.
        let name = name.ok_or(HostError::Invalid)?;
        op(&parent, &name).map(|()| 0).map_err(io_error)
    }
}

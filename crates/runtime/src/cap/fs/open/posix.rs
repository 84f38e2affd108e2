//! The POSIX details preview 1 programs rely on beyond opening, reading and writing: setting
//! times, hard links, and the "must be a directory" meaning of a trailing slash. Each host
//! operation is decided first, like every other.

use std::path::Path;
use std::sync::Arc;

use cap_fs_ext::{DirExt, SystemTimeSpec};
use sandbox_policy::{FsAccess, Policy};

use super::{DirHandle, GuestDir, GuestFile};
use crate::broker::{Broker, HostError};
use crate::cap::fs::{io_error, walk_nofollow, Mounts, Prepared};

/// One timestamp of a "set times" call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSpec {
    /// Leave it as it is.
    Keep,
    /// The host's current time.
    Now,
    /// Nanoseconds since the Unix epoch.
    At(u64),
}

impl TimeSpec {
    fn system_time(self) -> Option<std::time::SystemTime> {
        match self {
            TimeSpec::Keep => None,
            TimeSpec::Now => Some(std::time::SystemTime::now()),
            TimeSpec::At(ns) => Some(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns)),
        }
    }

    fn spec(self) -> Option<SystemTimeSpec> {
        match self {
            TimeSpec::Keep => None,
            TimeSpec::Now => Some(SystemTimeSpec::SymbolicNow),
            TimeSpec::At(_) => self
                .system_time()
                .map(|t| SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(t))),
        }
    }
}

impl Mounts {
    /// `NotDir` unless the prepared path names a directory.
    pub(crate) fn must_be_dir(
        &self,
        policy: &Policy,
        prepared: &Prepared,
    ) -> Result<(), HostError> {
        match self.lstat_of(policy, prepared) {
            None => Err(self.missing(policy, prepared)),
            Some(m) if m.is_dir() => Ok(()),
            Some(_) => Err(HostError::NotDir),
        }
    }

    /// Why a path that does not exist is missing: `NotDir` when a component before the last
    /// is not a directory (`file.txt/x`), else `NotFound`.
    pub(crate) fn missing(&self, policy: &Policy, prepared: &Prepared) -> HostError {
        let Some((dir, rel)) = self.locate_lookup(policy, prepared) else {
            return HostError::NotFound;
        };
        for parent in rel.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                break;
            }
            if let Some(meta) = dir.symlink_metadata(parent) {
                if !meta.is_dir() {
                    return HostError::NotDir;
                }
            }
        }
        HostError::NotFound
    }

    /// Sets an open file's times, decided as `write` (of no bytes) on the path it was opened
    /// by: times are metadata the guest changes, and only `write` grants changing a file.
    pub(crate) fn file_set_times(
        &self,
        broker: &mut Broker,
        file: &GuestFile,
        atime: TimeSpec,
        mtime: TimeSpec,
    ) -> Result<(), HostError> {
        let event = broker.check_fs(&file.path.query(FsAccess::Write, 0))?;
        let mut times = std::fs::FileTimes::new();
        if let Some(t) = atime.system_time() {
            times = times.set_accessed(t);
        }
        if let Some(t) = mtime.system_time() {
            times = times.set_modified(t);
        }
        let result = file.file.set_times(times).map(|()| 0).map_err(io_error);
        broker.finish(event, result).map(|_| ())
    }

    /// Sets an open directory's times, decided as `write` on its guest path.
    pub(crate) fn dir_set_times(
        &self,
        broker: &mut Broker,
        dir: &GuestDir,
        atime: TimeSpec,
        mtime: TimeSpec,
    ) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, dir.guest.as_bytes(), true)?;
        let event = broker.check_fs(&prepared.query(FsAccess::Write, 0))?;
        let handle = match &dir.dir {
            DirHandle::Mount(index) => self.root(&event, *index),
            DirHandle::Opened(handle) => handle,
        };
        let result = handle
            .set_times(Path::new("."), atime.spec(), mtime.spec())
            .map(|()| 0)
            .map_err(io_error);
        broker.finish(event, result).map(|_| ())
    }

    /// Sets the times of a path (of a symlink itself unless `follow`), decided as `write`.
    pub(crate) fn path_set_times(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
        follow: bool,
        atime: TimeSpec,
        mtime: TimeSpec,
    ) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        // "link/" names what the link points to, which must be a directory.
        let trailing = raw_path.len() > 1 && raw_path.ends_with(b"/");
        let prepared = self.prepare(broker, &policy, raw_path, follow || trailing)?;
        let event = broker.check_fs(&prepared.query(FsAccess::Write, 0))?;
        let result = (|| {
            if trailing {
                self.must_be_dir(&policy, &prepared)?;
            }
            let (root, rel) = self
                .locate(&event, &policy, &prepared)
                .ok_or(HostError::NotFound)?;
            let (parent, name) = walk_nofollow(root, &rel).map_err(io_error)?;
            let name = name.map_or_else(|| Path::new(".").to_path_buf(), Into::into);
            // The path is resolved already: the last component is never a link to follow.
            parent
                .set_symlink_times(&name, atime.spec(), mtime.spec())
                .map(|()| 0)
                .map_err(io_error)
        })();
        broker.finish(event, result).map(|_| ())
    }

    /// Makes `raw_new` a hard link to `raw_old`. Decided as `read` and `write` on the old path
    /// (the new name reaches the same bytes, so it may not reach more than the old one does)
    /// and `create` on the new one. Both must lie in one mount: a link never crosses mounts,
    /// and a read-only mount refuses the `write` (`FS_READ_ONLY_MOUNT`), so no file of a
    /// read-only mount gains a writable name.
    pub(crate) fn hard_link(
        &self,
        broker: &mut Broker,
        raw_old: &[u8],
        raw_new: &[u8],
    ) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        let old = self.prepare(broker, &policy, raw_old, false)?;
        let new = self.prepare(broker, &policy, raw_new, false)?;
        let events = [
            broker.check_fs(&old.query(FsAccess::Read, 0))?,
            broker.check_fs(&old.query(FsAccess::Write, 0))?,
            broker.check_fs(&new.query(FsAccess::Create, 0))?,
        ];
        let mount_of = |p: &Prepared| p.effective().and_then(|g| policy.mount_for(g)).map(|m| m.0);
        let result = (|| {
            if old.trailing_slash || new.trailing_slash {
                // A link never names a directory: an existing new name is `EEXIST` first.
                if self.lstat_of(&policy, &new).is_some() {
                    return Err(HostError::Exists);
                }
                return Err(HostError::NotFound);
            }
            if mount_of(&old) != mount_of(&new) {
                return Err(HostError::CrossMount);
            }
            let (old_root, old_rel) = self
                .locate(&events[0], &policy, &old)
                .ok_or(HostError::NotFound)?;
            let (new_root, new_rel) = self
                .locate(&events[2], &policy, &new)
                .ok_or(HostError::NotFound)?;
            let (old_dir, old_name) = walk_nofollow(old_root, &old_rel).map_err(io_error)?;
            let (new_dir, new_name) = walk_nofollow(new_root, &new_rel).map_err(io_error)?;
            let (Some(old_name), Some(new_name)) = (old_name, new_name) else {
                // A mount root is a directory: it has no second name.
                return Err(HostError::WrongKind);
            };
            old_dir
                .hard_link(&old_name, &new_dir, &new_name)
                .map(|()| 0)
                .map_err(io_error)
        })();
        let [a, b, c] = events;
        let _ = broker.finish(a, result.clone());
        let _ = broker.finish(b, result.clone());
        broker.finish(c, result).map(|_| ())
    }
}

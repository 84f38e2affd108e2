//! Filesystem capability: mounts opened as cap-std directories, guest paths resolved beneath
//! them, and the file operations of every front end. Each operation asks the broker first and
//! touches the host only after an allow; files are opened through the mount's `Dir`, so even a
//! symlink swapped in after the check cannot lead outside it.

use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, OpenOptions, OpenOptionsExt};
use sandbox_policy::{
    normalize_guest_path, normalize_guest_path_cow, FsAccess, FsQuery, Policy, ReasonCode,
};

use crate::broker::events::Outcome;
use crate::broker::{failure_outcome, Broker, HostError, Permit};

pub(crate) mod open;

/// Symlinks followed in one resolution before it is refused as a loop.
const MAX_SYMLINK_HOPS: usize = 40;

/// Fuel charged for each path component resolution looks up (a `stat` and, for a folder, an
/// open), before the lookup.
pub(crate) const RESOLVE_FUEL_PER_COMPONENT: u64 = 4;

/// Components looked up between two checks of the run's deadline.
const DEADLINE_CHECK_EVERY: usize = 64;

/// Linux's `O_NONBLOCK`: a FIFO swapped in after the check must not block the host on open.
const O_NONBLOCK: i32 = 0o4000;

/// Opens the directories along `rel` one by one, following no symlink. Paths are resolved to
/// symlink-free ones before they are decided, so a symlink met here was swapped in since the
/// decision: the open fails closed instead of following it. Returns the parent directory and
/// the last component (`None` for the mount root).
pub(crate) fn walk_nofollow(
    root: &Dir,
    rel: &Path,
) -> std::io::Result<(Dir, Option<std::ffi::OsString>)> {
    let mut parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    let last = parts.pop().map(|p| p.to_owned());
    if !parts.is_empty() {
        let parent: PathBuf = parts.iter().collect();
        if let Some(opened) = open_beneath(root, &parent) {
            return Ok((opened?, last));
        }
    }
    let mut current = root.try_clone()?;
    for part in parts {
        current = current.open_dir_nofollow(part)?;
    }
    Ok((current, last))
}

/// The folder `rel` beneath `root` in one `openat2` that follows no symlink and never leaves
/// `root` (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`), instead of one
/// open per component. `None` when the kernel cannot (no `openat2`, or it refuses it here):
/// the component walk decides then, and refuses the same links.
fn open_beneath(root: &Dir, rel: &Path) -> Option<std::io::Result<Dir>> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match openat2(root, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => Some(Ok(Dir::from_std_file(std::fs::File::from(fd)))),
        Err(Errno::NOSYS | Errno::LOOP | Errno::XDEV | Errno::AGAIN | Errno::PERM) => None,
        Err(e) => Some(Err(e.into())),
    }
}

pub(crate) fn open_file_nofollow(
    root: &Dir,
    rel: &Path,
    options: &OpenOptions,
) -> std::io::Result<File> {
    let (dir, last) = walk_nofollow(root, rel)?;
    let last = last.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::IsADirectory))?;
    let mut options = options.clone();
    options.follow(FollowSymlinks::No).custom_flags(O_NONBLOCK);
    let file = dir.open_with(last, &options)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
    }
    Ok(file)
}

pub(crate) fn open_dir_nofollow(root: &Dir, rel: &Path) -> std::io::Result<Dir> {
    match walk_nofollow(root, rel)? {
        (dir, None) => Ok(dir),
        (dir, Some(last)) => dir.open_dir_nofollow(last),
    }
}

/// The host folders of the policy's mounts, opened once and shared by every call of a
/// [`Sandbox`](crate::Sandbox): cloning shares the handles, it opens nothing.
#[derive(Clone)]
pub(crate) struct Mounts {
    /// Private: a mount's root is reached through [`Mounts::root`] (with a permit) or
    /// [`Mounts::lookup`] (metadata only), nothing else.
    dirs: std::sync::Arc<[Dir]>,
}

/// Why a run cannot start with this policy's mounts.
#[derive(Debug, thiserror::Error)]
#[error("mount `{guest}`: cannot open host folder `{host}`: {source}")]
pub struct MountError {
    /// The mount's guest path.
    pub guest: String,
    /// The host folder that could not be opened.
    pub host: PathBuf,
    /// Why it could not be opened.
    #[source]
    pub source: std::io::Error,
}

impl Mounts {
    /// Opens the host folder of every mount of the policy.
    pub(crate) fn new(policy: &Policy) -> Result<Mounts, MountError> {
        let mut dirs = Vec::with_capacity(policy.filesystem.mounts.len());
        for mount in &policy.filesystem.mounts {
            let host = policy.mount_host_path(mount);
            let dir =
                Dir::open_ambient_dir(&host, ambient_authority()).map_err(|source| MountError {
                    guest: mount.guest.clone(),
                    host: host.clone(),
                    source,
                })?;
            dirs.push(dir);
        }
        Ok(Mounts { dirs: dirs.into() })
    }
}

/// How `fs_list` lays out a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFormat {
    /// Each name followed by `\n` (`fs_list`); names holding a newline are left out.
    Lines,
    /// Each name as a 4-byte little-endian length and its bytes (`fs_list_entries`).
    LengthPrefixed,
}

/// File metadata as the ABI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub size: u64,
    pub is_dir: bool,
}

/// A mount root seen before any decision: metadata and link contents only, which resolution
/// and the size a decision needs must read. It can open nothing.
#[derive(Clone, Copy)]
pub(crate) struct Lookup<'a>(&'a Dir);

impl Lookup<'_> {
    pub(crate) fn symlink_metadata(&self, rel: &Path) -> Option<cap_std::fs::Metadata> {
        self.0.symlink_metadata(rel).ok()
    }

    pub(crate) fn metadata(&self, rel: &Path) -> Option<cap_std::fs::Metadata> {
        self.0.metadata(rel).ok()
    }

    fn read_link_contents(&self, rel: &Path) -> std::io::Result<PathBuf> {
        self.0.read_link_contents(rel)
    }

    /// A subdirectory, opened without following a symlink, to look further beneath it.
    fn open_dir(&self, name: &Path) -> Option<Dir> {
        self.0.open_dir_nofollow(name).ok()
    }
}

/// A guest path after normalisation and resolution beneath its mount. It borrows the guest's
/// bytes where it can: a normal UTF-8 path outside every mount allocates nothing.
pub(crate) struct Prepared<'a> {
    pub(crate) request_path: Cow<'a, str>,
    pub(crate) not_utf8: bool,
    /// Normalised path; `None` when the path is invalid.
    pub(crate) normalized: Option<Cow<'a, str>>,
    /// The path after following symlinks, when it differs from `normalized`.
    pub(crate) resolved: Option<String>,
    /// The guest wrote a trailing `/`: for the calls that create, remove or open, the path
    /// must name a directory.
    pub(crate) trailing_slash: bool,
}

impl Prepared<'_> {
    pub(crate) fn effective(&self) -> Option<&str> {
        self.resolved.as_deref().or(self.normalized.as_deref())
    }

    /// The request `decide` sees for operation `op` on this path.
    pub(crate) fn query(&self, op: FsAccess, bytes: u64) -> FsQuery<'_> {
        FsQuery {
            op,
            path: &self.request_path,
            not_utf8: self.not_utf8,
            resolved: self.resolved.as_deref(),
            bytes,
        }
    }
}

impl Mounts {
    /// The root of mount `index`, for the operation a permit allows.
    pub(crate) fn root(&self, _permit: &Permit, index: usize) -> &Dir {
        &self.dirs[index]
    }

    /// The root of mount `index` for lookups before the decision.
    pub(crate) fn lookup(&self, index: usize) -> Lookup<'_> {
        Lookup(&self.dirs[index])
    }

    /// Normalises a guest path and resolves it beneath its mount. Resolution charges fuel
    /// per path component it looks up, before the lookup, and stops at the run's deadline.
    pub(crate) fn prepare<'a>(
        &self,
        broker: &mut Broker,
        policy: &Policy,
        raw: &'a [u8],
        follow_last: bool,
    ) -> Result<Prepared<'a>, HostError> {
        let trailing_slash = raw.len() > 1 && raw.last() == Some(&b'/');
        let (request_path, not_utf8) = match std::str::from_utf8(raw) {
            Ok(s) => (Cow::Borrowed(s), false),
            Err(_) => (String::from_utf8_lossy(raw), true),
        };
        let normalized = if not_utf8 {
            None
        } else {
            normalize_guest_path_cow(raw).ok()
        };
        // Only a path beneath a mount has links to follow.
        let resolved = match normalized.as_deref() {
            Some(n) if policy.mount_for(n).is_some() => {
                Some(self.resolve(broker, policy, n, follow_last)?)
            }
            _ => None,
        }
        .filter(|r| Some(r.as_str()) != normalized.as_deref());
        Ok(Prepared {
            request_path,
            not_utf8,
            normalized,
            resolved,
            trailing_slash,
        })
    }

    /// Follows symlinks beneath the path's mount, reading links with cap-std (never through
    /// the host's own resolution). Absolute link targets are guest paths. Resolution stops as
    /// soon as it leaves the mount it started in: `decide` then refuses the request. The
    /// directory handle is kept while walking, so a walk costs one lookup per component.
    fn resolve(
        &self,
        broker: &mut Broker,
        policy: &Policy,
        guest: &str,
        follow_last: bool,
    ) -> Result<String, HostError> {
        let mut current = guest.to_owned();
        let start_mount = policy.mount_for(guest).map(|(i, _)| i);
        let mut hops = 0;
        'restart: loop {
            let Some((index, mount)) = policy.mount_for(&current) else {
                return Ok(current);
            };
            if Some(index) != start_mount {
                return Ok(current);
            }
            let rel = current[mount.guest.len()..]
                .trim_start_matches('/')
                .to_owned();
            let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
            // `None` is the mount's root; deeper levels are opened as the walk descends.
            let mut level: Option<Dir> = None;
            for (i, part) in parts.iter().enumerate() {
                if i + 1 == parts.len() && !follow_last {
                    break;
                }
                broker.charge_fuel(RESOLVE_FUEL_PER_COMPONENT)?;
                if i % DEADLINE_CHECK_EVERY == 0 {
                    broker.check_deadline()?;
                }
                let here = match &level {
                    Some(dir) => Lookup(dir),
                    None => self.lookup(index),
                };
                let name = Path::new(part);
                let Some(meta) = here.symlink_metadata(name) else {
                    break;
                };
                if meta.is_dir() {
                    match here.open_dir(name) {
                        Some(next) => level = Some(next),
                        None => break,
                    }
                    continue;
                }
                if !meta.is_symlink() {
                    break;
                }
                hops += 1;
                let target = match here.read_link_contents(name) {
                    Ok(t) if hops <= MAX_SYMLINK_HOPS => t,
                    // A loop or an unreadable link: name a path no mount covers.
                    _ => return Ok("/\u{0}symlink-loop".to_owned()),
                };
                let Some(target) = target.to_str() else {
                    return Ok("/\u{0}non-utf8-symlink".to_owned());
                };
                let parent = format!("{}/{}", mount.guest, parts[..i].join("/"));
                let rest = parts[i + 1..].join("/");
                let joined = if target.starts_with('/') {
                    format!("{target}/{rest}")
                } else {
                    format!("{parent}/{target}/{rest}")
                };
                match normalize_guest_path(joined.as_bytes()) {
                    Ok(next) => current = next,
                    Err(_) => return Ok("/\u{0}invalid-symlink".to_owned()),
                }
                continue 'restart;
            }
            return Ok(current);
        }
    }

    /// The mount's directory and the path relative to it, for the path `decide` looked at,
    /// to do what `permit` allows.
    pub(crate) fn locate(
        &self,
        permit: &Permit,
        policy: &Policy,
        prepared: &Prepared,
    ) -> Option<(&Dir, PathBuf)> {
        let (index, rel) = mount_relative(policy, prepared)?;
        Some((self.root(permit, index), rel))
    }

    /// [`Mounts::locate`] before the decision: metadata only.
    pub(crate) fn locate_lookup(
        &self,
        policy: &Policy,
        prepared: &Prepared,
    ) -> Option<(Lookup<'_>, PathBuf)> {
        let (index, rel) = mount_relative(policy, prepared)?;
        Some((self.lookup(index), rel))
    }

    fn metadata_of(&self, policy: &Policy, prepared: &Prepared) -> Option<cap_std::fs::Metadata> {
        let (dir, rel) = self.locate_lookup(policy, prepared)?;
        dir.metadata(&rel)
    }

    /// Reads up to `buf.len()` bytes at `offset`. The decision is taken on the bytes the read
    /// would really return, so a read that would cross the quota is refused whole.
    pub(crate) fn fs_read(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<u64, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, true)?;
        let meta = self.metadata_of(&policy, &prepared);
        let available = match &meta {
            Some(m) if m.is_file() => m.len().saturating_sub(offset).min(buf.len() as u64),
            _ => 0,
        };
        let permit = broker.check_fs(&prepared.query(FsAccess::Read, available))?;
        let result = match &meta {
            None => Err(HostError::NotFound),
            Some(m) if m.is_dir() => Err(HostError::WrongKind),
            // FIFOs and devices could block the host without a bound: regular files only.
            Some(m) if !m.is_file() => Err(HostError::WrongKind),
            // At or past the end nothing is read; seeking there could fail (offsets past the
            // largest file size are EINVAL), and the ABI promises 0.
            Some(_) if available == 0 => Ok(0),
            Some(_) => self.read_at(
                &permit,
                &policy,
                &prepared,
                offset,
                &mut buf[..available as usize],
            ),
        };
        if let Ok(n) = result {
            let usage = broker.usage_mut();
            usage.fs_read_bytes = usage.fs_read_bytes.saturating_add(n);
        }
        broker.finish(permit, result)
    }

    fn read_at(
        &self,
        permit: &Permit,
        policy: &Policy,
        prepared: &Prepared,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<u64, HostError> {
        let (dir, rel) = self
            .locate(permit, policy, prepared)
            .ok_or(HostError::NotFound)?;
        let mut file =
            open_file_nofollow(dir, &rel, OpenOptions::new().read(true)).map_err(io_error)?;
        file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(filled as u64)
    }

    /// Writes `data` to a file, replacing it or appending to it. A new file needs `create`
    /// as well as `write`; both are decided before anything on disk changes.
    pub(crate) fn fs_write(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
        data: &[u8],
        append: bool,
    ) -> Result<u64, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, true)?;
        let meta = self.metadata_of(&policy, &prepared);
        let create = match meta {
            None => Some(broker.check_fs(&prepared.query(FsAccess::Create, 0))?),
            Some(_) => None,
        };
        let permit = broker.check_fs(&prepared.query(FsAccess::Write, data.len() as u64))?;
        if meta.as_ref().is_some_and(|m| !m.is_file()) {
            return broker.finish(permit, Err(HostError::WrongKind));
        }
        let result = (|| {
            let (dir, rel) = self
                .locate(&permit, &policy, &prepared)
                .ok_or(HostError::NotFound)?;
            let mut options = OpenOptions::new();
            options.write(true).create(true);
            if append {
                options.append(true);
            } else {
                options.truncate(true);
            }
            let mut file = open_file_nofollow(dir, &rel, &options).map_err(io_error)?;
            file.write_all(data).map_err(io_error)?;
            Ok(data.len() as u64)
        })();
        if let Ok(n) = result {
            let usage = broker.usage_mut();
            usage.fs_write_bytes = usage.fs_write_bytes.saturating_add(n);
        }
        if let Some(create) = create {
            if result.is_ok() {
                open::count_entry(broker);
            }
            let _ = broker.finish(create, result.clone().map(|_| 0));
        }
        broker.finish(permit, result)
    }

    /// Size and kind of a file or directory.
    pub(crate) fn fs_stat(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
    ) -> Result<FileStat, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, true)?;
        let permit = broker.check_fs(&prepared.query(FsAccess::Stat, 0))?;
        let meta = self
            .locate(&permit, &policy, &prepared)
            .and_then(|(dir, rel)| dir.metadata(rel).ok());
        match meta {
            Some(m) => {
                broker.set_outcome(&permit, Outcome::Done { bytes: 0 });
                Ok(FileStat {
                    size: m.len(),
                    is_dir: m.is_dir(),
                })
            }
            None => {
                broker.set_outcome(&permit, Outcome::NotFound);
                Err(HostError::NotFound)
            }
        }
    }

    /// Lists a directory: entry names, sorted, in the format `format` says. In the line
    /// format a name holding a newline would forge entries, so it is left out, with an event.
    pub(crate) fn fs_list(
        &self,
        broker: &mut Broker,
        raw_path: &[u8],
        format: ListFormat,
    ) -> Result<Vec<u8>, HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, true)?;
        let permit = broker.check_fs(&prepared.query(FsAccess::List, 0))?;
        let mut left_out = Vec::new();
        let result = (|| {
            let (dir, rel) = self
                .locate(&permit, &policy, &prepared)
                .ok_or(HostError::NotFound)?;
            let entries = open_dir_nofollow(dir, &rel)
                .and_then(|d| d.entries())
                .map_err(io_error)?;
            let mut names: Vec<String> = Vec::new();
            for (i, entry) in entries.enumerate() {
                broker.charge_fuel(open::LIST_FUEL_PER_ENTRY)?;
                if i % 256 == 255 {
                    broker.check_deadline()?;
                }
                if let Ok(entry) = entry {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            names.sort();
            let mut out = Vec::new();
            for name in names {
                match format {
                    ListFormat::Lines if name.contains('\n') => left_out.push(name),
                    ListFormat::Lines => {
                        out.extend_from_slice(name.as_bytes());
                        out.push(b'\n');
                    }
                    ListFormat::LengthPrefixed => {
                        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
                        out.extend_from_slice(name.as_bytes());
                    }
                }
            }
            Ok(out)
        })();
        for name in left_out {
            broker.record_fault(
                "fs.list",
                ReasonCode::FsPathInvalid,
                "fs_list.newline_in_name",
                Outcome::Failed {
                    error: format!(
                        "an entry of `{}` has a newline in its name ({} bytes): left out of the line listing",
                        prepared.request_path,
                        name.len()
                    ),
                },
            );
        }
        match &result {
            Ok(out) => broker.set_outcome(
                &permit,
                Outcome::Done {
                    bytes: out.len() as u64,
                },
            ),
            Err(e) => broker.set_outcome(&permit, failure_outcome(e)),
        }
        result
    }

    /// Deletes a file (a symlink itself, never its target).
    pub(crate) fn fs_delete(&self, broker: &mut Broker, raw_path: &[u8]) -> Result<(), HostError> {
        let policy = Arc::clone(broker.policy());
        let prepared = self.prepare(broker, &policy, raw_path, false)?;
        let permit = broker.check_fs(&prepared.query(FsAccess::Delete, 0))?;
        let result = (|| {
            let (dir, rel) = self
                .locate(&permit, &policy, &prepared)
                .ok_or(HostError::NotFound)?;
            match dir.symlink_metadata(&rel) {
                Err(_) => Err(self.missing(&policy, &prepared)),
                Ok(m) if m.is_dir() => Err(HostError::WrongKind),
                Ok(_) if prepared.trailing_slash => Err(HostError::NotDir),
                Ok(_) => {
                    let (parent, last) = walk_nofollow(dir, &rel).map_err(io_error)?;
                    let last = last.ok_or(HostError::WrongKind)?;
                    parent.remove_file(last).map_err(io_error).map(|_| 0)
                }
            }
        })();
        broker.finish(permit, result).map(|_| ())
    }
}

/// The mount a prepared path falls in and the path relative to the mount's root.
fn mount_relative(policy: &Policy, prepared: &Prepared) -> Option<(usize, PathBuf)> {
    let guest = prepared.effective()?;
    let (index, mount) = policy.mount_for(guest)?;
    let rel = guest[mount.guest.len()..].trim_start_matches('/');
    let rel = if rel.is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(rel)
    };
    Some((index, rel))
}

/// Linux's `ELOOP` and `EXDEV`, which `std::io::ErrorKind` names only on nightly.
const ELOOP: i32 = 40;
const EXDEV: i32 = 18;
const EINVAL: i32 = 22;
const EPERM: i32 = 1;

pub(crate) fn io_error(e: std::io::Error) -> HostError {
    match e.raw_os_error() {
        Some(ELOOP) => return HostError::Loop,
        Some(EXDEV) => return HostError::CrossMount,
        Some(EINVAL) => return HostError::Invalid,
        Some(EPERM) => return HostError::NotPermitted,
        _ => {}
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => HostError::NotFound,
        std::io::ErrorKind::IsADirectory => HostError::WrongKind,
        std::io::ErrorKind::NotADirectory => HostError::NotDir,
        std::io::ErrorKind::AlreadyExists => HostError::Exists,
        std::io::ErrorKind::DirectoryNotEmpty => HostError::NotEmpty,
        _ => HostError::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_never_follow_a_symlink_swapped_in_after_the_decision() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
        std::fs::write(tmp.path().join("sub/plain.txt"), "plain").unwrap();
        std::os::unix::fs::symlink("secret.txt", tmp.path().join("link")).unwrap();
        std::os::unix::fs::symlink("sub", tmp.path().join("dir-link")).unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let read = OpenOptions::new().read(true).clone();
        assert!(open_file_nofollow(&root, Path::new("sub/plain.txt"), &read).is_ok());
        assert!(open_file_nofollow(&root, Path::new("link"), &read).is_err());
        assert!(open_file_nofollow(&root, Path::new("dir-link/plain.txt"), &read).is_err());
        assert!(open_dir_nofollow(&root, Path::new("dir-link")).is_err());
        assert!(open_dir_nofollow(&root, Path::new("sub")).is_ok());
        assert!(
            open_file_nofollow(&root, Path::new("sub"), &read).is_err(),
            "a directory is not a file"
        );
    }

    /// The one-syscall walk opens real folders beneath the root and nothing through a link
    /// (here the kernel has `openat2`; elsewhere the component walk answers the same).
    #[test]
    fn the_walk_opens_nested_folders_in_one_step_and_no_folder_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b/c")).unwrap();
        std::fs::write(tmp.path().join("a/b/c/f.txt"), "f").unwrap();
        std::os::unix::fs::symlink("a", tmp.path().join("l")).unwrap();
        std::os::unix::fs::symlink("/", tmp.path().join("a/up")).unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        if let Some(opened) = open_beneath(&root, Path::new("a/b/c")) {
            let dir = opened.unwrap();
            assert!(dir.exists("f.txt"));
        }
        for through_link in ["l/b", "a/up/etc"] {
            match open_beneath(&root, Path::new(through_link)) {
                None => {}
                Some(opened) => assert!(opened.is_err(), "{through_link}"),
            }
            assert!(walk_nofollow(&root, Path::new(&format!("{through_link}/x"))).is_err());
        }
        let (parent, last) = walk_nofollow(&root, Path::new("a/b/c/f.txt")).unwrap();
        assert_eq!(last.as_deref(), Some(std::ffi::OsStr::new("f.txt")));
        assert!(parent.exists("f.txt"));
    }

    #[test]
    fn opening_a_fifo_neither_blocks_nor_succeeds() {
        let tmp = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(tmp.path().join("fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        let root = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let read = OpenOptions::new().read(true).clone();
        assert!(open_file_nofollow(&root, Path::new("fifo"), &read).is_err());
    }
}

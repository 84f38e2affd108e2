//! The on-disk cache of compiled modules. An entry is keyed by the module's SHA-256 and a
//! fingerprint of the engine (Wasmtime's compatibility hash, its version and this crate's), and
//! is written by atomic rename into a folder created `0700`. Before an entry is used its digest
//! is checked and its header must name the module and engine asked for; anything else is
//! compiled again and replaced. A folder that cannot be written means no cache, never an error.
//!
//! Trust, as ssh checks its files: the folder and each entry must be owned by the user the
//! process runs as (or root) and writable by no group or other user, and an entry must be a
//! regular file reached without following a link. What fails is not read at all: the module is
//! compiled and [`Rejected::Untrusted`] says why the cache was not used.
//!
//! Entry layout: magic (16 bytes), SHA-256 of everything after it (32), module SHA-256 (32),
//! engine fingerprint (32), then the bytes of [`Module::serialize`].

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::{SANDBOX_VERSION, WASMTIME_VERSION};

const MAGIC: &[u8; 16] = b"sandbox-cwasm-1\n";
const HEADER_BYTES: usize = 16 + 32 * 3;

/// Where compiled modules are kept between runs. An entry is keyed by the module's SHA-256 and
/// a fingerprint of the engine (Wasmtime's compatibility hash and both crates' versions), is
/// written by atomic rename into a folder created `0700`, and is used only after its digest
/// checks out and its header names the module and engine asked for; anything else is compiled
/// again and replaced. A folder that cannot be written means no cache, never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleCache {
    dir: PathBuf,
}

/// How a loaded plugin got its compiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// The sandbox has no cache: the module was compiled.
    Disabled,
    /// No entry yet: compiled, and stored unless the folder could not be written.
    Miss {
        /// Whether the compiled module was written to the cache.
        stored: bool,
    },
    /// Read from the cache after its digest and header checked out.
    Hit,
    /// An entry was there but could not be trusted, or the folder itself is not trusted:
    /// compiled again, and replaced unless the folder is [`Rejected::Untrusted`].
    Rejected {
        /// Why the entry was not used.
        reason: Rejected,
        /// Whether the new compiled module was stored.
        stored: bool,
    },
}

/// Why a cache entry was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Truncated, or its digest does not match its bytes.
    Corrupt,
    /// Intact, but written for another module or another engine, or refused by Wasmtime.
    Stale,
    /// The cache folder or the entry is owned by another user or writable by group or
    /// others (or the entry is not a regular file): it was not read, and nothing is stored
    /// in such a folder.
    Untrusted,
}

/// Largest cache entry read: a compiled module of a plugin within any sensible
/// `limits.module_bytes` is far smaller.
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// Whether a file's owner and mode let only this user (or root) change it.
fn trusted(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    (meta.uid() == me || meta.uid() == 0) && meta.mode() & 0o022 == 0
}

/// Opens the cache folder and checks it on the open handle, so the entry is then opened
/// beneath the very folder that was checked. `None`: no folder (or it cannot be opened).
fn open_trusted_dir(dir: &Path) -> Option<Result<std::fs::File, Rejected>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(dir)
        .ok()?;
    let meta = file.metadata().ok()?;
    Some(if meta.is_dir() && trusted(&meta) {
        Ok(file)
    } else {
        Err(Rejected::Untrusted)
    })
}

/// Reads an entry beneath a checked folder: no link followed, no blocking open, a regular file
/// this user owns that no one else can write, at most [`MAX_ENTRY_BYTES`].
fn read_entry(dir: &std::fs::File, name: &str) -> Option<Result<Vec<u8>, Rejected>> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        // A link where the entry should be is not followed, and not trusted.
        Err(rustix::io::Errno::LOOP) => return Some(Err(Rejected::Untrusted)),
        Err(_) => return None,
    };
    let file = std::fs::File::from(fd);
    let trusted_file = file
        .metadata()
        .is_ok_and(|meta| meta.is_file() && trusted(&meta));
    if !trusted_file {
        return Some(Err(Rejected::Untrusted));
    }
    Some(super::read::read_limited(file, MAX_ENTRY_BYTES).map_err(|_| Rejected::Corrupt))
}

pub(crate) enum Lookup {
    Hit(Module),
    Miss,
    Rejected(Rejected),
}

/// What identifies an engine's compiled code: Wasmtime's compatibility hash (version, target,
/// flags, tunables) plus the versions, in case either crate changes what it compiles.
pub(crate) fn engine_fingerprint(engine: &Engine) -> [u8; 32] {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(WASMTIME_VERSION.as_bytes());
    hasher.0.update(SANDBOX_VERSION.as_bytes());
    hasher.0.finalize().into()
}

fn default_dir_from(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    // The XDG spec says relative values are to be ignored.
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute(xdg_cache_home).or_else(|| absolute(home).map(|h| h.join(".cache")))?;
    Some(base.join("sandbox-cli"))
}

/// The file name of a module's entry for an engine.
fn entry_name(module_sha256: &[u8; 32], engine: &[u8; 32]) -> String {
    let mut key = Sha256::new();
    key.update(MAGIC);
    key.update(module_sha256);
    key.update(engine);
    format!("{}.cwasm", hex::encode(key.finalize()))
}

/// Makes temp file names unique between threads of one process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl ModuleCache {
    /// A cache in `dir`. Nothing is touched until a module is stored.
    pub fn new(dir: impl Into<PathBuf>) -> ModuleCache {
        ModuleCache { dir: dir.into() }
    }

    /// The user's cache folder: `$XDG_CACHE_HOME/sandbox-cli`, else `~/.cache/sandbox-cli`;
    /// `None` when neither variable names an absolute path.
    pub fn default_dir() -> Option<PathBuf> {
        default_dir_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
    }

    /// The cache in [`ModuleCache::default_dir`], if there is one.
    pub fn user_default() -> Option<ModuleCache> {
        Self::default_dir().map(ModuleCache::new)
    }

    /// The folder the entries live in (it may not exist yet).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a module's entry for an engine.
    pub(crate) fn entry_path(&self, module_sha256: &[u8; 32], engine: &[u8; 32]) -> PathBuf {
        self.dir.join(entry_name(module_sha256, engine))
    }

    pub(crate) fn lookup(
        &self,
        engine: &Engine,
        fingerprint: &[u8; 32],
        module_sha256: &[u8; 32],
    ) -> Lookup {
        // Absent or unreadable: there is no entry to trust. Owned by another user or
        // writable by others: not read at all.
        let dir = match open_trusted_dir(&self.dir) {
            None => return Lookup::Miss,
            Some(Err(reason)) => return Lookup::Rejected(reason),
            Some(Ok(dir)) => dir,
        };
        let bytes = match read_entry(&dir, &entry_name(module_sha256, fingerprint)) {
            None => return Lookup::Miss,
            Some(Err(reason)) => return Lookup::Rejected(reason),
            Some(Ok(bytes)) => bytes,
        };
        if bytes.len() < HEADER_BYTES || &bytes[..16] != MAGIC {
            return Lookup::Rejected(Rejected::Corrupt);
        }
        if Sha256::digest(&bytes[48..]).as_slice() != &bytes[16..48] {
            return Lookup::Rejected(Rejected::Corrupt);
        }
        if &bytes[48..80] != module_sha256 || &bytes[80..112] != fingerprint {
            return Lookup::Rejected(Rejected::Stale);
        }
        // SAFETY: `deserialize` trusts its bytes to be what `Module::serialize` wrote. What is
        // checked above, on open handles: the cache folder is owned by this process's
        // effective user (or root) and is not writable by group or others; the entry was
        // opened beneath that very folder without following a link, is a regular file with
        // the same owner and mode rules, and was read whole within `MAX_ENTRY_BYTES`; its
        // SHA-256 digest matches its contents, and its header names this module's SHA-256 and
        // this engine's fingerprint; Wasmtime then checks its own header (version and
        // configuration). So only this user or root could have written these bytes. Not
        // checked: the folders above the cache folder (one writable by others could swap the
        // cache folder for another folder of this user's, which still holds only this user's
        // files), and root or this user writing a hostile entry (they could as well replace
        // the binary).
        #[allow(unsafe_code)]
        match unsafe { Module::deserialize(engine, &bytes[HEADER_BYTES..]) } {
            Ok(module) => Lookup::Hit(module),
            Err(_) => Lookup::Rejected(Rejected::Stale),
        }
    }

    /// Stores a compiled module; false when the folder or file could not be written.
    pub(crate) fn store(
        &self,
        fingerprint: &[u8; 32],
        module_sha256: &[u8; 32],
        module: &Module,
    ) -> bool {
        let Ok(payload) = module.serialize() else {
            return false;
        };
        let mut body = Vec::with_capacity(64 + payload.len());
        body.extend_from_slice(module_sha256);
        body.extend_from_slice(fingerprint);
        body.extend_from_slice(&payload);
        let digest = Sha256::digest(&body);
        if std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .is_err()
        {
            return false;
        }
        // A folder others can write to is not made to hold code this user will run.
        if !matches!(open_trusted_dir(&self.dir), Some(Ok(_))) {
            return false;
        }
        let temp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| {
                file.write_all(MAGIC)?;
                file.write_all(&digest)?;
                file.write_all(&body)
            })
            .and_then(|()| std::fs::rename(&temp, self.entry_path(module_sha256, fingerprint)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_follows_xdg_then_home_and_ignores_relative_values() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            default_dir_from(os("/x/cache"), os("/home/u")),
            Some(PathBuf::from("/x/cache/sandbox-cli"))
        );
        assert_eq!(
            default_dir_from(None, os("/home/u")),
            Some(PathBuf::from("/home/u/.cache/sandbox-cli"))
        );
        assert_eq!(
            default_dir_from(os("rel"), os("/home/u")),
            Some(PathBuf::from("/home/u/.cache/sandbox-cli"))
        );
        assert_eq!(default_dir_from(os("rel"), os("")), None);
        assert_eq!(default_dir_from(None, None), None);
    }

    #[test]
    fn entries_of_different_modules_or_engines_live_in_different_files() {
        let cache = ModuleCache::new("/tmp/x");
        let a = cache.entry_path(&[1; 32], &[2; 32]);
        assert_ne!(a, cache.entry_path(&[3; 32], &[2; 32]));
        assert_ne!(a, cache.entry_path(&[1; 32], &[4; 32]));
        assert_eq!(a, cache.entry_path(&[1; 32], &[2; 32]));
    }
}

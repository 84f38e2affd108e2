//! `cache list` and `cache clean`: the compiled-module cache `run` keeps.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::anyhow;
use sandbox_runtime::ModuleCache;

use crate::args::CacheCommand;
use crate::text::neutralize;
use crate::Exit;

/// Runs a `cache` subcommand.
pub fn dispatch(command: CacheCommand) -> anyhow::Result<Exit> {
    let dir = ModuleCache::default_dir().ok_or_else(|| {
        anyhow!("there is no cache folder: neither `XDG_CACHE_HOME` nor `HOME` is set")
    })?;
    let shown = neutralize(&dir.display().to_string());
    let entries = entries(&dir)?;
    match command {
        CacheCommand::List => {
            let total: u64 = entries.iter().map(|e| e.size).sum();
            outln!(
                "module cache `{shown}`: {} {}, {}",
                entries.len(),
                if entries.len() == 1 {
                    "entry"
                } else {
                    "entries"
                },
                size_text(total)
            );
            let now = SystemTime::now();
            for e in &entries {
                let age = e
                    .modified
                    .and_then(|m| now.duration_since(m).ok())
                    .map(|d| age_text(d.as_secs()))
                    .unwrap_or_else(|| "age unknown".into());
                outln!("  {}  {}  {age}", e.name, size_text(e.size));
            }
        }
        CacheCommand::Clean => {
            let mut freed = 0;
            for e in &entries {
                std::fs::remove_file(&e.path).map_err(|err| {
                    anyhow!(
                        "cannot remove `{}`: {err}",
                        neutralize(&e.path.display().to_string())
                    )
                })?;
                freed += e.size;
            }
            outln!(
                "removed {} {} ({}) from `{shown}`",
                entries.len(),
                if entries.len() == 1 {
                    "entry"
                } else {
                    "entries"
                },
                size_text(freed)
            );
        }
    }
    Ok(Exit::Ok)
}

struct Entry {
    path: PathBuf,
    name: String,
    size: u64,
    modified: Option<SystemTime>,
}

/// The cache's files: compiled modules (`*.cwasm`) and temp files a killed run left behind.
/// A folder that does not exist holds none.
fn entries(dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot read cache folder `{}`: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".cwasm") || name.starts_with(".tmp-");
        let Ok(meta) = entry.metadata() else { continue };
        if !ours || !meta.is_file() {
            continue;
        }
        out.push(Entry {
            path: entry.path(),
            name,
            size: meta.len(),
            modified: meta.modified().ok(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

fn age_text(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{} days old", s / 86_400),
        s if s >= 3_600 => format!("{} hours old", s / 3_600),
        s if s >= 60 => format!("{} minutes old", s / 60),
        s => format!("{s} seconds old"),
    }
}

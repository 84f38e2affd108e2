//! Shared set-up of the benchmarks: short measurement times (the machine is small and
//! shared; ratios measured side by side in one run are what count), and the demo policy
//! copied to a temp dir (in memory where possible) so the sample plugin's writes never land
//! in the checkout.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use sandbox_runtime::{Allocation, Sandbox};

pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("examples/plugins").join(name)).unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A temp copy of `policies/` holding the demo policy with each `(from, to)` replaced.
pub struct Demo {
    pub dir: tempfile::TempDir,
}

impl Demo {
    pub fn new(replace: &[(&str, &str)]) -> Demo {
        // In memory where the host has a tmpfs: the sample plugin truncates and rewrites a
        // file on every call, and on a disk mounted with `discard` that alone costs hundreds
        // of microseconds, which would hide what the sandbox costs.
        let dir = tempfile::Builder::new()
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        copy_tree(&repo().join("policies"), &dir.path().join("policies"));
        let path = dir.path().join("policies/demo.yaml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in replace {
            assert!(text.contains(from), "`{from}` is not in the demo policy");
            text = text.replace(from, to);
        }
        std::fs::write(&path, text).unwrap();
        Demo { dir }
    }

    pub fn policy(&self) -> PathBuf {
        self.dir.path().join("policies/demo.yaml")
    }

    pub fn sandbox(&self, allocation: Allocation) -> Sandbox {
        Sandbox::builder_from_file(&self.policy())
            .unwrap()
            .allocation(allocation)
            .build()
            .unwrap()
    }
}

/// A sandbox for a policy without mounts.
pub fn plain(yaml_extra: &str) -> Sandbox {
    let text = format!("version: 1\nname: bench\n{yaml_extra}");
    let policy = sandbox_policy::parse_policy(&text, Path::new(".")).unwrap();
    Sandbox::builder(Arc::new(policy)).build().unwrap()
}

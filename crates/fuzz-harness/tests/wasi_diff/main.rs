//! The `wasi_diff` harness under `cargo test`: the committed corpus (`fuzz/corpus/wasi_diff`)
//! and mutations of it, each script run under the sandbox and under Wasmtime's own preview 1
//! over identical trees, every call's errno and bytes compared (`sandbox_fuzz_harness::wasi_diff`).

mod reference;

use std::path::{Path, PathBuf};

use sandbox_fuzz_harness::wasi_diff::{compare, seeds, WasiScript, MOUNT};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/wasi_diff")
}

fn reference(wat: &str, root: &Path) -> Vec<u8> {
    reference::run_reference(wat, root, MOUNT)
}

#[test]
fn the_committed_corpus_is_the_generated_seeds() {
    let dir = corpus_dir();
    let update = std::env::var_os("UPDATE_SEEDS").is_some();
    for (name, script) in seeds() {
        let path = dir.join(&name);
        let bytes = script.encode();
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert_eq!(
            committed, bytes,
            "fuzz/corpus/wasi_diff/{name} is stale: UPDATE_SEEDS=1"
        );
        assert_eq!(WasiScript::decode(&bytes), script, "{name} round-trips");
    }
}

#[test]
fn every_seed_behaves_as_under_wasmtime() {
    let mut calls = 0;
    for (name, script) in seeds() {
        let verdict = compare(&script, &reference);
        assert!(verdict.matched > 0 || !verdict.known.is_empty(), "{name}");
        calls += verdict.matched;
    }
    assert!(calls > 50, "only {calls} calls compared");
}

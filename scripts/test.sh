#!/usr/bin/env bash
# The project's whole test suite, from a fresh machine: installs what the tests need, then
# checks formatting, lints and runs every test. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components and the wasm32-wasip1 target (the Rust guests)"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-wasip1

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --all --manifest-path examples/guests/Cargo.toml -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --manifest-path examples/guests/Cargo.toml --target wasm32-wasip1 --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

//! The adversarial suite: hostile WAT plugins against the native `sandbox` host ABI, each run
//! by the real `sandbox-cli` binary in its own temp dir under its own policy, with one
//! expected outcome: the ABI codes the plugin saw, the events' rule ids and reason codes, the
//! exit code, and that no file outside what the policy lets it change was touched.
//!
//! Families: `paths`, `quotas`, `network`, `budgets` (and the host boundary), `reports`
//! (tamper evidence), `hostile_files` (compile bombs, the module cache, files the CLI reads).
//! Compiled WASI guests are in the WASI front end's own suite.
//! `docs/threat-model.md` links each claim to the test here that backs it.

mod budgets;
mod harness;
mod host_work;
mod hostile_files;
mod kernel;
mod network;
mod paths;
mod quotas;
mod reports;
mod threat_model;

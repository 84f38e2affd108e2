//! `policy template`: commented starting policies. Each parses and lints with no findings
//! once its mount folders exist next to it (the tests check both).

/// The presets `policy template --preset` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// No mounts, no network, small budgets.
    Strict,
    /// A read-only data mount and a small write area, with quotas; no network.
    Balanced,
    /// Generous budgets and quotas for exploring a plugin.
    Dev,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Strict, Preset::Balanced, Preset::Dev];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Strict => "strict",
            Preset::Balanced => "balanced",
            Preset::Dev => "dev",
        }
    }

    pub fn parse(text: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The commented policy for a preset (YAML, `version: 1`).
pub fn template(preset: Preset) -> &'static str {
    match preset {
        Preset::Strict => STRICT,
        Preset::Balanced => BALANCED,
        Preset::Dev => DEV,
    }
}

const STRICT: &str = r#"# Strict sandbox policy (`sandbox-cli policy template --preset strict`).
# The plugin may compute on its arguments and input and write to stdout and stderr.
# It gets no files and no network: what a policy leaves out is denied.
# Check changes with `sandbox-cli policy lint --policy <this file>`.
version: 1
name: strict
mode: enforce          # enforce: rules and quotas hold (audit would only log denials)
on_deny: error         # a denied call returns an error code; `trap` ends the run instead
deterministic: false   # true: virtual clock and seeded randomness, for repeatable output

# Budgets end the run (with a report) when used up; small ones suit a pure function.
budgets:
  fuel: 10_000_000     # units of Wasm work (exit 4 when exhausted)
  timeout_ms: 1000     # wall-clock time (exit 5)
  memory_bytes: 16MiB  # linear memory ceiling (exit 6)

# No `filesystem` and no `network` sections: no mounts, no files, no connections.

# Captured output beyond these sizes is cut off and marked truncated in the report.
stdio: { stdout_bytes: 64KiB, stderr_bytes: 16KiB }

# No `env`: the plugin sees an empty environment; the host's never leaks in.

limits:
  max_events: 10000    # events recorded in the report; later ones are only counted
  module_bytes: 16MiB  # larger plugins are refused before compiling
  open_files: 16
"#;

const BALANCED: &str = r#"# Balanced sandbox policy (`sandbox-cli policy template --preset balanced`).
# The plugin reads inputs from /data, writes results to /out, and has no network.
# Check changes with `sandbox-cli policy lint --policy <this file>`.
version: 1
name: balanced
mode: enforce          # enforce: rules and quotas hold (audit would only log denials)
on_deny: error         # a denied call returns an error code; `trap` ends the run instead
deterministic: false   # true: virtual clock and seeded randomness, for repeatable output

budgets:
  fuel: 1_000_000_000  # units of Wasm work (exit 4 when exhausted)
  timeout_ms: 10_000   # wall-clock time (exit 5)
  memory_bytes: 128MiB # linear memory ceiling (exit 6)

filesystem:
  # Host folders are relative to this file's folder and must exist before `run`.
  mounts:
    - { guest: /data, host: ./data, mode: ro }   # inputs: never written, whatever the rules say
    - { guest: /out, host: ./out, mode: rw }     # the only place the plugin can write
  # Rules grant operations (read, write, create, delete, list, rename, symlink) on guest
  # paths. `*` matches within one path segment, `**` any depth (`/data/**` includes /data).
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - { id: write-out, effect: allow, ops: [read, list, write, create], paths: ["/out/**"] }
    # Deny rules win over allow rules, for example:
    # - { id: no-secrets, effect: deny, ops: [read, list], paths: ["/data/secret/**"] }
  # Bytes the run may read and write in total; past them the call is denied.
  quotas: { read_bytes: 256MiB, write_bytes: 64MiB }

# No `network` section: the plugin cannot open connections.

# Captured output beyond these sizes is cut off and marked truncated in the report.
stdio: { stdout_bytes: 1MiB, stderr_bytes: 256KiB }

# No `env`: the plugin sees an empty environment; the host's never leaks in.

limits:
  max_events: 10000    # events recorded in the report; later ones are only counted
  module_bytes: 32MiB  # larger plugins are refused before compiling
  open_files: 64
"#;

const DEV: &str = r#"# Development sandbox policy (`sandbox-cli policy template --preset dev`).
# Room to explore a plugin: generous budgets and quotas, a data mount and a work area.
# Check changes with `sandbox-cli policy lint --policy <this file>`.
version: 1
name: dev
# While exploring, `mode: audit` lets every rule and quota denial through and logs it in
# the report (`"enforced": false`); `sandbox-cli policy learn` then writes a tight policy.
# Mounts and budgets hold in audit mode too. Switch back to enforce before you ship.
mode: enforce
on_deny: error         # a denied call returns an error code; `trap` stops at the first one
deterministic: false   # true: virtual clock and seeded randomness, for repeatable output

budgets:
  fuel: 5_000_000_000  # units of Wasm work (exit 4 when exhausted)
  timeout_ms: 120_000  # wall-clock time (exit 5)
  memory_bytes: 1GiB   # linear memory ceiling (exit 6)

filesystem:
  # Host folders are relative to this file's folder and must exist before `run`.
  mounts:
    - { guest: /data, host: ./data, mode: ro }   # inputs: never written, whatever the rules say
    - { guest: /out, host: ./out, mode: rw }     # a scratch and output area
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - id: use-out
      effect: allow
      ops: [read, list, write, create, delete, rename]
      paths: ["/out/**"]
  # Quotas stay on even here, so a runaway loop cannot fill the disk.
  quotas: { read_bytes: 4GiB, write_bytes: 1GiB }

# No network by default. To allow an API, add for example:
# network:
#   rules:
#     - { id: api, effect: allow, hosts: ["api.example.com"], ports: [443] }
#   quotas: { connections: 16, egress_bytes: 16MiB, ingress_bytes: 64MiB }
#   resolve: { api.test: 127.0.0.1 }   # pin a name to an address for tests

stdio: { stdout_bytes: 4MiB, stderr_bytes: 4MiB }

# The host's environment never leaks in; list what the plugin should see.
env: { LANG: C.UTF-8, RUST_BACKTRACE: "1" }

limits:
  max_events: 100000   # events recorded in the report; later ones are only counted
  module_bytes: 256MiB # larger plugins are refused before compiling
  open_files: 256
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_round_trip_through_their_names() {
        for preset in Preset::ALL {
            assert_eq!(Preset::parse(preset.as_str()), Some(preset));
            assert!(template(preset).contains(&format!("name: {preset}\n")));
        }
        assert_eq!(Preset::parse("lax"), None);
    }

    #[test]
    fn templates_parse() {
        for preset in Preset::ALL {
            let policy = crate::parse_policy(template(preset), std::path::Path::new("."));
            assert!(policy.is_ok(), "{preset}: {policy:?}");
        }
    }
}

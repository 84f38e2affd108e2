//! Raw command-line values (first stage); the command modules turn them into real objects.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sandbox-cli",
    version,
    propagate_version = true,
    about = "Run untrusted WebAssembly plugins under a policy, and explain what it decided"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a plugin under a policy; the report goes to stdout, or to `--report-file` (exit 0
    /// completed, 1 could not start, 2 usage, 3 trapped, 4 fuel exhausted, 5 timeout, 6 memory
    /// ceiling)
    Run(RunArgs),
    /// Explain one event of a report: rule, reason, policy lines, and the change that would allow it
    Explain(ExplainArgs),
    /// Work with policies: lint, templates, schema, learn, diff, replay
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Work with reports
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Print a shell completion script (e.g. `sandbox-cli completions bash > ~/.local/share/bash-completion/completions/sandbox-cli`)
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The compiled-module cache (`$XDG_CACHE_HOME/sandbox-cli` or `~/.cache/sandbox-cli`)
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
}

/// What to do with the module cache.
#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List the cached modules with their size and age
    List,
    /// Remove every cached module
    Clean,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The policy file (YAML)
    #[arg(long)]
    pub policy: PathBuf,
    /// The plugin (.wasm or .wat)
    #[arg(long)]
    pub plugin: PathBuf,
    /// The exported function to call
    #[arg(long, default_value = "_start")]
    pub entry: String,
    /// A file whose bytes the plugin reads as its input (its stdin), `-` for stdin; without
    /// it a piped stdin is passed (at most 64 MiB)
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Write the report to this file instead of stdout; the guest's stdout and stderr then go
    /// to the terminal, with a one-line summary on stderr
    #[arg(long)]
    pub report_file: Option<PathBuf>,
    /// Write every recorded event to this file as JSON Lines while the run goes (a `run`
    /// line, the events as in the report, an `end` line)
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Write the guest's raw stdout bytes to this file
    #[arg(long)]
    pub stdout: Option<PathBuf>,
    /// Write the guest's raw stderr bytes to this file
    #[arg(long)]
    pub stderr: Option<PathBuf>,
    /// Pretty-print the report
    #[arg(long)]
    pub pretty: bool,
    /// No summary line on stderr (with `--report-file`)
    #[arg(long)]
    pub quiet: bool,
    /// What a completed run exits with: 0 (`outcome`) or the guest's `proc_exit` code
    /// (`guest`; codes above 255 give 1); other outcomes keep their exit codes
    #[arg(long, value_enum, default_value = "outcome")]
    pub exit_code: ExitCodeFrom,
    /// Compile the plugin even if the module cache (`$XDG_CACHE_HOME/sandbox-cli` or
    /// `~/.cache/sandbox-cli`) has it, and store nothing there
    #[arg(long)]
    pub no_cache: bool,
    /// Arguments for the guest (after `--`)
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Where a completed run's exit code comes from.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ExitCodeFrom {
    /// The outcome: 0 for a completed run
    Outcome,
    /// The guest's `proc_exit` code (0 when it returned normally)
    Guest,
}

/// Text for people, JSON for programs.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum TextOrJson {
    /// Text for people
    Text,
    /// JSON for programs
    Json,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The report to read
    #[arg(
        long,
        required_unless_present_any = ["event_json", "events_file"],
        conflicts_with_all = ["event_json", "events_file"]
    )]
    pub report_file: Option<PathBuf>,
    /// An event stream written by `run --events`, read instead of a report
    #[arg(long, conflicts_with = "event_json")]
    pub events_file: Option<PathBuf>,
    /// Which event (0-based)
    #[arg(long, required_unless_present_any = ["event_json", "all"], conflicts_with = "all")]
    pub event_index: Option<usize>,
    /// Explain every deny of the report
    #[arg(long, conflicts_with = "event_json")]
    pub all: bool,
    /// One event saved on its own as JSON
    #[arg(long)]
    pub event_json: Option<PathBuf>,
    /// The policy to show lines from (default: the one named in the report)
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextOrJson,
    /// Pretty-print JSON output
    #[arg(long)]
    pub pretty: bool,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Report errors and warnings in a policy (exit 1 when there are errors)
    Lint(LintArgs),
    /// Print a commented policy preset
    Template(TemplateArgs),
    /// Print the JSON Schema of the policy format
    Schema,
    /// Run a plugin in audit mode and write the least-privilege policy for what it did
    Learn(LearnArgs),
    /// What a new policy allows that the old one did not, and what it now denies
    Diff(DiffArgs),
    /// Decide every request of a report again under another policy, without running anything
    Replay(ReplayArgs),
    /// Merge the changes `explain` suggests for a report's denies into a policy, write it, and
    /// prove it by replaying the report (exit 1 when a chosen deny is still denied)
    Fix(FixArgs),
}

#[derive(Args, Debug)]
pub struct FixArgs {
    /// The policy to start from (it is not changed)
    #[arg(long)]
    pub policy: PathBuf,
    /// The report whose denies to fix
    #[arg(long, visible_alias = "report")]
    pub report_file: PathBuf,
    /// Where to write the fixed policy
    #[arg(long)]
    pub output: PathBuf,
    /// Which denies (0-based, comma-separated; default: every deny). A write to a read-only
    /// mount is fixed (the mount made `rw`) only when named here
    #[arg(long, value_delimiter = ',')]
    pub event_index: Vec<usize>,
}

#[derive(Args, Debug)]
pub struct LearnArgs {
    /// The plugin (.wasm or .wat)
    #[arg(long)]
    pub plugin: PathBuf,
    /// The base policy: its mounts are kept and its rules relaxed for the run (default: the
    /// strict template)
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// A file whose bytes the plugin reads as its input
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Where to write the learned policy
    #[arg(long)]
    pub output: PathBuf,
    /// The exported function to call
    #[arg(long, default_value = "_start")]
    pub entry: String,
    /// Turn each rule's exact file paths into the narrowest folder glob (`/out/a.log` and
    /// `/out/b.log` become `/out/*`), and say what that widens
    #[arg(long)]
    pub generalize: bool,
    /// Write the policy even when the run taught nothing usable (no events, every file
    /// request outside the base policy's mounts, or an outcome other than `completed`)
    #[arg(long)]
    pub allow_empty: bool,
    /// Really make the connections and name lookups the base policy denies (by default they
    /// are recorded and answered with the deny's error, never made)
    #[arg(long)]
    pub allow_network: bool,
    /// Arguments for the guest (after `--`), as for `run`
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The policy before the change
    #[arg(long)]
    pub old: PathBuf,
    /// The policy after the change
    #[arg(long)]
    pub new: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextOrJson,
    /// Pretty-print JSON output
    #[arg(long)]
    pub pretty: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The report whose requests to decide again
    #[arg(
        long,
        visible_alias = "report",
        required_unless_present = "events_file",
        conflicts_with = "events_file"
    )]
    pub report_file: Option<PathBuf>,
    /// An event stream written by `run --events`, read instead of a report
    #[arg(long)]
    pub events_file: Option<PathBuf>,
    /// The policy to decide them under
    #[arg(long)]
    pub policy: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextOrJson,
    /// Pretty-print JSON output
    #[arg(long)]
    pub pretty: bool,
    /// Exit 1 when any decision changes (or the run's fuel or memory no longer fits)
    #[arg(long)]
    pub fail_on_change: bool,
}

/// How `policy lint` prints its findings.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LintFormat {
    /// Text with the source line and a caret
    Text,
    /// One JSON document
    Json,
    /// SARIF 2.1.0, for code-scanning tools
    Sarif,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// The policy file to check (YAML)
    #[arg(long)]
    pub policy: PathBuf,
    /// Output format: text with snippets, JSON, or SARIF 2.1.0 for code-scanning tools
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// Pretty-print JSON and SARIF output
    #[arg(long)]
    pub pretty: bool,
    /// Exit 1 on warnings too, as on errors
    #[arg(long)]
    pub deny_warnings: bool,
}

/// A policy preset.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum PresetArg {
    /// No mounts, no network, small budgets
    Strict,
    /// A read-only data mount and a small write area with quotas
    Balanced,
    /// Generous budgets and audit-friendly settings, still with quotas
    Dev,
}

#[derive(Args, Debug)]
pub struct TemplateArgs {
    /// Which preset: `strict` (nothing granted), `balanced` (a read-only data mount and a small
    /// write area), `dev` (generous budgets, still with quotas)
    #[arg(long, value_enum)]
    pub preset: PresetArg,
    /// Write the template to this file instead of stdout
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Check a report's event chain and digest (exit 1 when edited or malformed)
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The report to check (JSON, as `run` writes it)
    #[arg(
        long,
        required_unless_present = "events_file",
        conflicts_with = "events_file"
    )]
    pub report_file: Option<PathBuf>,
    /// An event stream to check instead (JSON Lines, as `run --events` writes it)
    #[arg(long)]
    pub events_file: Option<PathBuf>,
}

//! `sandbox-cli`: argument parsing, dispatch and output. The work is done by the
//! `sandbox-policy` and `sandbox-runtime` crates.

/// `print!` that never panics: a closed pipe ends output quietly, another error is one
/// sentence on stderr.
macro_rules! out {
    ($($arg:tt)*) => {{
        $crate::output::to_stdout(format!($($arg)*).as_bytes());
    }};
}

/// `println!` that never panics (see [`out!`]).
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{
        let mut text = format!($($arg)*);
        text.push('\n');
        $crate::output::to_stdout(text.as_bytes());
    }};
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let mut text = format!($($arg)*);
        text.push('\n');
        $crate::output::to_stderr(text.as_bytes());
    }};
}

mod args;
mod bounded;
mod cache_cmd;
mod change_cmd;
mod events_file;
mod explain;
mod fix_cmd;
mod learn_cmd;
mod output;
mod policy_cmd;
mod policy_load;
mod run_cmd;
mod signals;
mod text;

use std::process::ExitCode;

use clap::Parser;

/// Every exit code the CLI uses, in one place (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done (a run completed).
    Ok,
    /// 1: could not start, bad input, or a check failed.
    Failure,
    /// 2: usage error.
    Usage,
    /// 3: the plugin trapped.
    Trapped,
    /// 4: fuel exhausted.
    FuelExhausted,
    /// 5: wall-clock timeout.
    Timeout,
    /// 6: memory ceiling hit.
    MemoryLimit,
    /// `run --exit-code guest`: the guest's `proc_exit` code.
    Guest(u8),
    /// 128 + the signal that cancelled the run: 130 for SIGINT, 143 for SIGTERM.
    Signal(u8),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Trapped => 3,
            Exit::FuelExhausted => 4,
            Exit::Timeout => 5,
            Exit::MemoryLimit => 6,
            Exit::Guest(code) | Exit::Signal(code) => code,
        }
    }
}

impl From<sandbox_runtime::Status> for Exit {
    fn from(status: sandbox_runtime::Status) -> Exit {
        use sandbox_runtime::Status;
        match status {
            Status::Completed => Exit::Ok,
            Status::Trapped => Exit::Trapped,
            Status::FuelExhausted => Exit::FuelExhausted,
            Status::Timeout => Exit::Timeout,
            Status::MemoryLimit => Exit::MemoryLimit,
            Status::Cancelled => Exit::Signal(130),
        }
    }
}

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` go to stdout: a closed pipe there is no error.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                Exit::Ok.code()
            });
        }
    };
    let result = match cli.command {
        args::Command::Run(a) => run_cmd::run(a),
        args::Command::Explain(a) => explain::explain(a),
        args::Command::Policy { command } => policy_cmd::dispatch(command),
        args::Command::Report { command } => match command {
            args::ReportCommand::Verify(a) => run_cmd::verify(a),
        },
        args::Command::Completions { shell } => {
            let mut script = Vec::new();
            let mut command = <args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "sandbox-cli", &mut script);
            output::to_stdout(&script);
            Ok(Exit::Ok)
        }
        args::Command::Cache { command } => cache_cmd::dispatch(command),
    };
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            output::to_stderr(
                format!("error: {}\n", text::neutralize(&format!("{e:#}"))).as_bytes(),
            );
            ExitCode::from(Exit::Failure.code())
        }
    }
}

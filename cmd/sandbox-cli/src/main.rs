//! `sandbox-cli`: argument parsing, dispatch and output. The work is done by the
//! `sandbox-policy` and `sandbox-runtime` crates.

mod args;
mod bounded;
mod change_cmd;
mod explain;
mod learn_cmd;
mod policy_cmd;
mod run_cmd;
mod text;

use std::process::ExitCode;

use clap::Parser;

/// Every exit code the CLI uses, in one place (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    Trapped = 3,
    FuelExhausted = 4,
    Timeout = 5,
    MemoryLimit = 6,
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
        }
    }
}

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage as u8
            } else {
                Exit::Ok as u8
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
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("error: {}", text::neutralize(&format!("{e:#}")));
            ExitCode::from(Exit::Failure as u8)
        }
    }
}

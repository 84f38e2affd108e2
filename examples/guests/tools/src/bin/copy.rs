//! `copy SRC DST`: copies one file, as a plugin author would write it with `std::fs`.
//! Exit codes: 0 copied, 1 could not read, 2 could not write, 64 usage.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, source, target] = args.as_slice() else {
        eprintln!("usage: copy SRC DST");
        return ExitCode::from(64);
    };
    let data = match std::fs::read(source) {
        Ok(data) => data,
        Err(e) => {
            eprintln!("cannot read {source}: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = std::fs::write(target, &data) {
        eprintln!("cannot write {target}: {e}");
        return ExitCode::from(2);
    }
    println!("copied {} bytes from {source} to {target}", data.len());
    ExitCode::SUCCESS
}

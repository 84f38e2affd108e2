//! `logwriter PATH LINES`: appends numbered lines to a log until done or refused. Prints the
//! bytes written and how it stopped; exits 3 when the host refused a write.

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "/out/app.log".to_owned());
    let lines: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let mut file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) => {
            eprintln!("cannot open {path}: {e}");
            std::process::exit(2);
        }
    };
    let mut written = 0usize;
    for i in 0..lines {
        let line = format!("line {i:06}: the quick brown fox jumps over the lazy dog\n");
        if let Err(e) = file.write_all(line.as_bytes()) {
            println!("wrote {written} bytes, then: {e} (kind {:?})", e.kind());
            std::process::exit(3);
        }
        written += line.len();
    }
    println!("wrote {written} bytes");
}

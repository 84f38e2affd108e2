//! `wordcount DIR`: counts the words of every file beneath a directory, walking it with
//! `std::fs::read_dir`. Prints one `path: words` line per file (sorted) and a total; a file
//! it may not read is reported and skipped.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if let Err(e) = walk(&path, files) {
                eprintln!("skipped {}: {e}", path.display());
            }
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/data".to_owned());
    let mut files = Vec::new();
    if let Err(e) = walk(Path::new(&dir), &mut files) {
        eprintln!("cannot list {dir}: {e}");
        std::process::exit(1);
    }
    files.sort();
    let mut total = 0;
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let words = text.split_whitespace().count();
                total += words;
                println!("{}: {words}", file.display());
            }
            Err(e) => eprintln!("skipped {}: {e}", file.display()),
        }
    }
    println!("total: {total}");
}

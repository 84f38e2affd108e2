//! A WASI conformance program: ordinary Rust `std` code (plus two raw preview 1 calls for
//! rights and symlink opening) exercising files, directories, links, seeking, rights, times
//! and errors in the folder named by its first argument (default `/out`). Each check prints
//! `name: ok` or `name: FAIL <what>`; the last line counts the failures. It passes under
//! `wasmtime run --dir` and under the sandbox with an allow-all policy alike.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::time::{Duration, UNIX_EPOCH};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn fd_fdstat_get(fd: i32, out: *mut u8) -> i32;
}

const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;

/// The rights of an open file, through the raw preview 1 call (std does not expose them).
fn rights_of(file: &File) -> u64 {
    use std::os::fd::AsRawFd;
    let mut stat = [0u8; 24];
    // SAFETY: `stat` is 24 writable bytes, the size of a preview 1 `fdstat`.
    let errno = unsafe { fd_fdstat_get(file.as_raw_fd(), stat.as_mut_ptr()) };
    if errno != 0 {
        return 0;
    }
    u64::from_le_bytes(stat[8..16].try_into().unwrap_or_default())
}

/// The WASI errno of an I/O result, or 0.
fn errno<T>(result: std::io::Result<T>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

type Check = Result<(), String>;

/// One named group of checks, run against the folder given as the first argument.
type Group = (&'static str, fn(&str) -> Check);

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn io<T>(what: &str, result: std::io::Result<T>) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {e}"))
}

fn files(root: &str) -> Check {
    let path = format!("{root}/conf.txt");
    io("write", fs::write(&path, "hello"))?;
    expect(
        "read back",
        io("read", fs::read_to_string(&path))?.as_str(),
        "hello",
    )?;
    let mut file = io("append", OpenOptions::new().append(true).open(&path))?;
    io("append write", file.write_all(b" world"))?;
    expect(
        "appended",
        io("read", fs::read_to_string(&path))?.as_str(),
        "hello world",
    )?;
    let mut file = io(
        "truncate",
        OpenOptions::new().write(true).truncate(true).open(&path),
    )?;
    io("write", file.write_all(b"0123456789"))?;
    expect("truncated", io("len", fs::metadata(&path))?.len(), 10)
}

fn seeking(root: &str) -> Check {
    let mut file = io(
        "open",
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("{root}/conf.txt")),
    )?;
    expect("seek start", io("seek", file.seek(SeekFrom::Start(6)))?, 6)?;
    let mut four = [0u8; 4];
    io("read", file.read_exact(&mut four))?;
    expect("read after seek", &four, b"6789")?;
    expect("seek end", io("seek", file.seek(SeekFrom::End(-3)))?, 7)?;
    expect(
        "seek current",
        io("seek", file.seek(SeekFrom::Current(-7)))?,
        0,
    )?;
    expect("before start", errno(file.seek(SeekFrom::Current(-1))), 28)?;
    io("set_len", file.set_len(4))?;
    expect("shrunk", io("meta", file.metadata())?.len(), 4)?;
    io("set_len", file.set_len(8))?;
    let mut all = Vec::new();
    io("rewind", file.rewind())?;
    io("read", file.read_to_end(&mut all))?;
    expect("grown with zeros", all, b"0123\0\0\0\0".to_vec())
}

fn directories(root: &str) -> Check {
    let base = format!("{root}/tree");
    io("create_dir_all", fs::create_dir_all(format!("{base}/b/c")))?;
    io("write", fs::write(format!("{base}/a.txt"), "a"))?;
    let mut names: Vec<String> = io("read_dir", fs::read_dir(&base))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    expect("listing", names, vec!["a.txt".to_owned(), "b".to_owned()])?;
    expect("rmdir not empty", errno(fs::remove_dir(&base)), 55)?;
    expect("mkdir exists", errno(fs::create_dir(&base)), 20)?;
    io(
        "rename",
        fs::rename(format!("{base}/a.txt"), format!("{base}/b/c/a.txt")),
    )?;
    expect(
        "renamed",
        io("read", fs::read_to_string(format!("{base}/b/c/a.txt")))?.as_str(),
        "a",
    )?;
    expect(
        "is dir",
        io("meta", fs::metadata(format!("{base}/b")))?.is_dir(),
        true,
    )?;
    io("remove_dir_all", fs::remove_dir_all(&base))?;
    expect(
        "gone",
        fs::metadata(&base).map_err(|e| e.kind()).err(),
        Some(ErrorKind::NotFound),
    )
}

#[allow(deprecated)]
fn links(root: &str) -> Check {
    let (file, hard, soft) = (
        format!("{root}/conf.txt"),
        format!("{root}/hard.txt"),
        format!("{root}/soft"),
    );
    io("hard_link", fs::hard_link(&file, &hard))?;
    io("write through link", fs::write(&hard, "via hard link"))?;
    expect(
        "same file",
        io("read", fs::read_to_string(&file))?.as_str(),
        "via hard link",
    )?;
    expect("link exists", errno(fs::hard_link(&file, &hard)), 20)?;
    io("remove", fs::remove_file(&hard))?;
    io("soft_link", fs::soft_link("conf.txt", &soft))?;
    expect(
        "read_link",
        io("read_link", fs::read_link(&soft))?,
        std::path::PathBuf::from("conf.txt"),
    )?;
    expect(
        "is symlink",
        io("lstat", fs::symlink_metadata(&soft))?
            .file_type()
            .is_symlink(),
        true,
    )?;
    expect(
        "followed",
        io("read", fs::read_to_string(&soft))?.as_str(),
        "via hard link",
    )?;
    expect("read_link of a file", errno(fs::read_link(&file)), 28)?;
    io("remove link", fs::remove_file(&soft))?;
    expect("target kept", fs::metadata(&file).is_ok(), true)
}

fn rights(root: &str) -> Check {
    let path = format!("{root}/conf.txt");
    let read_only = io("open", File::open(&path))?;
    let r = rights_of(&read_only);
    expect("read right", r & RIGHT_FD_READ, RIGHT_FD_READ)?;
    expect("no write right", r & RIGHT_FD_WRITE, 0)?;
    expect("write refused", errno((&read_only).write(b"x")), 8)?;
    let write_only = io("open", OpenOptions::new().write(true).open(&path))?;
    expect(
        "write right",
        rights_of(&write_only) & RIGHT_FD_WRITE,
        RIGHT_FD_WRITE,
    )?;
    expect("read refused", errno((&write_only).read(&mut [0u8; 4])), 8)
}

fn times(root: &str) -> Check {
    let path = format!("{root}/conf.txt");
    let file = io("open", OpenOptions::new().write(true).open(&path))?;
    let when = UNIX_EPOCH + Duration::new(1_000_000_000, 500);
    io(
        "set_times",
        file.set_times(fs::FileTimes::new().set_modified(when).set_accessed(when)),
    )?;
    let meta = io("meta", fs::metadata(&path))?;
    expect("mtime", io("modified", meta.modified())?, when)?;
    expect("atime", io("accessed", meta.accessed())?, when)
}

fn errors(root: &str) -> Check {
    expect(
        "missing file",
        errno(File::open(format!("{root}/missing.txt"))),
        44,
    )?;
    expect(
        "file as dir",
        errno(fs::read_dir(format!("{root}/conf.txt"))),
        54,
    )?;
    expect(
        "trailing slash",
        errno(File::open(format!("{root}/conf.txt/"))),
        54,
    )?;
    expect("unlink dir", errno(fs::remove_file(root)), 31)?;
    io("mkdir", fs::create_dir(format!("{root}/emptydir")))?;
    expect(
        "unlink dir",
        errno(fs::remove_file(format!("{root}/emptydir"))),
        31,
    )?;
    io("rmdir", fs::remove_dir(format!("{root}/emptydir")))?;
    expect(
        "rmdir file",
        errno(fs::remove_dir(format!("{root}/conf.txt"))),
        54,
    )?;
    expect(
        "create_new exists",
        errno(File::create_new(format!("{root}/conf.txt"))),
        20,
    )
}

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "/out".to_owned());
    let checks: [Group; 8] = [
        ("files", files),
        ("seeking", seeking),
        ("directories", directories),
        ("links", links),
        ("rights", rights),
        ("times", times),
        ("errors", errors),
        ("cleanup", |root| {
            io("remove", fs::remove_file(format!("{root}/conf.txt")))
        }),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        match check(&root) {
            Ok(()) => println!("{name}: ok"),
            Err(what) => {
                failed += 1;
                println!("{name}: FAIL {what}");
            }
        }
    }
    println!("{failed} of {} checks failed", checks.len());
    std::process::exit(i32::from(failed != 0));
}

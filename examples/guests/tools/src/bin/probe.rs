//! Exercises the WASI surface Rust's `std` uses, printing one line per check: argv, env,
//! stdin, clocks, randomness, a sleep, directories, rename, symlink, listing, removal and
//! `proc_exit`. Run twice under `deterministic: true`, its output is byte-identical.

use std::io::Read;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("args: {args:?}");
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    println!("env: {env:?}");

    let mut stdin = String::new();
    std::io::stdin().read_to_string(&mut stdin).unwrap();
    println!("stdin: {:?}", stdin.trim_end());

    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    println!("realtime_ns: {}", wall.as_nanos());
    let started = Instant::now();
    let mut spin = 0u64;
    for i in 0..10_000u64 {
        spin = spin.wrapping_mul(31).wrapping_add(i);
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    println!(
        "monotonic_ns_elapsed: {} (spin {spin})",
        started.elapsed().as_nanos()
    );

    let mut random = [0u8; 16];
    getrandom_via_std(&mut random);
    println!("random: {random:02x?}");

    let base = std::env::var("PROBE_DIR").unwrap_or_else(|_| "/out".to_owned());
    let dir = format!("{base}/probe");
    let step = |name: &str, result: std::io::Result<()>| match result {
        Ok(()) => println!("{name}: ok"),
        Err(e) => println!("{name}: error {}", e.raw_os_error().unwrap_or(-1)),
    };
    step("mkdir", std::fs::create_dir(&dir));
    step("write", std::fs::write(format!("{dir}/a.txt"), "alpha"));
    step(
        "rename",
        std::fs::rename(format!("{dir}/a.txt"), format!("{dir}/b.txt")),
    );
    step("symlink", symlink("b.txt", &format!("{dir}/link")));
    match std::fs::read_link(format!("{dir}/link")) {
        Ok(target) => println!("readlink: {}", target.display()),
        Err(e) => println!("readlink: error {}", e.raw_os_error().unwrap_or(-1)),
    }
    match std::fs::read_to_string(format!("{dir}/link")) {
        Ok(text) => println!("read through link: {text}"),
        Err(e) => println!(
            "read through link: error {}",
            e.raw_os_error().unwrap_or(-1)
        ),
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    println!("listing: {names:?}");
    match std::fs::metadata(format!("{dir}/b.txt")) {
        Ok(meta) => println!("stat: {} bytes, file {}", meta.len(), meta.is_file()),
        Err(e) => println!("stat: error {}", e.raw_os_error().unwrap_or(-1)),
    }
    step("unlink link", std::fs::remove_file(format!("{dir}/link")));
    step("unlink", std::fs::remove_file(format!("{dir}/b.txt")));
    step("rmdir", std::fs::remove_dir(&dir));

    let code: i32 = std::env::var("PROBE_EXIT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if code != 0 {
        println!("exiting with {code}");
        std::process::exit(code);
    }
}

/// `path_symlink` on the `/out` preopen (std's wrapper is still unstable).
fn symlink(target: &str, link: &str) -> std::io::Result<()> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn path_symlink(
            old: *const u8,
            old_len: usize,
            fd: i32,
            new: *const u8,
            new_len: usize,
        ) -> i32;
    }
    let relative = link
        .strip_prefix("/out/")
        .expect("the probe links beneath /out");
    // fd 3 is the first preopen; the probe's policies mount /out first.
    // SAFETY: the host reads both strings from live buffers.
    let errno = unsafe {
        path_symlink(
            target.as_ptr(),
            target.len(),
            3,
            relative.as_ptr(),
            relative.len(),
        )
    };
    if errno == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(errno))
    }
}

/// Random bytes through WASI `random_get`, which std's `HashMap` seeding uses too.
fn getrandom_via_std(out: &mut [u8]) {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn random_get(buf: *mut u8, len: usize) -> i32;
    }
    // SAFETY: the host writes `out.len()` bytes into a live buffer.
    let errno = unsafe { random_get(out.as_mut_ptr(), out.len()) };
    assert_eq!(errno, 0, "random_get failed");
}

//! Tries to read files outside its mounts every way a WASI program can: `..` through the
//! preopen, absolute host paths (through libc and through raw `path_open` on the preopened
//! fd), and symlinks planted in the mount. Prints one line per attempt: `OK <bytes>` if it
//! read something, else the errno. Expected to print no `OK` for anything outside `/data`.

use std::io::Read;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn path_open(
        fd: i32,
        dirflags: i32,
        path: *const u8,
        path_len: i32,
        oflags: i32,
        rights_base: i64,
        rights_inheriting: i64,
        fdflags: i32,
        opened: *mut i32,
    ) -> i32;
}

fn via_std(path: &str) -> String {
    match std::fs::File::open(path).and_then(|mut f| {
        let mut text = String::new();
        f.read_to_string(&mut text).map(|_| text)
    }) {
        Ok(text) => format!("OK {}", text.trim()),
        Err(e) => format!("error {}", e.raw_os_error().unwrap_or(-1)),
    }
}

/// `path_open` on fd 3 (the first preopen) with the path exactly as given.
fn raw_open(path: &str) -> String {
    let mut fd = -1;
    // SAFETY: the host reads `path.len()` bytes and writes one i32.
    let errno = unsafe {
        path_open(
            3,
            1,
            path.as_ptr(),
            path.len() as i32,
            0,
            1 << 1,
            0,
            0,
            &mut fd,
        )
    };
    if errno == 0 {
        format!("OK opened fd {fd}")
    } else {
        format!("errno {errno}")
    }
}

fn main() {
    let host_secret = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/etc/passwd".to_owned());
    let attempts = [
        ("dotdot", via_std("/data/../../../../etc/passwd")),
        (
            "dotdot-secret",
            via_std(&format!("/data/../../../../../../..{host_secret}")),
        ),
        ("absolute", via_std(&host_secret)),
        ("raw-absolute", raw_open(&host_secret)),
        ("raw-dotdot", raw_open("../../../../../../etc/passwd")),
        ("planted-absolute-link", via_std("/data/link-abs")),
        ("planted-relative-link", via_std("/data/link-rel")),
        ("planted-dir-link", via_std("/data/link-dir/secret.txt")),
        ("inside", via_std("/data/inside.txt")),
        ("dotdot-inside", via_std("/data/sub/../inside.txt")),
    ];
    for (name, result) in attempts {
        println!("{name}: {result}");
    }
}

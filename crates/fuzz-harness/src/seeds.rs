//! The committed seed corpora of `fuzz/corpus/`, written from code so that they stay in step
//! with the harness: `UPDATE_SEEDS=1 cargo test -p sandbox-fuzz-harness` rewrites them.
//! The `host_abi` seeds are the adversarial suite's cases (tests/adversarial) as call scripts.

use crate::script::{
    Buf, Call, Handle, HostAbiScript, Port, Ptr, AUDIT, NO_MEMORY_EXPORT, TRAP_ON_DENY,
};

// Indices into the host_abi string table.
const HELLO: u8 = 0;
const DATA: u8 = 1;
const DOTDOT_INSIDE: u8 = 2;
const DOTDOT_OUT: u8 = 3;
const LINK_DIR_OUT: u8 = 4;
const LINK_REL_OUT: u8 = 5;
const LINK_ABS_OUT: u8 = 6;
const LINK_LOOP: u8 = 7;
const DENIED_BY_RULE: u8 = 8;
const OUT_NEW: u8 = 9;
const OUT: u8 = 10;
const OUT_LINK_DIR: u8 = 11;
const OUT_LINK_FILE: u8 = 12;
const OUT_DOTDOT_DATA: u8 = 13;
const PREFIX_ACCIDENT: u8 = 14;
const PROC_SELF_ROOT: u8 = 15;
const DEV_ZERO: u8 = 16;
const TRAILING_SLASH: u8 = 17;
const NUL_BYTE: u8 = 18;
const HOST_PATH_OF_SECRET: u8 = 19;
const ECHO_NAME: u8 = 20;
const LOOPBACK: u8 = 21;
const SHORT_LOOPBACK: u8 = 22;
const HEX_LOOPBACK: u8 = 23;
const MAPPED_LOOPBACK: u8 = 24;
const LOCALHOST: u8 = 25;
const METADATA: u8 = 26;
const UNSPECIFIED: u8 = 27;
const GREETING: u8 = 28;

fn read(path: u8) -> Call {
    Call::FsRead(Ptr::Str(path), 0, Buf::Scratch(4096))
}

fn write(path: u8, bytes: &[u8], flags: i32) -> Call {
    Call::FsWrite(Ptr::Str(path), Ptr::Bytes(bytes.to_vec()), flags)
}

fn script(flags: u8, calls: Vec<Call>) -> HostAbiScript {
    HostAbiScript {
        pages: 0,
        flags,
        calls,
    }
}

/// The adversarial suite's families, as host-call scripts.
pub fn host_abi_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut scripts = path_seeds();
    scripts.extend(quota_and_boundary_seeds());
    scripts.extend(net_and_mode_seeds());
    scripts
        .into_iter()
        .map(|(name, s)| (name, s.encode()))
        .collect()
}

/// Paths: absolute and `..`, planted links, invalid paths, the read-only mount.
fn path_seeds() -> Vec<(&'static str, HostAbiScript)> {
    vec![
        (
            "paths-absolute-dotdot-proc-dev",
            script(
                0,
                vec![
                    read(DOTDOT_OUT),
                    read(HOST_PATH_OF_SECRET),
                    read(PROC_SELF_ROOT),
                    read(DEV_ZERO),
                    read(PREFIX_ACCIDENT),
                    read(DOTDOT_INSIDE),
                    Call::FsList(Ptr::Str(DATA), Buf::Scratch(4096)),
                    Call::FsStat(Ptr::Bytes(b"/proc/self/fd/0".to_vec()), Buf::Scratch(12)),
                ],
            ),
        ),
        (
            "paths-planted-symlinks",
            script(
                0,
                vec![
                    read(LINK_DIR_OUT),
                    read(LINK_REL_OUT),
                    read(LINK_ABS_OUT),
                    read(LINK_LOOP),
                    Call::FsList(Ptr::Bytes(b"/data/link-out/".to_vec()), Buf::Scratch(4096)),
                    write(OUT_LINK_DIR, b"through a link", 0),
                    write(OUT_LINK_FILE, b"through a link", 1),
                    Call::FsDelete(Ptr::Str(OUT_LINK_FILE)),
                    write(OUT_DOTDOT_DATA, b"into the ro mount", 0),
                ],
            ),
        ),
        (
            "paths-nul-and-trailing-slash",
            script(
                0,
                vec![
                    read(NUL_BYTE),
                    read(TRAILING_SLASH),
                    read(DENIED_BY_RULE),
                    Call::FsRead(
                        Ptr::Bytes(b"/data/secret/key.txt/".to_vec()),
                        0,
                        Buf::Scratch(64),
                    ),
                    write(NUL_BYTE, b"x", 0),
                ],
            ),
        ),
        (
            "paths-read-only-mount",
            script(
                0,
                vec![
                    write(HELLO, b"overwrite", 0),
                    write(HELLO, b"append", 1),
                    Call::FsWrite(Ptr::Bytes(b"/data/new.txt".to_vec()), Ptr::Str(GREETING), 0),
                    Call::FsDelete(Ptr::Str(HELLO)),
                ],
            ),
        ),
    ]
}

/// Quotas and the host boundary: drips, straddles, empty files, bad pointers, memory.
fn quota_and_boundary_seeds() -> Vec<(&'static str, HostAbiScript)> {
    vec![
        (
            "quotas-drip-writes",
            script(
                0,
                vec![Call::Repeat(255, Box::new(write(OUT_NEW, &[b'x'; 17], 1)))],
            ),
        ),
        (
            "quotas-reads-straddle",
            script(
                0,
                vec![
                    Call::Repeat(
                        160,
                        Box::new(Call::FsRead(Ptr::Str(HELLO), 0, Buf::Scratch(26))),
                    ),
                    Call::FsRead(Ptr::Str(HELLO), 25, Buf::Scratch(26)),
                    Call::FsRead(Ptr::Str(HELLO), i64::MAX, Buf::Scratch(26)),
                    Call::FsRead(Ptr::Str(HELLO), -1, Buf::Scratch(26)),
                ],
            ),
        ),
        (
            "quotas-many-empty-files",
            script(
                0,
                vec![
                    write(OUT_NEW, b"", 0),
                    Call::FsWrite(Ptr::Bytes(b"/out/a".to_vec()), Ptr::Raw(0, 0), 0),
                    Call::FsWrite(Ptr::Bytes(b"/out/b".to_vec()), Ptr::Raw(0, 0), 0),
                    Call::FsList(Ptr::Str(OUT), Buf::Scratch(64)),
                ],
            ),
        ),
        (
            "boundary-bad-pointers",
            script(
                0,
                vec![
                    Call::FsRead(Ptr::Raw(0xffff_fff0, 0x20), 0, Buf::Scratch(16)),
                    Call::FsRead(Ptr::Str(HELLO), 0, Buf::Raw(0, 0xffff_ffff)),
                    Call::FsRead(Ptr::Str(HELLO), 0, Buf::NearEnd(0, 0)),
                    Call::OutputWrite(Ptr::Raw(0xffff_ffff, 1)),
                    Call::Log(Ptr::NearEnd(0, 0)),
                    Call::FsWrite(Ptr::NearEnd(4, 100), Ptr::Str(GREETING), 0),
                    Call::FsWrite(Ptr::Str(OUT_NEW), Ptr::Raw(0, 0x7fff_ffff), 0),
                    Call::FsStat(Ptr::Str(HELLO), Buf::NearEnd(11, 0)),
                    Call::FsList(Ptr::Str(DATA), Buf::NearEnd(1, 4096)),
                    Call::InputRead(Buf::Raw(0x7fff_ffff, 0x7fff_ffff), 0xffff_ffff),
                    Call::NetConnect(Ptr::Raw(0, 0xffff_ffff), Port::Echo),
                    Call::NetSend(Handle::Last, Ptr::Raw(0x7fff_ffff, 0x7fff_ffff)),
                ],
            ),
        ),
        (
            "boundary-memory-grow-past-cap",
            script(
                0,
                vec![
                    Call::MemoryGrow(14),
                    Call::FsRead(Ptr::Str(HELLO), 0, Buf::NearEnd(26, 26)),
                    Call::MemoryGrow(20),
                ],
            ),
        ),
        (
            "boundary-no-memory-export",
            script(
                NO_MEMORY_EXPORT,
                vec![
                    read(HELLO),
                    Call::OutputWrite(Ptr::Str(GREETING)),
                    Call::InputLen,
                ],
            ),
        ),
    ]
}

/// Network, audit mode and `on_deny: trap`.
fn net_and_mode_seeds() -> Vec<(&'static str, HostAbiScript)> {
    vec![
        (
            "net-blocked-names-and-literals",
            script(
                0,
                vec![
                    Call::NetConnect(Ptr::Str(LOCALHOST), Port::Echo),
                    Call::NetConnect(Ptr::Str(METADATA), Port::Raw(80)),
                    Call::NetConnect(Ptr::Str(UNSPECIFIED), Port::Echo),
                    Call::NetConnect(Ptr::Str(MAPPED_LOOPBACK), Port::Echo),
                    Call::NetConnect(Ptr::Str(HEX_LOOPBACK), Port::Echo),
                    Call::NetConnect(Ptr::Str(SHORT_LOOPBACK), Port::Raw(1)),
                    Call::NetConnect(Ptr::Str(ECHO_NAME), Port::Raw(0)),
                    Call::NetConnect(Ptr::Str(ECHO_NAME), Port::Raw(65536)),
                ],
            ),
        ),
        (
            "net-handles-reused-and-forged",
            script(
                0,
                vec![
                    Call::NetConnect(Ptr::Str(LOOPBACK), Port::Echo),
                    Call::NetSend(Handle::Last, Ptr::Str(GREETING)),
                    Call::NetRecv(Handle::Last, Buf::Scratch(64), 50),
                    Call::NetClose(Handle::Last),
                    Call::NetSend(Handle::Last, Ptr::Str(GREETING)),
                    Call::NetRecv(Handle::Last, Buf::Scratch(64), 10),
                    Call::NetClose(Handle::Last),
                    Call::NetClose(Handle::Raw(0)),
                    Call::NetClose(Handle::Raw(-1)),
                    Call::NetRecv(Handle::Raw(i32::MAX), Buf::Scratch(8), -5),
                    Call::NetSend(Handle::Raw(i32::MIN), Ptr::Str(GREETING)),
                ],
            ),
        ),
        (
            "net-drip-egress-and-connection-quota",
            script(
                0,
                vec![
                    Call::NetConnect(Ptr::Str(ECHO_NAME), Port::Echo),
                    Call::Repeat(
                        255,
                        Box::new(Call::NetSend(Handle::Last, Ptr::Bytes(vec![1, 2, 3, 4, 5]))),
                    ),
                    Call::Repeat(
                        5,
                        Box::new(Call::NetConnect(Ptr::Str(SHORT_LOOPBACK), Port::Echo)),
                    ),
                ],
            ),
        ),
        (
            "mode-audit-fs-only",
            script(
                AUDIT,
                vec![
                    read(DENIED_BY_RULE),
                    read(DOTDOT_OUT),
                    read(LINK_ABS_OUT),
                    write(HELLO, b"ro even in audit", 0),
                    Call::Repeat(255, Box::new(write(OUT_NEW, &[b'y'; 32], 1))),
                ],
            ),
        ),
        (
            "on-deny-trap",
            script(
                TRAP_ON_DENY,
                vec![read(HELLO), read(DOTDOT_OUT), read(HELLO)],
            ),
        ),
    ]
}

/// Seeds for `decide`: inputs of the fixed-seed generator whose policy parses with mounts and
/// rules and that ask several requests.
pub fn decide_seeds() -> Vec<(String, Vec<u8>)> {
    let mut rng = crate::SeededBytes::new(0x5eed_dec1de);
    let mut out = Vec::new();
    while out.len() < 12 {
        let data = rng.bytes(512);
        if crate::decide::shape(&data)
            .is_some_and(|(mounts, rules, requests)| mounts >= 2 && rules >= 2 && requests >= 4)
        {
            out.push((format!("generated-{:02}", out.len()), data));
        }
    }
    out
}

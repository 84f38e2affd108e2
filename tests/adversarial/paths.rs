//! Paths: every way a plugin might name a host file outside its mounts, or change what a
//! read-only mount or a deny rule protects.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::harness::*;

const OUTSIDE: (&str, &str, &str) = ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS");
const READ_DATA: (&str, &str, &str) = ("allow", "read-data", "ALLOWED");

#[test]
fn absolute_paths_name_guest_paths_never_host_paths() {
    let case = Case::new();
    let before = case.snapshot();
    let secret_host_path = case.path("tree/outside/secret.txt");
    // The host path of a file inside the mount is, as a guest path, outside every mount.
    let hello_host_path = case.path("tree/data/hello.txt");
    let run = case.run(
        &Plugin::new()
            .read(b"/etc/passwd")
            .read(secret_host_path.to_str().unwrap().as_bytes())
            .read(hello_host_path.to_str().unwrap().as_bytes())
            .read(b"/outside/secret.txt")
            .list(b"/")
            .wat(),
    );
    assert_eq!(run.code, 0);
    assert_eq!(run.results(), [ERR_DENIED; 5]);
    assert_eq!(run.triples(), n_times(5, OUTSIDE));
    assert!(!run.logged().contains("root:"));
    run.assert_no_secret();
    case.assert_changed(&before, &[]);
}

#[test]
fn dotdot_beyond_the_mount_is_denied_and_dotdot_that_stays_inside_is_allowed() {
    let case = Case::new();
    let before = case.snapshot();
    let run = case.run(
        &Plugin::new()
            .read(b"/data/../outside/secret.txt")
            .read(b"/data/../../../../../../etc/passwd")
            .read(b"data/../../outside/secret.txt")
            .read(b"/data/sub/../../outside/secret.txt")
            .read(b"/out/../data-secret/key.txt")
            .write(b"/out/../outside/secret.txt", b"overwritten", 0)
            .read(b"/data/sub/../hello.txt")
            .read(b"/data/./sub//inner.txt")
            .write(b"/out/sub/../made.log", b"made", 0)
            .wat(),
    );
    assert_eq!(run.code, 0);
    assert_eq!(
        run.results(),
        [
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            HELLO.len() as i32,
            6,
            4
        ]
    );
    let mut expected = n_times(6, OUTSIDE);
    expected.extend(t(&[
        READ_DATA,
        READ_DATA,
        ("allow", "write-out", "ALLOWED"),
        ("allow", "write-out", "ALLOWED"),
    ]));
    assert_eq!(run.triples(), expected);
    assert_eq!(
        run.events()[0]["context"]["normalized_path"],
        "/outside/secret.txt"
    );
    assert_eq!(run.logged(), format!("{HELLO}\ninner\n\n"));
    run.assert_no_secret();
    case.assert_changed(&before, &["out/made.log"]);
}

#[test]
fn nul_bytes_and_other_invalid_paths_are_refused_before_any_rule() {
    let case = Case::new();
    let before = case.snapshot();
    let long = [b"/data/".as_slice(), &[b'a'; 4091]].concat();
    assert_eq!(long.len(), 4097);
    let run = case.run(
        &Plugin::new()
            .read(b"/data/hello.txt\0")
            .read(b"/data/hello.txt\0.png")
            .read(b"/data/\0/../hello.txt")
            .read(b"\0")
            .read(b"")
            .read(b"/data/\xff\xfe")
            .read(&long)
            .write(b"/out/a.log\0.sh", b"x", 0)
            .wat(),
    );
    assert_eq!(run.code, 0);
    assert_eq!(run.results(), [ERR_INVALID; 8]);
    let invalid = ("deny", "filesystem.paths", "FS_PATH_INVALID");
    assert_eq!(run.triples(), n_times(8, invalid));
    // A new file is decided as `create` first; the invalid path stops it there.
    assert_eq!(run.events()[7]["capability"], "fs.create");
    case.assert_changed(&before, &[]);
}

#[test]
fn a_trailing_slash_neither_dodges_a_deny_rule_nor_leaves_the_mount() {
    let case = Case::new();
    case.symlink("../outside/", "tree/data/link-out");
    let before = case.snapshot();
    let run = case.run(
        &Plugin::new()
            // Trailing slashes vanish in normalisation (documented): this is the file.
            .read(b"/data/hello.txt/")
            .read(b"/data/secret/key.txt/")
            .read(b"/data/secret//key.txt//")
            .read(b"/data/link-out/")
            .list(b"/data/link-out/")
            .read(b"/data/link-out/secret.txt/")
            .wat(),
    );
    assert_eq!(run.code, 0);
    assert_eq!(
        run.results(),
        [
            HELLO.len() as i32,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED
        ]
    );
    let deny_rule = ("deny", "no-secrets", "FS_PATH_NOT_ALLOWED");
    let mut expected = t(&[READ_DATA, deny_rule, deny_rule]);
    expected.extend(n_times(3, OUTSIDE));
    assert_eq!(run.triples(), expected);
    run.assert_no_secret();
    case.assert_changed(&before, &[]);
}

#[test]
fn planted_symlinks_that_point_out_are_refused_also_with_a_trailing_slash_target() {
    let case = Case::new();
    let outside = case.path("tree/outside");
    case.symlink(outside.join("secret.txt"), "tree/data/abs-file");
    case.symlink(format!("{}/", outside.display()), "tree/data/abs-dir-slash");
    case.symlink("../outside/", "tree/data/rel-dir-slash");
    case.symlink("../outside/secret.txt", "tree/data/rel-file");
    case.symlink("/proc/self/root/", "tree/data/proc-root");
    case.symlink("/out/", "tree/data/to-out");
    case.symlink(
        case.path("tree/data/hello.txt"),
        "tree/data/host-path-of-hello",
    );
    case.symlink("sub/", "tree/data/inner-dir-slash");
    case.symlink("../outside/secret.txt", "tree/out/evil");
    let before = case.snapshot();
    let run = case.run(
        &Plugin::new()
            .read(b"/data/abs-file")
            .read(b"/data/abs-dir-slash/secret.txt")
            .list(b"/data/abs-dir-slash")
            .read(b"/data/rel-dir-slash/secret.txt")
            .read(b"/data/rel-file")
            .read(b"/data/proc-root/etc/passwd")
            .list(b"/data/to-out")
            .read(b"/data/host-path-of-hello")
            .stat(b"/data/rel-file")
            .write(b"/out/evil", b"through the link", 0)
            .write(b"/out/evil", b"through the link", WRITE_APPEND)
            // Links that stay inside are followed.
            .read(b"/data/inner-dir-slash/inner.txt")
            // Deleting a link removes the link, never its target.
            .delete(b"/out/evil")
            .wat(),
    );
    assert_eq!(run.code, 0);
    let mut results = vec![ERR_DENIED; 8];
    // fs_stat: the error, then the untouched size slot (-1).
    results.extend([ERR_DENIED, -1, ERR_DENIED, ERR_DENIED, 6, 0]);
    assert_eq!(run.results(), results);
    let mut expected = n_times(11, OUTSIDE);
    expected.extend(t(&[READ_DATA, ("allow", "write-out", "ALLOWED")]));
    assert_eq!(run.triples(), expected);
    assert_eq!(
        run.events()[1]["context"]["resolved_path"],
        format!("{}/secret.txt", outside.display())
    );
    assert_eq!(
        run.events()[11]["context"]["resolved_path"],
        "/data/sub/inner.txt"
    );
    run.assert_no_secret();
    assert_eq!(
        std::fs::read_to_string(case.path("tree/outside/secret.txt")).unwrap(),
        OUTSIDE_SECRET
    );
    case.assert_changed(&before, &["out/evil"]);
}

#[test]
fn proc_and_dev_paths_are_never_the_hosts() {
    let case = Case::new();
    let before = case.snapshot();
    let run = case.run(
        &Plugin::new()
            .read(b"/proc/self/root/etc/passwd")
            .read(b"/proc/self/fd/0")
            .list(b"/proc/self/fd")
            .read(b"/proc/self/environ")
            .read(b"/dev/zero")
            .read(b"/dev/stdin")
            .wat(),
    );
    assert_eq!(run.results(), [ERR_DENIED; 6]);
    assert_eq!(run.triples(), n_times(6, OUTSIDE));

    // Even a mount at guest `/` maps `/proc` and `/dev` into its own folder, and a planted
    // absolute link is a guest path beneath that mount.
    case.write("tree/root/readme.txt", b"root mount\n");
    case.symlink("/proc/self/root/etc/passwd", "tree/root/passwd");
    case.policy(
        r#"version: 1
filesystem:
  mounts: [{ guest: /, host: ./tree/root, mode: ro }]
  rules: [{ id: read-all, effect: allow, ops: [read, list], paths: ["/**"] }]
  quotas: { read_bytes: 1MiB }
"#,
    );
    let before_root = case.snapshot();
    let run = case.run(
        &Plugin::new()
            .read(b"/proc/self/root/etc/passwd")
            .read(b"/dev/zero")
            .read(b"/passwd")
            .list(b"/proc/self/fd")
            .read(b"/readme.txt")
            .wat(),
    );
    assert_eq!(
        run.results(),
        [
            ERR_NOT_FOUND,
            ERR_NOT_FOUND,
            ERR_NOT_FOUND,
            ERR_NOT_FOUND,
            11
        ]
    );
    assert_eq!(run.triples(), n_times(5, ("allow", "read-all", "ALLOWED")));
    assert_eq!(
        run.events()[2]["context"]["resolved_path"],
        "/proc/self/root/etc/passwd"
    );
    assert!(!run.logged().contains("root:"));
    case.assert_changed(&before, &["root", "root/passwd", "root/readme.txt"]);
    case.assert_changed(&before_root, &[]);
}

#[test]
fn a_read_only_mount_refuses_truncate_append_create_and_delete_in_every_mode() {
    let case = Case::new();
    let before = case.snapshot();
    for mode in ["enforce", "audit"] {
        // Rules grant everything: the mount's `ro` still wins, in audit mode too.
        case.policy(&format!(
            r#"version: 1
mode: {mode}
filesystem:
  mounts: [{{ guest: /data, host: ./tree/data, mode: ro }}]
  rules: [{{ id: all, effect: allow, ops: [read, write, create, delete, list], paths: ["/data/**"] }}]
  quotas: {{ read_bytes: 1MiB, write_bytes: 1MiB }}
"#
        ));
        let run = case.run(
            &Plugin::new()
                .write(b"/data/hello.txt", b"", 0)
                .write(b"/data/hello.txt", b"appended", WRITE_APPEND)
                .write(b"/data/new.txt", b"created", 0)
                .write(b"/data/sub/../new.txt", b"created", 0)
                .delete(b"/data/hello.txt")
                .read(b"/data/hello.txt")
                .wat(),
        );
        assert_eq!(run.code, 0, "{mode}");
        let ro = ("deny", "filesystem.mount:/data", "FS_READ_ONLY_MOUNT");
        assert_eq!(
            run.results(),
            [
                ERR_READ_ONLY,
                ERR_READ_ONLY,
                ERR_READ_ONLY,
                ERR_READ_ONLY,
                ERR_READ_ONLY,
                HELLO.len() as i32
            ],
            "{mode}"
        );
        let mut expected = n_times(5, ro);
        expected.extend(t(&[("allow", "all", "ALLOWED")]));
        assert_eq!(run.triples(), expected, "{mode}");
        assert!(run.events()[..5].iter().all(|e| e["enforced"] == true));
        assert_eq!(run.events()[2]["capability"], "fs.create");
        assert_eq!(run.logged(), format!("{HELLO}\n"));
    }
    case.assert_changed(&before, &[]);
}

#[test]
fn read_only_and_read_write_mounts_side_by_side_never_lend_each_other_access() {
    let case = Case::new();
    std::fs::create_dir_all(case.path("tree/scratch")).unwrap();
    // Links between mounts, planted by the host.
    case.symlink("/data/hello.txt", "tree/out/to-data");
    case.symlink("../hello.txt", "tree/scratch/up");
    case.symlink("/out/w.log", "tree/data/to-out");
    case.policy(
        r#"version: 1
filesystem:
  mounts:
    - { guest: /data, host: ./tree/data, mode: ro }
    - { guest: /data/scratch, host: ./tree/scratch, mode: rw }
    - { guest: /out, host: ./tree/out, mode: rw }
  rules: [{ id: all, effect: allow, ops: [read, write, create, delete, list], paths: ["/**"] }]
  quotas: { read_bytes: 1MiB, write_bytes: 1MiB }
"#,
    );
    let before = case.snapshot();
    let run = case.run(
        &Plugin::new()
            .write(b"/data/scratch/a.log", b"nested rw", 0)
            .write(b"/data/scratch/../hello.txt", b"x", 0)
            .write(b"/out/../data/hello.txt", b"x", 0)
            .write(b"/out/to-data", b"x", 0)
            .read(b"/out/to-data")
            .write(b"/data/scratch/up", b"x", 0)
            .write(b"/data/to-out", b"x", 0)
            .delete(b"/data/scratch/../hello.txt")
            .wat(),
    );
    assert_eq!(run.code, 0);
    assert_eq!(
        run.results(),
        [
            9,
            ERR_READ_ONLY,
            ERR_READ_ONLY,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            ERR_DENIED,
            ERR_READ_ONLY
        ]
    );
    let all = ("allow", "all", "ALLOWED");
    let ro = ("deny", "filesystem.mount:/data", "FS_READ_ONLY_MOUNT");
    assert_eq!(
        run.triples(),
        t(&[all, all, ro, ro, OUTSIDE, OUTSIDE, OUTSIDE, OUTSIDE, ro])
    );
    assert_eq!(
        std::fs::read_to_string(case.path("tree/data/hello.txt")).unwrap(),
        HELLO
    );
    case.assert_changed(&before, &["scratch/a.log"]);
}

#[test]
fn prefix_accidents_data_is_not_data_secret() {
    let case = Case::new();
    case.symlink("../data-secret/key.txt", "tree/data/sneaky");
    let before = case.snapshot();
    let run = case.run(
        &Plugin::new()
            .read(b"/data-secret/key.txt")
            .read(b"/data/../data-secret/key.txt")
            .read(b"/data-secret/../data/hello.txt")
            .read(b"/data/sneaky")
            .wat(),
    );
    assert_eq!(
        run.results(),
        [ERR_DENIED, ERR_DENIED, HELLO.len() as i32, ERR_DENIED]
    );
    assert_eq!(run.triples(), t(&[OUTSIDE, OUTSIDE, READ_DATA, OUTSIDE]));

    // Both mounted: a rule for `/data/**` does not reach `/data-secret`.
    case.policy(
        r#"version: 1
filesystem:
  mounts:
    - { guest: /data, host: ./tree/data, mode: ro }
    - { guest: /data-secret, host: ./tree/data-secret, mode: ro }
  rules: [{ id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }]
"#,
    );
    let run = case.run(
        &Plugin::new()
            .read(b"/data-secret/key.txt")
            .list(b"/data-secret")
            .read(b"/data/sneaky")
            .wat(),
    );
    assert_eq!(run.results(), [ERR_DENIED, ERR_DENIED, ERR_DENIED]);
    let default = ("deny", "filesystem.default", "FS_PATH_NOT_ALLOWED");
    // The link resolves into the other mount: refused whatever the rules say.
    assert_eq!(run.triples(), t(&[default, default, OUTSIDE]));
    run.assert_no_secret();
    case.assert_changed(&before, &[]);
}

/// A host thread swaps symlinks in and out while the plugin opens the same paths in a loop:
/// a directory becomes a link to `outside/`, a file link flips between inside and outside,
/// and the rw mount's target file becomes a link to a file outside. Whatever the timing, no
/// byte from outside reaches the plugin and no file outside changes.
#[test]
fn a_symlink_swapped_in_a_loop_never_escapes() {
    let case = Case::new();
    case.write("tree/data/race/secret.txt", b"inside the race dir\n");
    case.write("tree/outside/target.txt", b"outside target\n");
    case.write("tree/out/victim.log", b"");
    case.symlink("hello.txt", "tree/data/race-file");
    let outside = case.path("tree/outside");
    let data = case.path("tree/data");
    let out = case.path("tree/out");
    let before_outside = sandbox_fuzz_harness::snapshot(&outside);

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let (outside, data, out) = (outside.clone(), data.clone(), out.clone());
        std::thread::spawn(move || {
            let link = |target: &std::path::Path, at: &std::path::Path| {
                let staged = at.with_extension("staged");
                let _ = std::fs::remove_file(&staged);
                std::os::unix::fs::symlink(target, &staged).unwrap();
                std::fs::rename(&staged, at).unwrap();
            };
            let mut flip = false;
            while !stop.load(Ordering::SeqCst) {
                flip = !flip;
                // A directory on the path swapped for a link out, then back.
                let _ = std::fs::rename(data.join("race"), data.join("race.parked"));
                let target = if flip {
                    outside.clone()
                } else {
                    "../outside".into()
                };
                link(&target, &data.join("race"));
                std::thread::yield_now();
                let _ = std::fs::remove_file(data.join("race"));
                let _ = std::fs::rename(data.join("race.parked"), data.join("race"));
                // A file link flipped between inside and outside.
                link(&outside.join("secret.txt"), &data.join("race-file"));
                std::thread::yield_now();
                link(std::path::Path::new("hello.txt"), &data.join("race-file"));
                // The file the plugin writes becomes a link to a file outside.
                link(&outside.join("target.txt"), &out.join("victim.log"));
                std::thread::yield_now();
                let _ = std::fs::remove_file(out.join("victim.log"));
                swaps.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let mut plugin = Plugin::new();
    let race_dir = plugin.bytes(b"/data/race/secret.txt");
    let race_list = plugin.bytes(b"/data/race");
    let race_file = plugin.bytes(b"/data/race-file");
    let victim = plugin.bytes(b"/out/victim.log");
    let payload = plugin.bytes(b"PWNED\n");
    let plugin = plugin.raw(&format!(
        "(local.set $i (i32.const 0))
         (loop $again
           (local.set $n (call $fs_read {race_dir} (i64.const 0) (i32.const {BUF}) (i32.const 256)))
           (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $log (i32.const {BUF}) (local.get $n)))))
           (if (i32.lt_s (local.get $n) (i32.const 0)) (then (call $emit (local.get $n))))
           (local.set $n (call $fs_list {race_list} (i32.const {BUF}) (i32.const 256)))
           (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $log (i32.const {BUF}) (local.get $n)))))
           (local.set $n (call $fs_read {race_file} (i64.const 0) (i32.const {BUF}) (i32.const 256)))
           (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $log (i32.const {BUF}) (local.get $n)))))
           (drop (call $fs_stat {race_dir} (i32.const {BUF})))
           (drop (call $fs_write {victim} {payload} (i32.const 1)))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $again (i32.lt_u (local.get $i) (i32.const 1500))))"
    ));
    case.policy(&FS_POLICY.replace("max_events", "").replace(
        "quotas: { read_bytes: 1MiB, write_bytes: 64KiB }",
        "quotas: { read_bytes: 16MiB, write_bytes: 1MiB }\nlimits: { max_events: 20000 }",
    ));
    let run = case.run(&plugin.wat());
    stop.store(true, Ordering::SeqCst);
    swapper.join().unwrap();

    assert_eq!(run.code, 0, "{}", run.report["outcome"]);
    assert!(swaps.load(Ordering::SeqCst) > 0, "the swapper never ran");
    run.assert_no_secret();
    assert!(
        !run.logged().contains("only-outside"),
        "an outside listing leaked"
    );
    assert!(!run.logged().contains("outside target"));
    // A read fails only as outside the mount, missing, or refused at open time (a link met
    // where a folder was decided: `ERR_IO` or `ERR_WRONG_KIND`).
    let fail_closed = [
        ERR_DENIED,
        ERR_NOT_FOUND,
        sandbox_runtime::ERR_IO,
        sandbox_runtime::ERR_WRONG_KIND,
    ];
    for code in run.results() {
        assert!(fail_closed.contains(&code), "{code}");
    }
    for reason in run.reasons() {
        assert!(
            ["ALLOWED", "FS_PATH_OUTSIDE_MOUNTS"].contains(&reason.as_str()),
            "{reason}"
        );
    }
    assert_eq!(sandbox_fuzz_harness::snapshot(&outside), before_outside);
}

#[test]
fn a_symlink_or_dotdot_inside_the_mount_cannot_carry_a_request_around_a_deny_rule() {
    let case = Case::new();
    case.symlink("secret", "tree/data/alias");
    case.symlink("secret/key.txt", "tree/data/alias-file");
    case.symlink("/data/secret/", "tree/data/sub/abs-alias");
    let run = case.run(
        &Plugin::new()
            .read(b"/data/alias/key.txt")
            .read(b"/data/alias-file")
            .read(b"/data/sub/abs-alias/key.txt")
            .read(b"/data/sub/../secret/key.txt")
            .read(b"/data/./secret/./key.txt")
            // Listing is not what the deny rule names: allowed, and shows only names.
            .list(b"/data/alias")
            .wat(),
    );
    let deny = ("deny", "no-secrets", "FS_PATH_NOT_ALLOWED");
    assert_eq!(
        run.results(),
        [ERR_DENIED, ERR_DENIED, ERR_DENIED, ERR_DENIED, ERR_DENIED, 8]
    );
    assert_eq!(run.triples(), t(&[deny, deny, deny, deny, deny, READ_DATA]));
    assert_eq!(
        run.events()[0]["context"]["resolved_path"],
        "/data/secret/key.txt"
    );
    assert_eq!(run.logged(), "key.txt\n\n");
}

/// Resolution follows at most 40 links: a chain of 40 that ends inside is followed, one more
/// link is refused as a loop would be, and a real loop ends the same way.
#[test]
fn symlink_chains_are_followed_for_40_links_and_refused_past_that() {
    let case = Case::new();
    for i in 0..41 {
        let target = if i == 0 {
            "hello.txt".to_owned()
        } else {
            format!("chain-{}", i - 1)
        };
        case.symlink(&target, &format!("tree/data/chain-{i}"));
    }
    case.symlink("loop-b", "tree/data/loop-a");
    case.symlink("loop-a", "tree/data/loop-b");
    case.symlink(".", "tree/data/self");
    let deep = format!("/data{}/hello.txt", "/self".repeat(41));
    let run = case.run(
        &Plugin::new()
            .read(b"/data/chain-39")
            .read(b"/data/chain-40")
            .read(b"/data/loop-a")
            .read(deep.as_bytes())
            .wat(),
    );
    assert_eq!(
        run.results(),
        [HELLO.len() as i32, ERR_DENIED, ERR_DENIED, ERR_DENIED]
    );
    assert_eq!(run.triples(), t(&[READ_DATA, OUTSIDE, OUTSIDE, OUTSIDE]));
}

/// The limit of path-based checks, stated as a test: a hard link is not a path that points
/// somewhere, it is the file itself under a second name. One planted inside a mount by
/// someone with access to the host reads the file it shares an inode with, and no
/// resolution can tell. Hard links made outside the sandbox are out of scope
/// (docs/threat-model.md); the plugin itself has no call that makes one.
#[test]
fn a_hard_link_planted_by_the_host_is_the_file_itself_which_is_why_it_is_out_of_scope() {
    let case = Case::new();
    std::fs::hard_link(
        case.path("tree/outside/secret.txt"),
        case.path("tree/data/hard-link"),
    )
    .unwrap();
    let run = case.run(&Plugin::new().read(b"/data/hard-link").wat());
    assert_eq!(run.triples(), t(&[READ_DATA]));
    assert_eq!(run.logged(), format!("{OUTSIDE_SECRET}\n"));
}

/// A host file named `evil\nsecret.txt` would forge a second entry in `fs_list`'s one-name-a-
/// line listing: it is left out there, with an event, and listed whole by `fs_list_entries`.
#[test]
fn a_name_with_a_newline_cannot_forge_a_listing_entry() {
    let case = Case::new();
    case.write("tree/data/sub/evil\nsecret.txt", b"x");
    let run = case.run(
        &Plugin::new()
            .list(b"/data/sub")
            .list_entries(b"/data/sub")
            .wat(),
    );
    let results = run.results();
    let lines = b"inner.txt\n".to_vec();
    let mut entries = Vec::new();
    for name in ["evil\nsecret.txt", "inner.txt"] {
        entries.extend_from_slice(&(name.len() as u32).to_le_bytes());
        entries.extend_from_slice(name.as_bytes());
    }
    assert_eq!(results, vec![lines.len() as i32, entries.len() as i32]);
    let mut logged = lines.clone();
    logged.push(b'\n');
    logged.extend_from_slice(&entries);
    logged.push(b'\n');
    assert_eq!(run.stderr, logged);
    assert!(run.triples().contains(&(
        "deny".into(),
        "fs_list.newline_in_name".into(),
        "FS_PATH_INVALID".into()
    )));
}

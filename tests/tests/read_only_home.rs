//! A home the user may read but not write (a backup copy, another user's mounted disk):
//! every read command works and leaves every file byte-identical; a write says why it
//! cannot happen. Run as root (CI), the commands run as the unprivileged user `nobody`,
//! since permission bits do not stop root; run as another user, the files are simply
//! made read-only.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use duet_tests::{Relay, Run, bin, duet_command, pair};

/// The unprivileged user the commands run as when the test runs as root.
const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    // The owner of a file this process just created is this process's user.
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"").expect("write probe");
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&probe).expect("stat probe")) == 0
}

/// Every file of a directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read home")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read file"),
            )
        })
        .collect()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs `duet` on `home` as the reader (`nobody` when root).
fn run_as_reader(home: &Path, as_root: bool, args: &[&str]) -> Run {
    let mut cmd = duet_command(&bin("duet"), home, args);
    if as_root {
        cmd.uid(NOBODY).gid(NOBODY).env("HOME", "/nonexistent");
    }
    let o = cmd.output().expect("duet runs");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn read_commands_work_on_a_read_only_home_and_change_nothing() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Walk", "--area", "trust"]);
    a.ok(&["rate", "Walk", "1", "--note", "a good week"]);
    a.ok(&["reflect", "we listened"]);
    a.ok(&["reflect", "--private", "only mine"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    b.ok(&["rate", "Walk", "0"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);

    // A backup copy of A's home, whose read models are stale (as after an upgrade), so
    // that reading must build them: in memory, never in the files.
    let outer = tempfile::tempdir().expect("tempdir");
    let home: PathBuf = outer.path().join("copy");
    std::fs::create_dir(&home).expect("mkdir");
    for (name, bytes) in snapshot(&a.home) {
        std::fs::write(home.join(name), bytes).expect("copy");
    }
    {
        let c = rusqlite::Connection::open(home.join("duet.db")).expect("open copy");
        c.execute("UPDATE rm_state SET version = version - 1000", [])
            .expect("age the read models");
        c.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .expect("checkpoint");
    }
    for extra in ["duet.db-wal", "duet.db-shm"] {
        let _ = std::fs::remove_file(home.join(extra));
    }
    let reports = tempfile::tempdir().expect("tempdir");
    let as_root = running_as_root();
    if as_root {
        for p in std::fs::read_dir(&home).expect("ls") {
            std::os::unix::fs::chown(p.expect("entry").path(), Some(NOBODY), Some(NOBODY))
                .expect("chown file");
        }
        std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).expect("chown home");
        set_mode(outer.path(), 0o755);
        set_mode(reports.path(), 0o777);
    }
    for p in std::fs::read_dir(&home).expect("ls") {
        set_mode(&p.expect("entry").path(), 0o400);
    }
    set_mode(&home, 0o500);
    let before = snapshot(&home);

    let report = reports.path().join("report.html");
    let report_arg = report.to_str().expect("utf-8 path");
    for args in [
        &["goal", "list"][..],
        &["goal", "show", "Walk"],
        &["history"],
        &["history", "--json"],
        &["progress"],
        &["progress", "--json"],
        &["export"],
        &["export", "--json"],
        &["status"],
        &["report", "--html", report_arg],
    ] {
        let r = run_as_reader(&home, as_root, args);
        assert_eq!(
            r.code,
            0,
            "`duet {}` on a read-only home failed:\n{}\n{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
    }
    let export = run_as_reader(&home, as_root, &["export", "--json"]).json();
    let text = export.to_string();
    for needle in ["a good week", "we listened", "only mine"] {
        assert!(text.contains(needle), "export lacks {needle:?}: {text}");
    }
    let progress = run_as_reader(&home, as_root, &["progress"]);
    assert!(
        progress.stdout.contains("Walk"),
        "progress read: {}",
        progress.stdout
    );

    // A write is refused with the reason, and changes nothing either.
    let w = run_as_reader(&home, as_root, &["rate", "Walk", "2"]);
    assert_ne!(w.code, 0, "a write on a read-only home must fail");
    assert!(
        w.stderr.contains("read-only"),
        "the refusal says why: {}",
        w.stderr
    );
    assert_eq!(
        snapshot(&home),
        before,
        "reading a read-only home changed its files"
    );

    // Let the temporary directories be removed.
    set_mode(&home, 0o700);
}

/// A home its user may not even look into is said to be unreadable, with what to check:
/// it was taken for a home with no device yet, and the user sent to `duet init`.
#[test]
fn a_home_that_cannot_be_read_is_not_taken_for_a_new_one() {
    let d = duet_tests::Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let outer = tempfile::tempdir().expect("tempdir");
    let home: PathBuf = outer.path().join("locked");
    std::fs::create_dir(&home).expect("mkdir");
    for (name, bytes) in snapshot(&d.home) {
        std::fs::write(home.join(name), bytes).expect("copy");
    }
    let as_root = running_as_root();
    if as_root {
        set_mode(outer.path(), 0o755);
    }
    set_mode(&home, 0o000);
    let r = run_as_reader(&home, as_root, &["status"]);
    set_mode(&home, 0o700);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("cannot read") && r.stderr.contains("permission"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("duet init"), "{}", r.stderr);
}

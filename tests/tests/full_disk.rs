//! A device whose disk is full still shows and exports everything it holds: SQLite
//! cannot grow its shared-memory file there, so the home is read from a copy in memory,
//! and every write is refused saying the disk is full. So too a disk mounted read-only,
//! said as such. Needs root to mount a small tmpfs (CI runs as root); skipped with a
//! word otherwise. A file-size limit (`ulimit -f`) is said too, not a silent kill.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet_tests::Device;

/// A 2 MiB tmpfs mounted on a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounted, or `None` with the test's skip said (mounting needs root).
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipped: mounting a small tmpfs needs root (CI runs as root)");
        }
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Mounts it again, read-only (`rw`: for writing).
    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {mode}");
    }

    /// Writes a file until the disk refuses more.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_still_shows_and_exports_everything_and_refuses_writes_in_words() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let d = Device::at(disk.path().join("home"));
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk together", "--area", "quality-time"]);
    d.ok(&["rate", "walk", "1", "--note", "Twice this week"]);
    let filler = disk.fill();

    let listed = d.ok(&["goal", "list"]);
    assert!(listed.contains("Walk together"), "{listed}");
    let export = d.json(&["export"]);
    assert_eq!(export["shared"]["ratings"][0]["note"], "Twice this week");
    let r = d.run(&["rate", "walk", "2"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("is full"), "{}", r.stderr);
    // A file written to the full disk says so in words, not the system's error number
    // and a temporary file's name.
    let out = disk.path().join("ours.json");
    let out = out.to_str().expect("utf-8");
    let backup = d.run_with_stdin(
        &["backup", out, "--passphrase-fd", "0"],
        Some("correct horse battery staple\n"),
    );
    for r in [d.run(&["export", "--output", out]), backup] {
        assert!(
            r.code != 0 && r.stderr.contains("the disk is full") && !r.stderr.contains("os error"),
            "{r:?}"
        );
    }

    std::fs::remove_file(&filler).expect("free the space");
    d.ok(&["rate", "walk", "2"]);
    let ratings = d.json(&["export"])["shared"]["ratings"].clone();
    assert_eq!(ratings.as_array().map(Vec::len), Some(2), "{ratings}");
}

/// A process holding the copy in memory (`sync --watch`, `duet app`) asks before each
/// page and sync whether its home takes writes again: while the disk is full that
/// copies nothing (the store copied per page was seconds on a large store), and once it
/// is freed the device is opened from its home.
#[test]
fn a_process_holding_the_copy_asks_again_without_copying_and_writes_once_freed() {
    use duet_core::device::Device as Core;
    use duet_core::store::Store;
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let d = Device::at(disk.path().join("home"));
    d.ok(&["init", "--name", "Alex"]);
    let filler = disk.fill();
    let mut dev = Core::open(&d.home).expect("read from a copy");
    assert!(dev.is_read_only_copy());
    assert!(Store::open_if_writable(&d.home).expect("asked").is_none());
    assert!(!dev.reopen_if_writable().expect("asked"));
    assert!(dev.is_read_only_copy());
    std::fs::remove_file(&filler).expect("free the space");
    assert!(dev.reopen_if_writable().expect("opened"));
    assert!(!dev.is_read_only_copy());
    assert!(!dev.reopen_if_writable().expect("asked"), "opened once");
}

/// The disk that holds the home mounted read-only (the system does so after disk
/// errors): said as such, not as a home of another user to be run as its owner or
/// copied (a copy of a device is what the docs warn against).
#[test]
fn a_disk_mounted_read_only_is_said_to_be_and_nothing_saved_is_lost() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let d = Device::at(disk.path().join("home"));
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "Saved before"]);
    disk.remount("ro");
    let r = d.run(&["reflect", "Not saved"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("mounted read-only")
            && !r.stderr.contains("owner")
            && !r.stderr.contains("copy"),
        "{}",
        r.stderr
    );
    assert!(d.ok(&["reflections"]).contains("Saved before"));
    // So do the commands that take the home's lock or make a home there.
    let elsewhere = Device::at(disk.path().join("new"));
    for r in [
        d.run(&["start-over", "--yes"]),
        elsewhere.run(&["init", "--name", "Sam"]),
    ] {
        assert_ne!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("mounted read-only") && !r.stderr.contains("permissions"),
            "{}",
            r.stderr
        );
    }
    disk.remount("rw");
    d.ok(&["reflect", "Saved after"]);
    let all = d.ok(&["reflections"]);
    assert!(
        all.contains("Saved before") && all.contains("Saved after"),
        "{all}"
    );
}

/// `sync --watch` started while the disk was full holds a copy in memory: once the
/// disk is freed it opens the home again and sends what waited (it failed every 15 s
/// until restarted, with nothing said).
#[test]
fn a_watcher_started_on_a_full_disk_sends_what_waited_once_it_is_freed() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let relay = duet_tests::Relay::start();
    let d = Device::at(disk.path().join("home"));
    d.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    d.ok(&["sync"]);
    d.ok(&["reflect", "Written before the disk filled"]);
    let filler = disk.fill();
    let mut watcher = duet_tests::Watcher::start(&d);
    // Said by the first sync, on stderr: before or after the start's line on stdout.
    watcher.printed("is full");
    std::fs::remove_file(&filler).expect("free the space");
    watcher.wait_for("the sync goes through again");
    watcher.stop();
    let status = d.json(&["status"]);
    for space in status["spaces"].as_array().expect("spaces") {
        assert_eq!(
            (&space["pending_changes"], &space["unsent_events"]),
            (&0.into(), &0.into()),
            "{status}"
        );
    }
}

/// `progress` is a read: on a full disk it shows both partners' ratings, also one a
/// sync brought in that its tables had not counted yet (it failed, saying the disk was
/// full, where `status` and `history` worked).
#[test]
fn progress_on_a_full_disk_counts_the_partners_rating_a_sync_brought() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let relay = duet_tests::Relay::start();
    let alex = Device::at(disk.path().join("home"));
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = alex.invite_code();
    let sam = Device::new();
    sam.ok(&["join", &code, "--name", "Sam"]);
    alex.ok(&["goal", "add", "Cook together", "--area", "quality-time"]);
    alex.ok(&["progress"]);
    alex.ok(&["rate", "cook", "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", "cook", "2"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    // Nearly full: the home opens for writing, and a write of any size fails.
    let filler = disk.fill();
    for left in [40, 0] {
        let full = std::fs::metadata(&filler).expect("filler").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .and_then(|f| f.set_len(full.saturating_sub(left * 1024)))
            .expect("leave some room");
        let json = alex.json(&["progress"]);
        let shown = alex.ok(&["progress"]);
        assert!(shown.contains("Sam"), "{shown}");
        assert!(json.to_string().contains("Sam"), "{json}");
    }
}

/// A file-size limit (`ulimit -f`, systemd's `LimitFSIZE`): a write past it is an error
/// said in words, not a silent kill (SIGXFSZ's default): `status` died without a word,
/// and a `reflect` printed "Saved" and exited 153. Needs no root.
#[cfg(unix)]
#[test]
fn a_file_size_limit_is_said_not_a_silent_kill() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let limited = |blocks: u64, args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -f {blocks} && exec \"$0\" \"$@\""))
            .arg(duet_tests::bin("duet"))
            .args(args)
            .env("DUET_HOME", &d.home)
            .env("NO_COLOR", "1");
        cmd.output().expect("sh")
    };
    let status = limited(2, &["status"]);
    assert!(
        status.status.code().is_some(),
        "killed by a signal: {status:?}"
    );
    let size = std::fs::metadata(d.db()).expect("the store").len() / 1024;
    let long = "a".repeat(3000);
    let reflect = limited(size + 4, &["reflect", &long]);
    let said = String::from_utf8_lossy(&reflect.stdout);
    assert!(
        reflect.status.code().is_some() && (reflect.status.success() || !said.contains("Saved")),
        "{reflect:?}"
    );
}

/// `duet app` started while the disk was full refuses a form in words; once the disk is
/// freed the same form is saved (the app held a copy in memory for its whole run).
#[test]
fn the_app_started_on_a_full_disk_saves_forms_once_it_is_freed() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let d = Device::at(disk.path().join("home"));
    d.ok(&["init", "--name", "Alex"]);
    let filler = disk.fill();
    let app = duet_tests::app::App::start(&d);
    let refused = app.post("/reflections", &[("text", "Written on a full disk")]);
    assert_ne!(refused.status, 303, "{}", refused.body);
    assert!(refused.body.contains("full"), "{}", refused.body);
    std::fs::remove_file(&filler).expect("free the space");
    let saved = app.post("/reflections", &[("text", "Written once it was freed")]);
    assert_eq!(saved.status, 303, "{}", saved.body);
    let listed = d.ok(&["reflections"]);
    assert!(listed.contains("Written once it was freed"), "{listed}");
}

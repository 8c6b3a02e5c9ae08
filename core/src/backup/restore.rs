//! Restoring a device from a backup into a new home, without ever forking its chain.
//!
//! The backup may be older than what the device last sent: the relay may hold events
//! and Automerge changes of this device that the backup lacks. Writing before learning
//! them would reuse their sequence numbers (a fork the relay refuses and the partner is
//! warned of). So a restore, in a hidden staging directory beside the target:
//! 1. creates the store with the identity and each space at cursor 0, its keys, and the
//!    own events the relay had not acknowledged (with the changes they carry);
//! 2. syncs: those events are offered again (the relay takes them or knows them), and
//!    the whole history is read back, this device's events included, so the store's
//!    next sequence numbers follow the last ones the relay holds;
//! 3. adds what only the backup has: changes of this device that never reached the
//!    relay are queued to be sent, other changes are kept as received; a second sync
//!    sends the queued ones under the next sequence numbers;
//! 4. renames the staging directory to the target home.
//!
//! Any failure (wrong passphrase, damaged file, relay unreachable or refusing) removes
//! the staging directory: nothing is written. A device with no relay never sent
//! anything, so it is restored without a sync.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use automerge::Change;

use super::contents::{Contents, unb64};
use super::{BackupError, format, io, read_file};
use crate::clock::Clock;
use crate::device::Device;
use crate::event::{Event, Kind, decode_changes};
use crate::identity::Identity;
use crate::store::{DB_FILE, RestoredChange, SpaceKind, Store};
use crate::sync::{SyncReport, Transport};

/// Syncs tried while the relay says more of the history waits.
const MAX_SYNCS: usize = 8;

/// What a restore brought back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    /// The home written.
    pub home: PathBuf,
    /// The person's name.
    pub name: String,
    /// The device key (hex).
    pub device: String,
    /// When the backup was written (ms since the Unix epoch).
    pub written_at: i64,
    /// Per space.
    pub spaces: Vec<RestoredSpace>,
}

/// One restored space.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoredSpace {
    /// `shared` or `personal`.
    pub space: &'static str,
    /// Events read back from the relay.
    pub received_events: usize,
    /// Changes of this device found only in the backup (sent now, where they can be).
    pub resent_changes: usize,
    /// Events the backed-up device had made and not sent (a removal queued offline),
    /// sent by the restore's syncs.
    pub sent_waiting: usize,
    /// Whether the space has a relay to sync through.
    pub online: bool,
    /// Changes and events still on this device only once the restore synced: the relay
    /// refused them (the device was removed or left), or there is no relay.
    pub still_unsent: usize,
    /// Who ended this device's membership and when, in words, if it no longer belongs.
    pub departed: Option<String>,
    /// What the restore's syncs warned of (a removal the backed-up device had queued,
    /// carried out now, and what it took with it), as `duet sync` says it. (Not who
    /// joined or changed devices: the restore reads the whole history again, and said
    /// every membership change in it.)
    pub warnings: Vec<crate::advice::Warning>,
}

/// Whether `name` is one of the home's lock files (the write lock, the open lock).
fn is_lock_file(name: &std::ffi::OsStr) -> bool {
    name == crate::lock::LOCK_FILE || name == crate::store::OPEN_LOCK_FILE
}

/// Whether `entry` is a device set aside by a start-over (it stays where it is: a
/// device brought back beside it is what a start-over followed by a restore means).
fn is_set_aside(entry: &std::fs::DirEntry) -> bool {
    entry
        .file_name()
        .to_string_lossy()
        .starts_with(crate::device::SET_ASIDE_PREFIX)
        && entry.metadata().is_ok_and(|m| m.is_dir())
}

/// Refuses a target home that holds a device or anything else: call before asking for
/// a passphrase. Lock files alone do not count (empty, or naming the process that last
/// held the write lock: a few digits): a join the relay refused (a used code tried
/// first, the common way to find out a backup is needed) leaves them; nor do devices a
/// start-over set aside in it.
pub fn check_restore_target(home: &Path) -> Result<(), BackupError> {
    // A setup killed before it wrote anything left only an empty store: no device.
    crate::store::clear_killed_setup_of(home);
    match home.join(DB_FILE).metadata() {
        // An empty store holds no device, but is not for a restore to overwrite.
        Ok(m) if m.len() == 0 => return Err(BackupError::HomeNotEmpty(home.to_path_buf())),
        Ok(_) => return Err(BackupError::HomeHasDevice(home.to_path_buf())),
        Err(_) => {}
    }
    let lone_lock = |entry: &std::fs::DirEntry| {
        (is_lock_file(&entry.file_name())
            && entry.metadata().is_ok_and(|m| m.is_file() && m.len() <= 16))
            || is_set_aside(entry)
    };
    match std::fs::read_dir(home) {
        Ok(entries) => {
            let mut others = entries.filter(|e| !e.as_ref().is_ok_and(lone_lock));
            match others.next() {
                Some(_) => Err(BackupError::HomeNotEmpty(home.to_path_buf())),
                None => Ok(()),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("read", home)(e)),
    }
}

/// Restores the device backed up in `file` into the new home `home`, syncing through
/// `transport`.
pub fn restore(
    file: &Path,
    passphrase: &str,
    home: &Path,
    transport: &dyn Transport,
    clock: Clock,
) -> Result<Restored, BackupError> {
    check_restore_target(home)?;
    let bytes = read_file(file)?;
    restore_bytes(
        &bytes,
        passphrase,
        home,
        transport,
        clock,
        Reroute::default(),
    )
}

/// What a restore changes of where the backup says its spaces sync, for every space
/// that has a relay: the relay's address (it moved since the backup was made) and the
/// creation token (the backup's was wrong or missing, so the relay never created the
/// spaces).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reroute<'a> {
    /// The relay's address now.
    pub relay: Option<&'a str>,
    /// The creation token to present.
    pub token: Option<&'a str>,
}

/// [`restore`] with the relay or the creation token the backup names replaced (`to`).
pub fn restore_via(
    file: &Path,
    passphrase: &str,
    home: &Path,
    transport: &dyn Transport,
    clock: Clock,
    to: Reroute<'_>,
) -> Result<Restored, BackupError> {
    check_restore_target(home)?;
    let bytes = read_file(file)?;
    restore_bytes(&bytes, passphrase, home, transport, clock, to)
}

/// [`restore`] from the bytes of a backup file (a front end that received the file
/// itself, such as `duet app`'s upload), with what `to` gives replacing what the backup
/// names.
pub fn restore_bytes(
    bytes: &[u8],
    passphrase: &str,
    home: &Path,
    transport: &dyn Transport,
    clock: Clock,
    to: Reroute<'_>,
) -> Result<Restored, BackupError> {
    check_restore_target(home)?;
    if bytes.len() as u64 > super::MAX_FILE_BYTES {
        return Err(super::too_large());
    }
    let (parent, leaf) = crate::store::beside(home);
    std::fs::create_dir_all(&parent).map_err(io("create", &parent))?;
    // One restore into a home at a time: two would each send the backup's unsent
    // events as this device's, under two different sequence numbers. A killed one's
    // staged copy goes first, whatever this one's passphrase turns out to open.
    let _running = hold_restore(&parent, &leaf, home)?;
    check_restore_target(home)?;
    clear_stale_staging(&parent, &leaf);
    let plain = format::open(bytes, passphrase)?;
    let mut contents: Contents = serde_json::from_slice(&plain)
        .map_err(|_| BackupError::Damaged("its contents do not read".into()))?;
    for space in contents.spaces.iter_mut().filter(|s| s.relay.is_some()) {
        if let Some(relay) = to.relay {
            space.relay = Some(relay.to_string());
        }
        if let Some(token) = to.token {
            space.create_token = Some(token.to_string());
        }
    }
    drop(plain);
    let me = contents.identity()?;
    let staging = parent.join(format!(
        ".{leaf}{}{}",
        crate::store::STAGING,
        hex::encode(crate::ids::random_bytes::<4>())
    ));
    let result = bring_back(&staging, &contents, &me, transport, clock);
    let spaces = match result {
        Ok(spaces) => spaces,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    place(&staging, home)?;
    Ok(Restored {
        home: home.to_path_buf(),
        name: me.name.clone(),
        device: hex::encode(me.device_key()),
        written_at: contents.written_at,
        spaces,
    })
}

/// Puts the staged device in `home` (removing the staging folder if it cannot). A home
/// that exists holds at most empty lock files and set-aside devices (anything else was
/// refused before): the staged files move in beside them.
fn place(staging: &Path, home: &Path) -> Result<(), BackupError> {
    let moved = if home.exists() {
        move_in(staging, home)
    } else {
        std::fs::rename(staging, home)
    };
    let Err(e) = moved else { return Ok(()) };
    let _ = std::fs::remove_dir_all(staging);
    // Set up by another command while this restore read the relay.
    Err(match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::HomeHasDevice(home.to_path_buf()),
        std::io::ErrorKind::DirectoryNotEmpty => BackupError::HomeNotEmpty(home.to_path_buf()),
        _ => io("create", home)(e),
    })
}

/// Moves the staged device's files into `home`, which may hold its lock files and
/// devices a start-over set aside (a folder that is not empty cannot be replaced whole). Processes that open
/// the home meanwhile wait (the open lock); the database goes last, so that a log is
/// never read without it. On failure what was moved goes back to `staging`.
fn move_in(staging: &Path, home: &Path) -> std::io::Result<()> {
    let _setting_up = crate::store::OpenLock::to_set_up(home);
    // Looked at again under the lock: an `init` (or a join) may have set the home up
    // while this restore read the relay, and a restore never replaces a device.
    if home.join(crate::store::DB_FILE).exists() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(staging)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort_by_key(|n| n.as_os_str() == crate::store::DB_FILE);
    let mut done = Vec::new();
    for name in names {
        // The home's own lock files stay (other processes may hold them).
        if is_lock_file(&name) {
            std::fs::remove_file(staging.join(&name))?;
            continue;
        }
        if let Err(e) = std::fs::rename(staging.join(&name), home.join(&name)) {
            for back in done.iter().rev() {
                let _ = std::fs::rename(home.join(back), staging.join(back));
            }
            return Err(e);
        }
        done.push(name);
    }
    std::fs::remove_dir(staging)
}

/// The lock held while restoring into `home`, on `.HOME.restore.lock` beside it (the
/// home itself must stay empty until the staged device is moved in). The file is left
/// behind, empty and owner-only; the lock ends with the process, however it ends. Beside
/// a home in a folder others may write to (`/tmp`), a symbolic link in its place is not
/// followed (it had an empty file made wherever it led), and another user's file there
/// is refused (its owner could hold the lock, and every restore would wait on them).
fn hold_restore(parent: &Path, leaf: &str, home: &Path) -> Result<std::fs::File, BackupError> {
    let path = crate::store::restore_lock_path(parent, leaf);
    let file = crate::lock::open_lock_file(&path).map_err(io("create", &path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if file.metadata().map_err(io("read", &path))?.uid() != me {
            return Err(BackupError::RestoreLockNotOwn(path));
        }
    }
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(BackupError::RestoreRunning(home.to_path_buf()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock", &path)(e)),
    }
}

/// Removes what a restore into the same home left when it was killed: its staging
/// folder holds a whole copy of the device, keys included. Called under the restore
/// lock, so no restore is using one.
fn clear_stale_staging(parent: &Path, leaf: &str) {
    for stale in crate::store::staging_folders(parent, leaf) {
        let _ = std::fs::remove_dir_all(stale);
    }
}

/// Whether a restore into `home` was stopped before it moved the device in (killed,
/// the machine went down): its staging folder is left beside the home, which holds no
/// device yet. Running the restore again finishes it.
pub fn restore_stopped(home: &Path) -> bool {
    crate::store::stopped_restore(home).is_some()
}

/// Steps 1 to 3 in `staging`; the device is closed when it returns.
fn bring_back(
    staging: &Path,
    contents: &Contents,
    me: &Identity,
    transport: &dyn Transport,
    clock: Clock,
) -> Result<Vec<RestoredSpace>, BackupError> {
    fill(staging, contents, me, clock)?;
    let mut dev = Device::open_with(staging, clock)?;
    let online = contents.spaces.iter().any(|s| s.relay.is_some());
    for sp in &contents.spaces {
        give_back_sent(sp, transport)?;
    }
    let mut spaces: Vec<RestoredSpace> = Vec::new();
    if online {
        for (kind, report) in sync_whole(&mut dev, transport)? {
            spaces.push(RestoredSpace {
                space: kind.as_str(),
                received_events: report.received_events,
                resent_changes: 0,
                sent_waiting: report.pushed_events,
                online: true,
                still_unsent: 0,
                departed: None,
                warnings: report.warnings,
            });
        }
    }
    let mut resend = false;
    for sp in &contents.spaces {
        let rec = sp.record()?;
        let only_here = only_in_backup(&dev, &rec.id, &unb64(&sp.document, "document")?, me)?;
        let own = only_here.iter().filter(|c| c.local).count();
        dev.store.restore_changes(&rec.id, &only_here, me)?;
        resend |= own > 0;
        match spaces.iter_mut().find(|s| s.space == rec.kind.as_str()) {
            Some(s) => s.resent_changes = own,
            None => spaces.push(RestoredSpace {
                space: rec.kind.as_str(),
                received_events: 0,
                resent_changes: own,
                sent_waiting: 0,
                online: sp.relay.is_some(),
                still_unsent: 0,
                departed: None,
                warnings: Vec::new(),
            }),
        }
    }
    if online && resend {
        for (kind, report) in sync_whole(&mut dev, transport)? {
            if let Some(s) = spaces.iter_mut().find(|s| s.space == kind.as_str()) {
                s.warnings.extend(report.warnings);
            }
        }
    }
    // What is left unsent, and why: a restore says "sent" only of what the relay took.
    let status = dev.status()?;
    for s in &mut spaces {
        if let Some(now) = status.spaces.iter().find(|n| n.kind == s.space) {
            s.still_unsent = usize::try_from(now.pending_changes).unwrap_or(0) + now.unsent_events;
            s.departed = now.departed.as_ref().map(crate::store::Departed::describe);
        }
    }
    Ok(spaces)
}

/// Before step 2: gives back to the relay this device's events it had acknowledged when
/// the backup was written, should it have lost them since (restored from an older copy
/// of its database). Written again in step 3, their changes would take the sequence
/// numbers the partner's devices hold with the originals: a fork every device refuses,
/// for good. The newest goes first, alone: a relay that holds it holds the chain before
/// it, so that is all a restore sends to a relay that lost nothing. Any other answer is
/// left to the sync that follows to report (a relay out of reach, a removed device).
fn give_back_sent(
    sp: &super::contents::SpaceBackup,
    transport: &dyn Transport,
) -> Result<(), BackupError> {
    use crate::protocol::{ErrorCode, encode_batch};
    use crate::sync::TransportError;
    let Some(relay) = sp.relay.as_deref() else {
        return Ok(());
    };
    let Some(newest) = sp.sent_events.last() else {
        return Ok(());
    };
    let space = sp.record()?.id;
    let newest = unb64(newest, "events")?;
    match transport.push(relay, &space, encode_batch([newest.as_slice()]), None) {
        Err(TransportError::Refused { status: 409, body })
            if body.error == ErrorCode::BrokenChain => {}
        _ => return Ok(()),
    }
    let events = sp
        .sent_events
        .iter()
        .map(|e| unb64(e, "events"))
        .collect::<Result<Vec<_>, _>>()?;
    for batch in crate::sync::push::in_batches(events) {
        let body = encode_batch(batch.iter().map(Vec::as_slice));
        if transport.push(relay, &space, body, None).is_err() {
            break;
        }
    }
    Ok(())
}

/// Step 1: the store with the identity, the spaces, their keys and the unsent events.
fn fill(
    staging: &Path,
    contents: &Contents,
    me: &Identity,
    clock: Clock,
) -> Result<(), BackupError> {
    let mut store = Store::open(staging, true)?;
    store.set_clock(clock);
    store.initialise(me, &[])?;
    let mut token = None;
    for sp in &contents.spaces {
        let rec = sp.record()?;
        let events = sp
            .unsent_events
            .iter()
            .map(|e| {
                Event::decode(unb64(e, "events")?)
                    .map_err(|_| BackupError::Damaged("its events do not read".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        store.add_space(&rec, &events, &[])?;
        for (epoch, key) in sp.later_keys()? {
            store.add_epoch_key(&rec.id, epoch, &key)?;
        }
        let keys = store.epoch_keys(&rec.id)?;
        let carried: Vec<RestoredChange> = events
            .iter()
            .filter(|ev| ev.kind() == Kind::Changes)
            .filter_map(|ev| {
                ev.epoch()
                    .and_then(|e| keys.get(&e))
                    .and_then(|k| ev.open(k).ok())
            })
            .filter_map(|plain| decode_changes(&plain).ok())
            .flatten()
            .map(|change| RestoredChange {
                change,
                local: true,
                sent: true,
            })
            .collect();
        store.restore_changes(&rec.id, &carried, me)?;
        for (device, code) in sp.verified() {
            store.confirm_verified(&rec.id, &code, &[device])?;
        }
        token = token.or(sp.create_token.clone());
    }
    if token.is_some() {
        store.set_create_token(token.as_deref())?;
    }
    Ok(())
}

/// Syncs until the relay has served the whole history (a sync reads a bounded number of
/// pages), refusing to go on if it will not: an incomplete history could hide this
/// device's last events.
fn sync_whole(
    dev: &mut Device,
    transport: &dyn Transport,
) -> Result<Vec<(SpaceKind, SyncReport)>, BackupError> {
    let mut first: Option<Vec<(SpaceKind, SyncReport)>> = None;
    for _ in 0..MAX_SYNCS {
        let reports = dev.sync(transport)?;
        if let Some(w) = reports.iter().find_map(|(_, r)| r.push_refused.clone()) {
            return Err(BackupError::RelayRefused(w.text));
        }
        let incomplete = reports.iter().any(|(_, r)| r.incomplete);
        let reports = match first.take() {
            None => reports,
            Some(mut acc) => {
                for ((_, a), (_, r)) in acc.iter_mut().zip(reports) {
                    a.received_events += r.received_events;
                    a.pushed_events += r.pushed_events;
                    a.warnings.extend(r.warnings);
                }
                acc
            }
        };
        if !incomplete {
            return Ok(reports);
        }
        first = Some(reports);
    }
    Err(BackupError::Incomplete(format!(
        "it still had more after {MAX_SYNCS} syncs"
    )))
}

/// The changes of the backed-up document that the store does not hold: this device's
/// are queued to be sent (they never reached the relay), others kept as received.
fn only_in_backup(
    dev: &Device,
    space: &crate::event::SpaceId,
    saved: &[u8],
    me: &Identity,
) -> Result<Vec<RestoredChange>, BackupError> {
    let doc = automerge::Automerge::load(saved)
        .map_err(|_| BackupError::Damaged("its document does not load".into()))?;
    let have: HashSet<[u8; 32]> = dev.store.change_hashes(space)?;
    let actor = me.actor();
    Ok(doc
        .get_changes(&[])
        .into_iter()
        .filter(|c| !have.contains(&c.hash().0))
        .map(|change: Change| {
            let local = change.actor_id() == &actor;
            RestoredChange {
                change,
                local,
                sent: !local,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::NewGoalInput;
    use crate::backup::{KdfParams, backup_with};
    use crate::sync::{Page, TransportError};

    /// A device without a relay never sent anything: its restore needs no relay.
    struct NoRelay;

    impl Transport for NoRelay {
        fn push(
            &self,
            _: &str,
            _: &crate::event::SpaceId,
            _: Vec<u8>,
            _: Option<&str>,
        ) -> Result<crate::protocol::PushResponse, TransportError> {
            panic!("a device without a relay is restored without a sync")
        }
        fn pull(
            &self,
            _: &str,
            _: &crate::event::SpaceId,
            _: u64,
            _: u32,
            _: &Identity,
        ) -> Result<Page, TransportError> {
            panic!("a device without a relay is restored without a sync")
        }
    }

    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn a_device_without_a_relay_comes_back_whole_and_a_home_with_a_device_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut dev = Device::init(&dir.path().join("a"), "Alex", None).expect("init");
        dev.add_goal(NewGoalInput {
            title: "Restored canary goal".into(),
            area: None,
            why: None,
            ..Default::default()
        })
        .expect("goal");
        let file = dir.path().join("a.bk");
        backup_with(&dev, &file, "a long passphrase", false, FAST).expect("backup");
        assert!(matches!(
            backup_with(&dev, &file, "a long passphrase", false, FAST),
            Err(BackupError::Exists(_))
        ));
        let home = dir.path().join("b");
        let r =
            restore(&file, "a long passphrase", &home, &NoRelay, Clock::System).expect("restore");
        assert_eq!(r.device, hex::encode(dev.me.device_key()));
        let mut back = Device::open(&home).expect("open restored");
        let export = serde_json::to_string(&back.export().expect("export")).expect("json");
        assert!(export.contains("Restored canary goal"));
        assert!(!dir.path().read_dir().expect("dir").any(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .contains("restoring")
        }));
        assert!(matches!(
            restore(&file, "a long passphrase", &home, &NoRelay, Clock::System),
            Err(BackupError::HomeHasDevice(_))
        ));
    }

    #[test]
    fn a_second_restore_into_one_home_waits_its_turn_and_a_killed_ones_copy_is_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = Device::init(&dir.path().join("a"), "Alex", None).expect("init");
        let file = dir.path().join("a.bk");
        backup_with(&dev, &file, "a long passphrase", false, FAST).expect("backup");
        let home = dir.path().join("b");
        // A restore running into `b` (its lock held, as by another process).
        let running = hold_restore(dir.path(), "b", &home).expect("the lock");
        assert!(matches!(
            restore(&file, "a long passphrase", &home, &NoRelay, Clock::System),
            Err(BackupError::RestoreRunning(_))
        ));
        assert!(!home.exists(), "nothing was written");
        drop(running);
        // A restore killed halfway left its staged copy of the device (keys included).
        let stale = dir.path().join(".b.restoring-deadbeef");
        std::fs::create_dir_all(&stale).expect("stale staging");
        std::fs::write(stale.join("duet.db"), b"keys").expect("stale db");
        // Even a restore that fails (a wrong passphrase) clears it.
        assert!(matches!(
            restore(&file, "not the passphrase", &home, &NoRelay, Clock::System),
            Err(BackupError::WrongPassphrase)
        ));
        assert!(!stale.exists(), "the killed restore's copy is still there");
        restore(&file, "a long passphrase", &home, &NoRelay, Clock::System).expect("restore");
    }
}

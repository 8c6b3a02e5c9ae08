//! `duet sync`: push local changes and pull the partner's, verifying everything; with
//! `--watch`, keep doing it (see `watch`).

use duet_core::device::{Device, DeviceError};
use duet_core::store::SpaceKind;
use serde_json::json;

use super::Ctx;
use crate::output::{note, safe_line};
use crate::progress::Progress;
use crate::transport::Http;

/// Push local changes and pull your partner's, verifying everything.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Keep syncing until interrupted (Ctrl-C): your partner's changes arrive as soon as
    /// the relay has them, and changes made on this device are sent within a second.
    #[arg(long)]
    watch: bool,
    /// First drop the events that wait for an earlier event the relay never served
    /// (after a warning that says their number reached the cap), then sync.
    #[arg(long, conflicts_with = "watch")]
    drop_waiting: bool,
}

/// Runs `duet sync`.
pub fn run(ctx: &Ctx, a: SyncArgs) -> anyhow::Result<()> {
    if a.watch {
        if ctx.out.json {
            anyhow::bail!(crate::UsageError(
                "`sync --watch` reports in words as it goes; --json is for a single `duet sync`"
                    .into()
            ));
        }
        return super::watch::run(ctx);
    }
    if a.drop_waiting {
        let n = ctx.device()?.drop_waiting()?;
        note(&if n == 0 {
            "no event was waiting before this sync".to_string()
        } else {
            format!(
                "dropped {}; they are not read again, unless the relay serves them at a new place",
                duet_core::words::count(n, "waiting event", "waiting events")
            )
        });
    }
    let mut dev = ctx.device()?;
    let http = Http::new()?.with_progress(Progress::start(&ctx.out, "syncing"));
    let (reports, failed) = match dev.sync_each(&http) {
        Ok(done) => done,
        Err(e) => {
            return Err(
                space_not_there_yet(&mut dev, &e).unwrap_or_else(|| not_finished(None, &[])(e))
            );
        }
    };
    drop(http);
    if let Some((kind, e)) = failed {
        if let Some(said) = space_not_there_yet(&mut dev, &e) {
            return Err(said);
        }
        // What the spaces before it did is said (their changes arrived and went out).
        if !ctx.out.json {
            print_reports(ctx, &reports)?;
        }
        let synced: Vec<SpaceKind> = reports.iter().map(|(k, _)| *k).collect();
        return Err(not_finished(Some(kind), &synced)(e));
    }
    let stopped = not_up_to_date(&reports, a.drop_waiting);
    if ctx.out.json {
        ctx.out.json(
            &reports
                .iter()
                .map(|(k, r)| json!({ "space": k.as_str(), "report": r }))
                .collect::<Vec<_>>(),
        )?;
        // The notes too, each a JSON line on stderr.
        notes_after(&mut dev, &reports)?;
        return stopped
            .map_or(Ok(()), Err)
            .and_then(|()| fail_when_in_no_space(&reports));
    }
    print_reports(ctx, &reports)?;
    notes_after(&mut dev, &reports)?;
    fail_on_refused_push(&reports)?;
    // A space this device departed is not a failure of the sync (a script syncing after
    // a leave must not fail forever): said in full when learnt, in a line after.
    if let Some(stopped) = stopped {
        return Err(stopped);
    }
    fail_when_in_no_space(&reports)?;
    last_line(ctx, &reports)
}

/// Why a sync that finished is not up to date, if it is not (exit 3).
fn not_up_to_date(
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
    drop_waiting: bool,
) -> Option<anyhow::Error> {
    // Stopped before the relay's end, or an event missing where the relay served
    // something else: not up to date, and said so to a script too.
    if reports.iter().any(|(_, r)| r.incomplete) {
        Some("this sync stopped before the relay's end (the warning says why); what it read is kept, and the next `duet sync` reads on from there".to_string())
    } else if reports.iter().any(|(_, r)| r.not_authentic.is_some()) {
        Some("an event is missing where the relay served something else (the warning says so); everything else was read, and the next `duet sync` asks for it again".to_string())
    } else if reports.iter().any(|(_, r)| r.from_departed > 0) {
        Some("the relay took events from a device after a removal or leave it no longer shows (the warning says which); they are not applied here: tell the relay's operator".to_string())
    } else if lacks_key(reports) {
        // Not something a later sync mends by itself: it said "Up to date" for ever.
        Some(format!("not up to date: this device holds no key for what was written since a device's removal (the warning says why), so it reads none of it and its own changes wait; {NO_KEY_ADVICE}"))
    } else {
        waiting_line(reports, drop_waiting).or_else(|| unsent_line(reports))
    }
    .map(|why| anyhow::Error::new(crate::advice::TryLater(why)))
}

/// What a sync notes after its reports: texts merged letter by letter, devices not
/// verified yet.
fn notes_after(
    dev: &mut Device,
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
) -> anyhow::Result<()> {
    note_merged_texts(dev, reports)?;
    if let Some(n) = super::device::unverified_note(&dev.unverified_devices()?) {
        note(&format!("note: {}", safe_line(&n)));
    }
    Ok(())
}

/// A failed sync in words that say what to do: which space failed, when one before it
/// synced, and which did.
fn not_finished(
    failed: Option<SpaceKind>,
    synced: &[SpaceKind],
) -> impl Fn(DeviceError) -> anyhow::Error {
    let what = match (failed, synced) {
        (Some(kind), [_, ..]) => format!(
            "the {} space's sync did not finish (the {} space synced)",
            kind.as_str(),
            synced
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        _ => "sync did not finish".to_string(),
    };
    move |e| {
        // "Run it again" only where running it again can help.
        let context = if crate::advice::retry_helps(&e) {
            format!("{what}; nothing was lost, run `duet sync` again")
        } else {
            format!("{what}; nothing was lost")
        };
        anyhow::Error::new(e).context(context)
    }
}

/// A join whose first sync found no such space on the relay: the partner's code was
/// made offline, and its space reaches the relay with their next sync. Said so (exit 3),
/// not as a relay that lost its database, which it did not.
fn space_not_there_yet(dev: &mut Device, e: &DeviceError) -> Option<anyhow::Error> {
    use duet_core::sync::{SyncError, TransportError};
    let DeviceError::Sync(SyncError::Transport(TransportError::Refused { body, .. })) = e else {
        return None;
    };
    let joining =
        body.error == duet_core::protocol::ErrorCode::NoSuchSpace && dev.joining().unwrap_or(false);
    joining.then(|| {
        crate::advice::TryLater(
            "joining is not finished: the space your partner's code names is not on the relay \
             yet (a code made offline reaches it with its maker's next sync); ask your partner \
             to run `duet sync`, then run `duet sync` here; nothing was lost"
                .into(),
        )
        .into()
    })
}

/// Fails when this device is a member of no space any more (removed from both, or left
/// one and removed from the other): nothing will ever sync here again, and a script
/// that syncs on a schedule must learn it rather than succeed forever.
fn fail_when_in_no_space(
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
) -> anyhow::Result<()> {
    if reports.is_empty() || reports.iter().any(|(_, r)| r.departed.is_none()) {
        return Ok(());
    }
    Err(in_no_space())
}

/// The failure of a sync, or a watch, on a device that is a member of no space any more.
pub(crate) fn in_no_space() -> anyhow::Error {
    anyhow::anyhow!(
        "this device is no longer a member of any space, so nothing syncs here any more; \
         what it had stays readable (`duet export`). To use Duet on this device again, run \
         `duet start-over`, then `duet join CODE` with a code from a device still in the \
         space (`duet device add` on one of yours, or `duet invite` on your partner's)"
    )
}

/// `count` summed over the spaces this device is still a member of.
/// What a device without a space's key does (`duet sync` and the watch say it).
pub(crate) const NO_KEY_ADVICE: &str = "make a new code on your other device (`duet device \
     add`), join with it in a new folder, then remove this device there";

/// Whether a space this device is in was written under a key it does not hold.
pub(crate) fn lacks_key(reports: &[(SpaceKind, duet_core::sync::SyncReport)]) -> bool {
    in_member_spaces(reports, |r| usize::from(r.missing_key.is_some())) > 0
}

fn in_member_spaces(
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
    count: impl Fn(&duet_core::sync::SyncReport) -> usize,
) -> usize {
    reports
        .iter()
        .filter(|(_, r)| r.departed.is_none())
        .map(|(_, r)| count(r))
        .sum()
}

/// What a sync that left some of this device's events unacknowledged says: not up to
/// date, whatever else it did (a relay whose answers did not name them as stored).
fn unsent_line(reports: &[(SpaceKind, duet_core::sync::SyncReport)]) -> Option<String> {
    let unsent = in_member_spaces(reports, |r| r.unsent);
    (unsent > 0).then(|| {
        format!(
            "the relay has not acknowledged {} of this device's (the warning says why); {} on this device, and the next `duet sync` sends {} again",
            duet_core::words::count(unsent, "event", "events"),
            if unsent == 1 { "it stays" } else { "they stay" },
            if unsent == 1 { "it" } else { "them" },
        )
    })
}

/// What a sync that leaves events waiting for one the relay has not served says: not up
/// to date (a partner's writes are held back), so a scheduled sync learns it (exit 3).
/// `dropped`: this sync began by dropping what waited before it (`--drop-waiting`).
fn waiting_line(
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
    dropped: bool,
) -> Option<String> {
    let waiting = in_member_spaces(reports, |r| r.waiting);
    let drop = if dropped {
        "`--drop-waiting` set aside only what waited before this sync read: run it again to set these aside"
    } else {
        "`duet sync --drop-waiting` sets them aside"
    };
    (waiting > 0).then(|| {
        format!(
            "not up to date: {} for an earlier event (or a key) the relay has not served (the warning says which); {} kept on this device and applied once the relay serves it: run `duet sync` again later, and if the relay never does, tell its operator ({drop})",
            duet_core::words::count(waiting, "event waits", "events wait"),
            if waiting == 1 { "it is" } else { "they are" },
        )
    })
}

/// The last line of a sync that brought and sent nothing, and left nothing waiting (that
/// fails before it): up to date.
fn last_line(
    ctx: &Ctx,
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
) -> anyhow::Result<()> {
    let quiet = reports.iter().all(|(_, r)| {
        r.arrivals.is_empty()
            && r.membership.is_empty()
            && r.pushed_changes == 0
            && r.pushed_events == 0
            && r.departed.is_none()
    });
    if quiet {
        ctx.out.line("Up to date.")?;
    }
    Ok(())
}

/// Fails when the relay refused this device's own events in any space.
fn fail_on_refused_push(
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
) -> anyhow::Result<()> {
    let refused: Vec<String> = reports
        .iter()
        .filter_map(|(k, r)| {
            r.push_refused
                .as_ref()
                .map(|m| format!("{} space: {}", k.as_str(), crate::advice::warning(m)))
        })
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let said = format!(
        "the relay refused this device's changes ({}); they are kept on this device",
        refused.join("; ")
    );
    // Refusals the next sync may get past (exit 3), or one for good (exit 1).
    let again = reports
        .iter()
        .filter_map(|(_, r)| r.push_refused.as_ref())
        .all(|w| w.next == Some(duet_core::advice::NextStep::SyncAgain));
    if again {
        return Err(crate::advice::TryLater(said).into());
    }
    anyhow::bail!(said)
}

/// After a sync that brought goal edits: the goal texts now merged from edits made on
/// both sides while apart, each said with the command that sets it.
pub fn note_merged_texts(
    dev: &mut Device,
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
) -> anyhow::Result<()> {
    let edits_arrived = reports
        .iter()
        .filter(|(k, _)| *k == SpaceKind::Shared)
        .flat_map(|(_, r)| &r.arrivals)
        .any(|a| a.counts.contains_key("edit") || a.counts.contains_key("step edit"));
    if edits_arrived {
        for m in dev.merged_texts(None)? {
            note(&super::goal::merged_note(&m));
        }
    }
    // A reflection edited on another device of this person's while this one edited it.
    let arrived = |kind: &str| {
        reports
            .iter()
            .flat_map(|(_, r)| &r.arrivals)
            .any(|a| a.counts.contains_key(kind))
    };
    let reflection_edits_arrived = arrived("reflection edit");
    // Or withdrawn there while this one edited it.
    if reflection_edits_arrived || arrived("withdrawn reflection") {
        for (id, private) in dev.edits_after_withdrawal()? {
            note(&format!(
                "note: your {}reflection {} was withdrawn on another of your devices, and the edit made after it on this one is not shown (a withdrawn reflection stays withdrawn; `duet history` keeps the edit). To say it again, write it anew: `duet reflect TEXT`",
                if private { "private " } else { "" },
                duet_core::ids::short(&id)
            ));
        }
    }
    if reflection_edits_arrived {
        let edits = reports
            .iter()
            .flat_map(|(_, r)| &r.arrivals)
            .flat_map(|a| a.reflection_edits.iter().cloned())
            .collect();
        for m in dev.merged_reflections(&edits)? {
            let short = duet_core::ids::short(&m.id);
            if !m.yours {
                let who =
                    crate::output::safe_line(m.author_name.as_deref().unwrap_or("your partner"));
                note(&format!(
                    "note: {who}'s reflection {short} was edited on two of their devices while apart, and the edits were merged letter by letter: until they set it again, it reads \"{}\"",
                    crate::output::safe_line(&m.reads)
                ));
                continue;
            }
            note(&format!(
                "note: your {}reflection {short} was edited on two of your devices while apart, and the edits were merged letter by letter: it reads \"{}\". Set it as you mean it: `duet reflect --edit {short} TEXT`",
                if m.private { "private " } else { "" },
                crate::output::safe_line(&m.reads)
            ));
        }
    }
    Ok(())
}

/// A space this device is no longer a member of: in full in the sync that learnt it
/// (with the changes made here that never reached it), in one line after.
fn print_departed(
    ctx: &Ctx,
    kind: SpaceKind,
    d: &duet_core::store::Departed,
    r: &duet_core::sync::SyncReport,
) -> Result<(), crate::output::StdoutError> {
    if !r.departed_now && leave_sent_now(d, r) {
        // A leave made while the relay was out of reach, sent now: that is what this
        // sync did (it said "not synced" and "sent" in two lines).
        // The leave is one of the events sent; the others were written before it.
        let before = match r.pushed_events.saturating_sub(1) {
            0 => String::new(),
            n => format!(
                " with {} written before it",
                duet_core::words::count(n, "event", "events")
            ),
        };
        return ctx.out.line(format!(
            "{}: your leave of {} reached the relay{before}; this device no longer syncs that space",
            kind.as_str(),
            crate::output::day(d.at),
        ));
    }
    if !r.departed_now {
        return ctx.out.line(format!(
            "{}: not synced: this device's membership ended on {} (`duet status`)",
            kind.as_str(),
            crate::output::day(d.at)
        ));
    }
    let why = DeviceError::Departed(d.clone());
    note(&format!(
        "{}; it no longer syncs that space",
        safe_line(&crate::advice::message(&why))
    ));
    if r.stranded > 0 {
        note(&format!(
            "note: {} made on this device never reached the {} space; {} readable \
             here (`duet export`), and {} not sent",
            duet_core::words::count(r.stranded as usize, "change", "changes"),
            kind.as_str(),
            if r.stranded == 1 {
                "it stays"
            } else {
                "they stay"
            },
            if r.stranded == 1 { "is" } else { "are" },
        ));
    }
    Ok(())
}

/// Whether this sync sent this person's leave, made before it (offline): events went
/// out in a space this device had left already.
fn leave_sent_now(d: &duet_core::store::Departed, r: &duet_core::sync::SyncReport) -> bool {
    d.left && !r.departed_now && r.pushed_events > 0
}

/// A sync's warning about the space of `kind`, on stderr, as every command says it.
pub fn note_warning(kind: &str, w: &duet_core::advice::Warning) {
    note(&format!(
        "warning ({kind} space): {}",
        safe_line(&crate::advice::warning(w))
    ));
}

/// What the syncs inside another command (making a code) read, on stderr beside that
/// command's own answer (its stdout stays the code): warnings, and unless `quiet` (as
/// `sync -q` says only warnings) who joined, left or changed devices and what arrived.
/// Said nowhere before: a partner's removal of one's device read there, and the next
/// sync said "Up to date".
pub fn note_news(reports: &[(SpaceKind, duet_core::sync::SyncReport)], quiet: bool) {
    for (kind, r) in reports {
        let space = kind.as_str();
        for w in &r.warnings {
            note_warning(space, w);
        }
        // A departure learnt there is not said here: the command then fails, saying it.
        if quiet {
            continue;
        }
        for m in &r.membership {
            note(&format!("{space}: {}", safe_line(&m.summary(space))));
        }
        for a in &r.arrivals {
            note(&format!("{space}: {}", safe_line(&a.summary())));
        }
    }
}

/// Prints what a sync did: warnings, what arrived from whom, how many changes were sent.
pub fn print_reports(
    ctx: &Ctx,
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
) -> Result<(), crate::output::StdoutError> {
    for (kind, r) in reports {
        if let Some(d) = &r.departed {
            print_departed(ctx, *kind, d, r)?;
        }
        for w in &r.warnings {
            note_warning(kind.as_str(), w);
        }
        for m in &r.membership {
            // "Sam left the shared space": the names are the space's.
            ctx.out.line(format!(
                "{}: {}",
                kind.as_str(),
                safe_line(&m.summary(kind.as_str()))
            ))?;
        }
        for a in &r.arrivals {
            // "2 ratings from NAME": the name is the partner's.
            ctx.out
                .line(format!("{}: {}", kind.as_str(), safe_line(&a.summary())))?;
        }
        if r.departed.as_ref().is_some_and(|d| leave_sent_now(d, r)) {
            // Said with the leave.
        } else if r.pushed_changes > 0 {
            ctx.out.line(format!(
                "{}: sent {} change{}",
                kind.as_str(),
                r.pushed_changes,
                if r.pushed_changes == 1 { "" } else { "s" }
            ))?;
        } else if r.pushed_events > 0 {
            // Made before this sync (a push that failed, a device added or removed):
            // sent now, not "up to date".
            ctx.out.line(format!(
                "{}: sent what was waiting to be sent ({})",
                kind.as_str(),
                duet_core::words::count(r.pushed_events, "event", "events")
            ))?;
        }
    }
    Ok(())
}

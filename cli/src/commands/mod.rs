//! The command line: global options, the subcommand tree, and dispatch.

mod backup;
mod checkin;
mod completions;
mod demo;
mod device;
mod export;
mod goal;
mod goal_list;
mod goal_ratings;
mod history;
mod init;
pub(crate) mod invite;
mod invite_list;
mod invite_short;
pub(crate) mod join;
mod leave;
mod man;
mod progress;
mod rate;
mod reflect;
mod reflections;
pub(crate) mod relay;
pub(crate) mod report;
mod start_over;
mod status;
mod step;
mod sync;
pub(crate) mod undo;
mod watch;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use duet_core::clock::Clock;
use duet_core::device::Device;

use crate::output::{ColorChoice, Colour, Out};

const EXAMPLES: &str = "\
Examples:
  duet init --name Alex --relay http://127.0.0.1:8787
  duet goal add \"Weekly check-in\" --area communication --expected \"We talk for 30 minutes every Sunday\"
  duet rate weekly -1 --note \"Skipped one week\"   # a word of the title finds the goal
  duet checkin                    # rate every goal blind, one by one
  duet reflect --private \"I felt heard this time\"
  duet invite                     # prints a code: give it to your partner in person
  duet join \"$CODE\" --name Sam    # on your partner's device, with CODE set to that code
  duet sync
  duet demo                       # see everything at once, in temporary folders

Exit codes:
  0  success
  1  failure (a goal, device or invite that nothing answers to included)
  2  usage error: a malformed argument (a level, a date, an empty title, a text too long)
  3  a failure that can pass later as it is (the relay out of reach, late or busy;
     another command writing to the same home; a sync that stopped before the relay's
     end): nothing was lost, run the command again";

/// Shared relationship goals, offline first, end-to-end encrypted.
#[derive(Debug, Parser)]
#[command(name = "duet", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Where this device keeps its data [env: DUET_HOME] (default: the platform data
    /// directory).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        // DUET_HOME is read in `main`, not by clap: clap would name `--home <DIR>` in
        // every usage error as if the person had to type it.
        value_name = "DIR",
        // Empty is accepted here and settled in `run`: an empty `--home` is refused.
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::OsStringValueParser::new(),
            PathBuf::from
        )
    )]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text (a failure: one JSON line on stderr;
    /// `history --json`: one JSON object per line).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Print nothing but errors and warnings (still printed: a code a command hands
    /// over, `--json` output, `man` and `completions`).
    #[arg(long, short, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Colour: auto (terminal and no NO_COLOR), always, never.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create this device's identity, your shared space and your personal space.
    #[command(after_help = "Example:\n  duet init --name Alex")]
    Init(init::Args),
    /// Create, list, show and edit goals.
    #[command(subcommand)]
    Goal(goal::GoalCmd),
    /// Add and complete a goal's actionable steps.
    #[command(subcommand)]
    Step(step::StepCmd),
    /// Rate a goal on the GAS scale, -2..2 (`duet rate GOAL -1`).
    ///
    /// -2 much less than expected, -1 less, 0 as expected, 1 more, 2 much more. A rating
    /// is blind: until your partner has rated the goal in this check-in too, their
    /// devices receive only a sealed commitment, and both see both once both have rated.
    Rate(rate::Args),
    /// Rate the active goals blind, one by one; `--close` reveals the round.
    Checkin(checkin::Args),
    /// Undo your latest rating, reflection or step completion.
    Undo(undo::Args),
    /// Write a reflection (shared, or private with --private), reply, edit, withdraw.
    Reflect(reflect::Args),
    /// Read the reflections and their replies.
    Reflections(reflections::Args),
    /// The joint history of the shared space, newest last.
    History(history::Args),
    /// Both partners' GAS progress side by side, with T-scores.
    #[command(after_help = "Examples:\n  duet progress\n  duet progress --json")]
    Progress(progress::Args),
    /// Write a self-contained HTML report to hand a therapist.
    Report(report::Args),
    /// Export everything of the shared and personal space.
    #[command(
        after_help = "Example:\n  duet export --json --output our-goals.json   # readable by you only"
    )]
    Export(export::Args),
    /// Print a single-use invite code for your partner's device.
    Invite(invite::InviteArgs),
    /// Join your partner's shared space with an invite code.
    Join(join::JoinArgs),
    /// Leave the shared space (all your devices), keeping an export of everything.
    Leave(leave::Args),
    /// Set this device aside (kept in a folder of its home) to set the home up anew.
    #[command(
        name = "start-over",
        after_help = "Offered where going on cannot help: this device left or was removed, your partner is gone, or nobody else ever joined.\nExample:\n  duet start-over   # then: duet join CODE --name NAME"
    )]
    StartOver(start_over::Args),
    /// Push local changes and pull your partner's, verifying everything.
    #[command(
        after_help = "Examples:\n  duet sync\n  duet sync --watch   # stay in sync until Ctrl-C"
    )]
    Sync(sync::SyncArgs),
    /// Show relay, spaces, cursor, pending changes and members.
    #[command(after_help = "Example:\n  duet status")]
    Status(status::StatusArgs),
    /// Configure the relay.
    #[command(subcommand)]
    Relay(relay::RelayCmd),
    /// Add, list and remove devices.
    #[command(subcommand)]
    Device(device::DeviceCmd),
    /// Write this device (keys, spaces, documents) to one passphrase-encrypted file.
    Backup(backup::BackupArgs),
    /// Bring a lost device back from a backup file into a new home (`--home DIR`).
    Restore(backup::RestoreArgs),
    /// Sync, then show the safety code to compare in person; `--confirm` records a match.
    #[command(
        after_help = "Example:\n  duet verify   # then, if both devices show the same code: duet verify --confirm CODE"
    )]
    Verify(device::VerifyArgs),
    /// Run a two-partner demo with an embedded relay in temporary folders.
    Demo(demo::Args),
    /// Open Duet in your browser: a local app on 127.0.0.1 (runs until Ctrl-C).
    App(crate::app::Args),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::Args),
    /// Print the manual page (roff), or write every page with --dir.
    Man(man::Args),
}

/// Global context every command gets.
pub struct Ctx {
    /// The home directory.
    pub home: PathBuf,
    /// Output settings.
    pub out: Out,
    /// Colour settings.
    pub colour: Colour,
    /// The clock (`DUET_NOW` pins it).
    pub clock: Clock,
}

impl Ctx {
    /// Opens the initialised device in the home directory.
    pub fn device(&self) -> anyhow::Result<Device> {
        let opened = Device::open_with(&self.home, self.clock);
        if let Err(duet_core::device::DeviceError::Store(
            duet_core::store::StoreError::NotInitialised,
        )) = &opened
            && duet_core::backup::restore_stopped(&self.home)
        {
            anyhow::bail!(
                "a `duet restore` into {} was stopped before it finished, so this home holds \
                 no device yet; run the same `duet restore FILE --home {}` again",
                self.home.display(),
                self.home.display()
            );
        }
        let dev = opened.with_context(|| format!("cannot open duet in {}", self.home.display()))?;
        for r in dev.repairs() {
            crate::output::note(&format!("note: repaired this device's store: {r}"));
        }
        if !self.out.quiet {
            dev.on_wait(std::sync::Arc::new(|| {
                crate::output::note("another duet command is writing to this home; waiting");
            }));
        }
        Ok(dev)
    }

    /// Opens the device for a view of the shared space (goals, progress, history,
    /// reflections, report). A view is built from the whole document, so on a device
    /// whose membership ended before its latest changes were sent, it says that these
    /// show here only (the history marks them).
    pub fn view_device(&self) -> anyhow::Result<Device> {
        let dev = self.device()?;
        let stranded = dev.never_sent_count()?;
        if stranded > 0 {
            crate::output::note(&format!(
                "note: {} made on this device never reached the shared space before this \
                 device's membership ended: they show here only, your partner never sees \
                 them (`duet history` marks them \"never sent\")",
                duet_core::words::count(stranded, "change", "changes")
            ));
        }
        let private = dev.never_sent_private_count()?;
        if private > 0 {
            crate::output::note(&format!(
                "note: {} made on this device never reached your personal space before this \
                 device was removed from it: they show here only, your other devices never \
                 see them",
                duet_core::words::count(private, "private change", "private changes")
            ));
        }
        Ok(dev)
    }
}

/// Refuses an argument longer than any text Duet keeps, naming it (a usage error): the
/// store's own check says only "a text".
pub fn within_text_limit(what: &str, s: Option<&str>) -> anyhow::Result<()> {
    let max = duet_core::model::limits::MAX_TEXT_CHARS;
    if s.is_some_and(|s| s.chars().take(max + 1).count() > max) {
        anyhow::bail!(crate::UsageError(format!(
            "{what} may have at most {max} characters, and this one has more; shorten it"
        )));
    }
    Ok(())
}

/// A text argument that must say something (a step, a reflection, a name): blank is a
/// usage error (exit 2), as any other malformed argument.
pub fn non_blank(s: &str) -> Result<String, String> {
    if duet_core::app::blank(s) {
        return Err("it is empty (or only invisible characters); write a few words".into());
    }
    Ok(s.to_string())
}

fn default_home() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "duet")
        .map(|d| d.data_dir().to_path_buf())
        .context("cannot find a data directory for this user; pass --home DIR or set DUET_HOME")
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let home = match cli.home {
        Some(h) if h.as_os_str().is_empty() => {
            return Err(crate::UsageError(
                "--home is empty: give the folder this device keeps its data in, or leave \
                 it out for the default"
                    .into(),
            )
            .into());
        }
        // `--home "~/duet"`: quoted, the shell left the `~`, and a folder named `~` was
        // made where the command ran (one `rm -rf ~` away from the person's own home).
        Some(h) if h.starts_with("~") && !h.exists() => {
            return Err(crate::UsageError(format!(
                "--home {} starts with `~`, which the shell did not expand (it was quoted): \
                 give the folder as $HOME/… or a full path",
                h.display()
            ))
            .into());
        }
        Some(h) => h,
        None => default_home()?,
    };
    let clock = Clock::from_env().map_err(|e| crate::UsageError(e.to_string()))?;
    // A clock that lost its time would date everything wrong (and before 1970 the time
    // libraries panic); printing help text needs no clock.
    // (also with DUET_NOW: reads are still signed by the system clock).
    let timeless = matches!(cli.command, Command::Completions(_) | Command::Man(_));
    if !timeless {
        duet_core::clock::check_system_clock()?;
    }
    duet_core::bundle::deadline_var().map_err(crate::UsageError)?;
    if cli.quiet {
        crate::output::quiet_notes();
    }
    if cli.json {
        crate::output::json_notes();
    }
    let ctx = Ctx {
        clock,
        colour: Colour::decide(cli.color),
        home,
        out: Out {
            json: cli.json,
            quiet: cli.quiet,
        },
    };
    // `duet app` stops its server on these signals itself.
    if !matches!(cli.command, Command::App(_)) {
        crate::interrupt::install();
    }
    let result = dispatch(&ctx, cli.command);
    match result {
        Err(err) if crate::advice::damaged_row(&err) => Err(forget_damaged_tables(&ctx, err)),
        other => other,
    }
}

/// A stored row that did not read (a damaged byte SQLite itself does not notice) is most
/// often in the read models, which hold nothing the document does not: they are marked
/// stale, to be rebuilt by the next command, and the user is told to run it again.
fn forget_damaged_tables(ctx: &Ctx, err: anyhow::Error) -> anyhow::Error {
    let forgot = duet_core::device::Device::open(&ctx.home)
        .and_then(|mut dev| dev.forget_read_models())
        .is_ok();
    if !forgot {
        return err;
    }
    anyhow::Error::new(crate::advice::TryLater(format!(
        "{err:#}: a row of this device's data did not read; the tables derived from its \
         document are rebuilt by the next command, so run this one again (if the same \
         error comes back, the damage is elsewhere: move this home away and restore it \
         from a backup, `duet restore FILE`)"
    )))
}

/// Runs one command.
fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(a) => init::run(ctx, a),
        Command::Goal(c) => goal::run(ctx, c),
        Command::Step(c) => step::run(ctx, c),
        Command::Rate(a) => rate::run(ctx, a),
        Command::Checkin(a) => checkin::run(ctx, a),
        Command::Undo(a) => undo::run(ctx, a),
        Command::Reflect(a) => reflect::run(ctx, a),
        Command::Reflections(a) => reflections::run(ctx, a),
        Command::Export(a) => export::run(ctx, a),
        Command::History(a) => history::run(ctx, a),
        Command::Progress(a) => progress::run(ctx, a),
        Command::Report(a) => report::run(ctx, a),
        Command::Invite(a) => invite::run(ctx, a),
        Command::Join(a) => join::run(ctx, a),
        Command::Leave(a) => leave::run(ctx, a),
        Command::StartOver(a) => start_over::run(ctx, a),
        Command::Sync(a) => sync::run(ctx, a),
        Command::Status(a) => status::run(ctx, a),
        Command::Relay(c) => relay::run(ctx, c),
        Command::Demo(a) => demo::run(ctx, a),
        Command::Device(c) => device::run(ctx, c),
        Command::Backup(a) => backup::run_backup(ctx, a),
        Command::Restore(a) => backup::run_restore(ctx, a),
        Command::Verify(a) => device::verify(ctx, a),
        Command::App(a) => crate::app::run(ctx, a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    }
}

/// Parses a `YYYY-MM-DD` day into the ms timestamp of its start in local time (the days
/// every output prints are local).
pub fn parse_day(s: &str) -> Result<i64, String> {
    day_start(s, 0)
}

/// Parses a `YYYY-MM-DD` day into the ms timestamp of the start of the local day after it
/// (an `--until DAY` bound includes that whole day, 23 or 25 hours on a clock change).
pub fn parse_day_end(s: &str) -> Result<i64, String> {
    day_start(s, 1)
}

/// What is wrong with `s` as a day: written otherwise than YYYY-MM-DD, or so written
/// but not a day of the calendar (the 30th of February).
pub fn bad_day(s: &str) -> String {
    if shaped_as_day(s) && s.trim() < FIRST_DAY {
        format!("{s:?} is before 1970, earlier than anything Duet holds: give a later day")
    } else if shaped_as_day(s) {
        format!(
            "{s:?} is not a day of the calendar (that month has fewer days, or there is no such month)"
        )
    } else {
        format!("{s:?} is not written as a day: give it as YYYY-MM-DD, like 2026-12-31")
    }
}

/// The first day a day argument may name: nothing in Duet is older, and the report's
/// times start there.
const FIRST_DAY: &str = "1970-01-01";

/// Whether `s` is written as YYYY-MM-DD: four digits of year, two of month and of day
/// (chrono alone also reads `27-06-30` as the year 27, and a sign).
fn shaped_as_day(s: &str) -> bool {
    let t = s.trim();
    t.len() == 10
        && t.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// A day typed as YYYY-MM-DD, from 1970 on, that the calendar has; `None` otherwise
/// ([`bad_day`] says why).
pub fn calendar_day(s: &str) -> Option<chrono::NaiveDate> {
    let t = s.trim();
    (shaped_as_day(t) && t >= FIRST_DAY)
        .then(|| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
        .flatten()
}

fn day_start(s: &str, days_after: u64) -> Result<i64, String> {
    use chrono::TimeZone;
    let date = calendar_day(s)
        .and_then(|d| d.checked_add_days(chrono::Days::new(days_after)))
        .ok_or_else(|| bad_day(s))?;
    // Where a clock change skips midnight, the day starts at the first hour that exists.
    (0..=3)
        .filter_map(|h| date.and_hms_opt(h, 0, 0))
        .find_map(|t| chrono::Local.from_local_datetime(&t).earliest())
        // East of UTC, 1970-01-01 starts before the clock's zero: nothing is older.
        .map(|t| t.timestamp_millis().max(0))
        .ok_or_else(|| format!("the day {s:?} has no start in this time zone"))
}

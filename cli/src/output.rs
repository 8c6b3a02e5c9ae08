//! How commands print: human text, or JSON with stable field names (`--json`), and
//! nothing but errors with `--quiet`.
//!
//! Every write returns an `io::Result` that commands pass up with `?`: a reader that goes
//! away (`duet export | head`) ends the command quietly in `main`, as a closed pipe is
//! not a failure. Text that a partner or a device wrote is made terminal-safe with
//! [`safe`] and [`safe_line`] before it is printed; `--json` keeps it exact.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use chrono::TimeZone;
use serde::Serialize;

/// Standard output could not be written (a full disk, a file it may not grow): what
/// the command did is done, and the person is told so, not that it failed to happen.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write to standard output, but what the command did is done (a change made is saved; `duet status` and `duet history` show it)"
)]
pub struct StdoutError(#[source] pub std::io::Error);

/// Global output settings.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// Print JSON.
    pub json: bool,
    /// Print nothing on success.
    pub quiet: bool,
}

impl Out {
    /// Prints a human line unless quiet. Control characters other than newlines are made
    /// visible here too, a last defence for text a caller did not pass through
    /// [`safe_line`].
    pub fn line(&self, s: impl AsRef<str>) -> Result<(), StdoutError> {
        if self.quiet {
            return Ok(());
        }
        data(s.as_ref())
    }

    /// Prints a warning on stderr (even when quiet: it is about the user's data).
    pub fn warn(&self, s: impl AsRef<str>) {
        note(&format!("warning: {}", s.as_ref()));
    }

    /// Prints a JSON value (pretty), streamed to stdout.
    pub fn json(&self, v: &impl Serialize) -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        // An I/O failure inside serde_json comes back as the io::Error it was, so that a
        // closed pipe is recognised as one.
        let written = serde_json::to_writer_pretty(&mut out, v)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        Ok(written.map_err(StdoutError)?)
    }
}

/// Prints a line on stdout even when quiet (what a command exists to print, such as an
/// invite code), made terminal-safe like [`Out::line`].
pub fn data(s: &str) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", safe(s)).map_err(StdoutError)
}

/// Set by `--quiet`: lines that are only notes ("note: …") are not printed then;
/// warnings about the person's data are.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--quiet` was given: notes stay unsaid (see [`note`]).
pub fn quiet_notes() {
    QUIET.swap(true, std::sync::atomic::Ordering::Relaxed);
}

/// Prints a line on stderr (notes and warnings), made terminal-safe. A failure to write
/// it is ignored: the command's outcome does not depend on a diagnostic being seen. A
/// note ("note: …") is left out under `--quiet`, which promises nothing but errors.
pub fn note(s: &str) {
    if s.starts_with("note:") && QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if JSON_NOTES.load(std::sync::atomic::Ordering::Relaxed) {
        let (kind, text) = match s.split_once(": ") {
            Some((k @ ("note" | "warning"), rest)) => (k, rest),
            _ => ("note", s),
        };
        let line = json_line(&serde_json::json!({ kind: text }));
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        return;
    }
    let _ = writeln!(std::io::stderr().lock(), "{}", safe(s));
}

/// Set by `--json`: every line on stderr is one JSON object (`{"note": …}`,
/// `{"warning": …}`, and a failure's `{"error": …}`), for a script that reads it.
static JSON_NOTES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--json` was given: notes and warnings are JSON lines (see [`note`]).
pub fn json_notes() {
    JSON_NOTES.swap(true, std::sync::atomic::Ordering::Relaxed);
}

/// Prints a failed command's error on stderr as one line of JSON (`--json`), for a
/// script that reads it: the message, the hint (or null) and the exit code.
pub fn json_error(message: &str, hint: Option<&str>, exit_code: u8) {
    let line = json_error_line(message, hint, exit_code);
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The line [`json_error`] prints.
fn json_error_line(message: &str, hint: Option<&str>, exit_code: u8) -> String {
    json_line(&serde_json::json!({ "error": message, "hint": hint, "exit_code": exit_code }))
}

/// `value` as one line of JSON. The values are exact; characters that could act on a
/// terminal are written as JSON escapes (outside its strings JSON holds none).
fn json_line(value: &impl Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut line = String::new();
    for c in text.chars() {
        if is_hazard(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(line, "\\u{u:04x}");
            }
        } else {
            line.push(c);
        }
    }
    line
}

/// Whether printing `c` as is could act on a terminal instead of showing a glyph: C0
/// controls, DEL, C1 controls (U+0080..U+009F, which some terminals read as ESC [ and
/// friends) and the bidirectional controls that can make a line read as something else.
fn is_hazard(c: char) -> bool {
    c.is_control() || crate::bidi::is_bidi_control(c)
}

/// Escapes every hazard in `s`, keeping newlines when `keep_lines`, and directional
/// marks in a text that holds a right-to-left letter (Hebrew and Arabic keyboards type
/// them; there they pull the text beside them no more than the letters do: as in pages,
/// `crate::bidi`).
fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let line_end = |c: char| keep_lines && c == '\n';
    // Most text holds no hazard: looked for right-to-left letters only when it does.
    if !s.chars().any(|c| is_hazard(c) && !line_end(c)) {
        return Cow::Borrowed(s);
    }
    let rtl = s.chars().any(crate::bidi::is_rtl_letter);
    let kept = |c: char| line_end(c) || (rtl && crate::bidi::is_mark(c));
    if !s.chars().any(|c| is_hazard(c) && !kept(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !is_hazard(c) || kept(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Text from a partner or a device, safe to print on a terminal: escape sequences,
/// other control characters and bidirectional overrides are shown as `\x1b`, `\u{9b}`,
/// `\u{202e}` (so a title cannot retitle the window, clear the screen or fake output).
/// Newlines are kept: for text printed as a block of its own (tabs are shown as `\t`,
/// as they would shift what follows).
pub fn safe(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Like [`safe`], for a field printed within one line: newlines are shown as `\n` too,
/// so the field cannot start a line that looks like duet's output.
pub fn safe_line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// The first 12 hex digits of a device key, as every list of devices shows it.
pub fn short_key(device: &str) -> &str {
    &device[..12.min(device.len())]
}

/// The widest a title is printed in a list, in terminal columns; `show` and `--json`
/// give it whole.
pub const LIST_TITLE_CHARS: usize = 60;

/// `s` cut to at most `max` terminal columns, ending in "…" when cut (never inside a
/// grapheme), for a list where one long field would push every other out of view.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    use unicode_segmentation::UnicodeSegmentation;
    use unicode_width::UnicodeWidthStr;
    if s.width() <= max {
        return Cow::Borrowed(s);
    }
    // Whole graphemes up to one column short of `max`, for the ellipsis.
    let mut used = 0;
    let mut keep = 0;
    for (i, g) in s.grapheme_indices(true) {
        used += g.width();
        if used > max.saturating_sub(1) {
            break;
        }
        keep = i + g.len();
    }
    Cow::Owned(format!("{}…", &s[..keep]))
}

/// `s` followed by spaces up to `width` terminal columns (`{:<N}` counts characters,
/// and a name in CJK or with combining marks would push the next columns out).
pub fn pad(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let fill = width.saturating_sub(s.width());
    format!("{s}{}", " ".repeat(fill))
}

/// The latest time shown as a date (the end of the year 9999); later ones, and times
/// before 1970, are an author's clock gone wrong (or a partner's crafted envelope), not
/// a date to print.
const LAST_SHOWN_MS: i64 = 253_402_300_799_999;

/// `YYYY-MM-DD HH:MM` in local time; "an impossible time" outside 1970 to 9999. A time
/// in the hour a zone repeats when it leaves daylight saving time carries its offset
/// ("2026-11-01 01:30 UTC-07:00"): the two 01:30s of that night are an hour apart.
pub fn when(ms: i64) -> String {
    let shown = local(ms, "%Y-%m-%d %H:%M");
    match in_repeated_hour(ms) {
        true => format!("{shown} {}", utc_offset(ms)),
        false => shown,
    }
}

/// Whether the local wall time at `ms` also names another moment (the hour repeated
/// when a zone sets its clocks back).
fn in_repeated_hour(ms: i64) -> bool {
    use chrono::offset::LocalResult;
    let Some(t) = chrono::Local.timestamp_millis_opt(ms).single() else {
        return false;
    };
    matches!(
        chrono::Local.from_local_datetime(&t.naive_local()),
        LocalResult::Ambiguous(..)
    )
}

/// The local zone's offsets from `from` to `to` (twice a day, at most twenty years),
/// each once, in order: a report over a change to or from daylight saving time names
/// both (it named the offset on the day it was made, an hour off for the rest).
pub fn utc_offsets(from: i64, to: i64) -> Vec<String> {
    const STEP_MS: i64 = 12 * 3_600_000;
    const MOST_STEPS: i64 = 2 * 366 * 20;
    let from = from.clamp(0, LAST_SHOWN_MS);
    let to = to.clamp(from, LAST_SHOWN_MS);
    let steps = ((to - from) / STEP_MS).min(MOST_STEPS);
    let mut offsets: Vec<String> = Vec::new();
    for at in (0..=steps).map(|i| from + i * STEP_MS).chain([to]) {
        let offset = utc_offset(at);
        if !offsets.contains(&offset) {
            offsets.push(offset);
        }
    }
    offsets
}

/// The local time zone's offset at `ms`, as "UTC+13:00" (what [`when`] and [`day`] read
/// in: two partners in two zones see one rating on two dates, and a report says which).
pub fn utc_offset(ms: i64) -> String {
    chrono::Local
        .timestamp_millis_opt(ms.clamp(0, LAST_SHOWN_MS))
        .single()
        .map(|t| format!("UTC{}", t.format("%:z")))
        .unwrap_or_else(|| "UTC".to_string())
}

/// `YYYY-MM-DD` in local time, the day [`when`] shows (one rating has one day in every
/// view); "an impossible time" outside 1970 to 9999.
pub fn day(ms: i64) -> String {
    local(ms, "%Y-%m-%d")
}

/// The local day of an RFC 3339 time as the JSON records carry it (as written, if it
/// does not parse).
pub fn day_of(rfc3339: &str) -> String {
    ms_of(rfc3339).map_or_else(|| rfc3339.get(..10).unwrap_or(rfc3339).to_string(), day)
}

/// An RFC 3339 time as the JSON records carry it, shown as [`when`] shows it (as
/// written, if it does not parse).
pub fn when_of(rfc3339: &str) -> String {
    ms_of(rfc3339).map_or_else(|| rfc3339.to_string(), when)
}

fn ms_of(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn local(ms: i64, format: &str) -> String {
    if !(0..=LAST_SHOWN_MS).contains(&ms) {
        return "an impossible time".to_string();
    }
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format(format).to_string())
        .unwrap_or_else(|| "an impossible time".to_string())
}

pub use duet_core::app::iso;

/// A person's display name from the people map, terminal-safe for one line.
pub fn name_of(people: &BTreeMap<String, String>, person: &str) -> String {
    safe_line(
        people
            .get(person)
            .map_or_else(|| duet_core::ids::short(person), String::as_str),
    )
    .into_owned()
}

/// The short form of an id read from a document (a partner chooses the keys), terminal-
/// safe.
pub fn short_id(id: &str) -> Cow<'_, str> {
    safe_line(duet_core::ids::short(id))
}

/// ANSI colour, on only when wanted: `--color always`, or `auto` on a terminal without
/// `NO_COLOR` set.
#[derive(Debug, Clone, Copy)]
pub struct Colour {
    /// Whether to emit escape codes.
    pub enabled: bool,
}

impl Colour {
    /// Decides from the flag, then as terminals expect (anstream): `NO_COLOR`,
    /// `CLICOLOR(_FORCE)`, `TERM=dumb`, and whether stdout is a terminal.
    pub fn decide(choice: ColorChoice) -> Colour {
        match choice {
            ColorChoice::Auto => anstream::ColorChoice::Auto,
            ColorChoice::Always => anstream::ColorChoice::AlwaysAnsi,
            ColorChoice::Never => anstream::ColorChoice::Never,
        }
        .write_global();
        let chosen = anstream::AutoStream::choice(&std::io::stdout());
        Colour {
            enabled: chosen != anstream::ColorChoice::Never,
        }
    }

    fn wrap(&self, style: anstyle::Style, s: &str) -> String {
        if self.enabled {
            format!("{style}{s}{style:#}")
        } else {
            s.to_string()
        }
    }

    /// Bold text.
    pub fn bold(&self, s: &str) -> String {
        self.wrap(anstyle::Style::new().bold(), s)
    }

    /// Dim text.
    pub fn dim(&self, s: &str) -> String {
        self.wrap(anstyle::Style::new().dimmed(), s)
    }

    /// A level coloured by direction: below expected, expected, above.
    pub fn level(&self, level: Option<i64>, s: &str) -> String {
        use anstyle::AnsiColor;
        let colour = match level {
            Some(l) if l < 0 => AnsiColor::Yellow,
            Some(l) if l > 0 => AnsiColor::Green,
            Some(_) => AnsiColor::Cyan,
            None => return s.to_string(),
        };
        self.wrap(anstyle::Style::new().fg_color(Some(colour.into())), s)
    }
}

/// The `--color` choices.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour on a terminal unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Writes `bytes` to `path` readable by the owner only (reports and exports hold the
/// couple's notes and reflections): through a new temporary file in the same directory,
/// renamed over `path`, so that a reader never sees half a report. Only a new file or a
/// regular one is written: a symlink at `path` is neither followed nor replaced (one
/// planted cannot redirect the report, and `/dev/stdout` or a device is never swapped
/// for a file), and `-` is not taken for standard output. None of duet's own files in the
/// device's `home` is replaced (an export named `duet.db` there replaced its store).
pub fn write_private(
    path: &std::path::Path,
    bytes: &[u8],
    home: &std::path::Path,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind, Write as _};
    // A signal meanwhile would leave the temporary file (the whole report) behind.
    let _held = crate::interrupt::hold();
    if path.as_os_str() == "-" {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "`-` is not written to standard output here (the file holds private notes); give a file name",
        ));
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "it is not a regular file (a symbolic link, a device, a pipe or a directory), which is never replaced; give the name of a new or regular file",
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let duets_own = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("duet."));
    if let (true, Ok(dir), Ok(home)) = (duets_own, dir.canonicalize(), home.canonicalize())
        && dir.starts_with(&home)
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "that name is one of duet's own files in this device's home (its store, a lock); \
             write it under another name or somewhere else",
        ));
    }
    // tempfile creates the file with mode 0600. Its error names the temporary file,
    // which the person never asked for: the folder is named instead.
    let in_words = |e: Error| {
        let why = match e.kind() {
            ErrorKind::NotFound => "that folder does not exist".to_string(),
            ErrorKind::PermissionDenied => "this user may not write in that folder".to_string(),
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
                "the disk is full (nothing was written; free some space, then run the command \
                 again)"
                    .to_string()
            }
            kind => kind.to_string(),
        };
        Error::new(
            e.kind(),
            format!("cannot write a file in {}: {why}", dir.display()),
        )
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(in_words)?;
    tmp.write_all(bytes).map_err(in_words)?;
    tmp.as_file().sync_all().map_err(in_words)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// An area in words ("emotional-support" is "Emotional support"), as the app and the
/// report name it.
pub fn area_name(area: &str) -> String {
    capitalised(&area.replace('-', " "))
}

/// `s` with its first letter capitalised (a sentence made of a lower-case phrase).
pub fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A GAS level as the command line shows it beside others: "+2", "+1", " 0", "-1", "-2"
/// (the expected outcome is 0, as `goal show`, `progress`, the report and the app say,
/// not "+0").
pub fn signed_level(level: impl Into<i64>) -> String {
    match level.into() {
        0 => " 0".to_string(),
        l => format!("{l:+}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{json_error_line, safe, safe_line, when};

    #[test]
    fn an_error_line_in_json_is_exact_and_holds_nothing_a_terminal_acts_on() {
        let message = "no goal \u{1b}[2J \u{202e}txt \u{85} \u{1F600} \"q\" \\";
        let line = json_error_line(message, None, 3);
        assert!(!line.chars().any(super::is_hazard), "{line:?}");
        #[derive(serde::Deserialize)]
        struct Line {
            error: String,
            hint: Option<String>,
            exit_code: u8,
        }
        let read: Line = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            (read.error.as_str(), read.hint, read.exit_code),
            (message, None, 3)
        );
    }

    /// A partner's crafted envelope time (or a clock gone wrong) is not printed as a
    /// number of milliseconds, nor as a date in the year 292,278,994.
    #[test]
    fn times_outside_1970_to_9999_are_said_impossible() {
        for ms in [i64::MAX, i64::MIN, -1, 253_402_300_800_000] {
            assert_eq!(when(ms), "an impossible time", "{ms}");
        }
        assert!(when(1_764_633_600_000).starts_with("2025-12-0"));
    }

    #[test]
    fn escape_sequences_and_c1_controls_are_shown_as_text() {
        let s = "a\x1b]0;t\x07b\x1b[2J\u{9b}c\u{7f}\u{202e}d";
        assert_eq!(
            safe_line(s),
            "a\\x1b]0;t\\x07b\\x1b[2J\\u{9b}c\\x7f\\u{202e}d"
        );
        assert!(!safe(s).chars().any(char::is_control));
    }

    #[test]
    fn a_directional_mark_stays_in_right_to_left_text_only() {
        assert_eq!(safe_line("שלום \u{200f}עולם"), "שלום \u{200f}עולם");
        assert_eq!(safe_line("\u{200f}محمد\u{200e}"), "\u{200f}محمد\u{200e}");
        assert_eq!(safe_line("Sam\u{200f}"), "Sam\\u{200f}");
        // An override is shown whatever the text around it.
        assert_eq!(safe_line("שלום\u{202e}1+"), "שלום\\u{202e}1+");
    }

    #[test]
    fn newlines_stay_only_in_blocks_and_tabs_never() {
        assert_eq!(safe("one\ntwo\tx\r"), "one\ntwo\\tx\\r");
        assert_eq!(safe_line("one\ntwo\tx"), "one\\ntwo\\tx");
    }

    #[test]
    fn long_fields_are_clipped_with_an_ellipsis() {
        use super::clip;
        assert_eq!(clip("short", 60), "short");
        assert_eq!(clip(&"é".repeat(60), 60), "é".repeat(60));
        let long = "é".repeat(61);
        let cut = clip(&long, 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with("é…"));
    }

    #[test]
    fn a_cut_keeps_whole_graphemes_and_counts_terminal_columns() {
        use super::{clip, pad};
        // A family emoji (joined by zero-width joiners), a flag, an accent typed as e +
        // combining mark: kept whole or left out, never split.
        let family = "👨\u{200d}👩\u{200d}👧";
        for (text, whole) in [
            (format!("{}{family}", "a".repeat(58)), family),
            (format!("{}e\u{301}xyz", "a".repeat(58)), "e\u{301}"),
            (format!("{}🇯🇵xyz", "a".repeat(58)), "🇯🇵"),
        ] {
            let cut = clip(&text, 60);
            let kept = cut.trim_start_matches('a').trim_end_matches('…');
            assert!(kept.is_empty() || kept == whole, "{cut:?}");
        }
        // CJK takes two columns each: 60 columns hold 29 and the ellipsis.
        let cjk = "山".repeat(40);
        let cut = clip(&cjk, 60);
        assert_eq!(cut.chars().count(), 30, "{cut}");
        assert_eq!(pad("山田", 6), "山田  ");
        assert_eq!(pad("Sam", 6), "Sam   ");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        let s = "Weekly check-in: café, 30 minutes ✓";
        assert!(matches!(safe_line(s), std::borrow::Cow::Borrowed(t) if t == s));
    }
}

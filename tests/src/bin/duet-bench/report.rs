//! Writes the run into docs/benchmarks.md, between two marker lines, so that the file
//! always holds the latest full run beside the command that produced it.

use std::path::{Path, PathBuf};

use crate::figures::{Figures, show};
use crate::targets::Outcome;

pub const BEGIN: &str = "<!-- duet-bench: begin (written by the harness, do not edit) -->";
pub const END: &str = "<!-- duet-bench: end -->";

/// docs/benchmarks.md of this checkout.
pub fn path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("benchmarks.md")
}

/// The generated section: the command, when and where, the targets, every figure.
pub fn section(
    command: &str,
    header: &str,
    figs: &Figures,
    outcomes: &[Outcome],
    (seconds, build_seconds): (f64, f64),
) -> String {
    let mut s = String::new();
    s.push_str(BEGIN);
    s.push_str("\n\n    ");
    s.push_str(command);
    s.push_str("\n\n");
    s.push_str(&format!(
        "{header}. The run took {:.1} minutes, of which {:.0} s building the relay benchmarks \
         and the samod peer while the largest store was prepared (after `cargo run` built \
         the harness itself).\n\n",
        seconds / 60.0,
        build_seconds
    ));
    s.push_str("| target | figures | ratio | bound | met? |\n| --- | --- | --: | --- | --- |\n");
    for o in outcomes {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            o.what,
            o.figure,
            show(o.ratio),
            o.bound,
            if o.met { "yes" } else { "**no**" }
        ));
    }
    s.push_str("\nEvery figure of the run (`bench: NAME VALUE UNIT`):\n\n");
    s.push_str("| name | value | unit |\n| --- | --: | --- |\n");
    for f in figs.all() {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            f.name,
            show(f.value),
            f.unit
        ));
    }
    s.push('\n');
    s.push_str(END);
    s
}

/// Replaces the section between the markers (or appends it) in `text`.
pub fn splice(text: &str, section: &str) -> String {
    match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &text[..b], &text[e + END.len()..])
        }
        _ => format!("{}\n\n{section}\n", text.trim_end()),
    }
}

/// Writes the section into docs/benchmarks.md.
pub fn write(section: &str) -> Result<PathBuf, String> {
    let p = path();
    let text =
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    std::fs::write(&p, splice(&text, section))
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    Ok(p)
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_generated_section() {
        let doc = format!("# B\n\nbefore\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let new = format!("{BEGIN}\nnew\n{END}");
        let out = splice(&doc, &new);
        assert_eq!(out, format!("# B\n\nbefore\n\n{new}\n\nafter\n"));
        assert!(splice("# B\n", &new).ends_with(&format!("{new}\n")));
    }
}

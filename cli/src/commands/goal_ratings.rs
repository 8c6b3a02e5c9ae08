//! `duet goal show`'s ratings: this person's and the partner's in the clear (a
//! correction marked), and the partner's blind ones, with when they open.

use std::collections::BTreeMap;

use duet_core::app::SealedRecord;
use duet_core::model::Rating;

use super::Ctx;
use crate::output::{name_of, safe_line, when};

/// The partner's blind ratings of the goal: when they open (rating opens them, or the
/// partner's next sync), or that they stay sealed (the partner is gone, or this device
/// is: `gone`).
pub(super) fn print_partner_seals(
    ctx: &Ctx,
    dev: &mut duet_core::device::Device,
    theirs: &[&SealedRecord],
    people: &BTreeMap<String, String>,
    gone: bool,
) -> anyhow::Result<()> {
    if theirs.is_empty() {
        return Ok(());
    }
    let opening: Vec<String> = dev.opening_seals()?.into_iter().map(|s| s.id).collect();
    let left = matches!(dev.partner()?, duet_core::app::Partner::Gone(_));
    for s in theirs {
        // Its time as the ratings above show theirs (and the app shows it).
        let at = crate::output::when_of(&s.at);
        let name = name_of(people, &s.rater);
        ctx.out.line(if gone {
            format!(
                "    {at}  {name} rated blind: {}",
                crate::advice::STAYS_SEALED
            )
        } else if left {
            format!(
                "    {at}  {name} rated blind and is no longer in the shared space: it stays sealed"
            )
        } else if opening.contains(&s.id) {
            format!("    {at}  {name} has rated blind: shown once {name}'s device syncs")
        } else {
            format!("    {at}  {name} has rated blind; rate to see it")
        })?;
    }
    Ok(())
}

/// The ratings, oldest first; `(sealed_too, own_sealed)`: whether sealed ratings follow
/// (the heading is printed for them too), and which of these are one's own blind ones.
pub(super) fn print_ratings(
    ctx: &Ctx,
    ratings: &[Rating],
    people: &BTreeMap<String, String>,
    (sealed_too, own_sealed, own_mark): (bool, &[&str], &str),
) -> Result<(), crate::output::StdoutError> {
    if ratings.is_empty() && !sealed_too {
        return Ok(());
    }
    ctx.out.line("  ratings:")?;
    for r in ratings {
        let level = r.level.to_string();
        // Replaced an earlier rating (which `history` keeps), marked as the export does.
        let corrected = r.corrects.as_ref().map_or("", |_| "  (corrected)");
        ctx.out.line(format!(
            "    {}  {} {:>2}{corrected}{}{}",
            when(r.at),
            crate::output::pad(&name_of(people, &r.rater), 10),
            level,
            r.note
                .as_deref()
                .map(|n| format!("  {}", safe_line(n)))
                .unwrap_or_default(),
            if own_sealed.contains(&r.id.as_str()) {
                own_mark
            } else {
                ""
            }
        ))?;
    }
    Ok(())
}

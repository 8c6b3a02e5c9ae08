//! What a typed value must be to be written: a text that shows something, a due date as
//! every reader takes it.

use super::DocError;

/// Whether a text shows nothing: only white space and invisible characters (zero-width
/// spaces and joiners, directional marks, the byte order mark, variation selectors, tag
/// characters). A title or a reflection of those would print as nothing, and a goal so
/// titled could be named by its id only.
pub fn blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || invisible(c))
}

fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// Checks a `YYYY-MM-DD` date, with a year of four digits as every reader takes it
/// (`model::valid::due`): chrono also reads a signed year of five digits or more
/// (`+10000-01-01`), which no reader takes (a goal holding it would be unreadable on
/// both devices), and a year of two (`27-1-31`, the year 27).
pub fn validate_date(s: &str) -> Result<String, DocError> {
    let s = s.trim();
    let year = s.split('-').next().unwrap_or_default();
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| DocError::BadDate(s.to_string()))
}

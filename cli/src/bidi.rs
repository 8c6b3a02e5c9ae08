//! Bidirectional controls in pages (the app's and the report's): shown, not obeyed. A
//! partner's title or name holding U+202E (right-to-left override) would otherwise
//! reverse what follows it on the page, Duet's own words and the other partner's levels
//! included ("+1" read as "1+"). Each such control in the page's text is written as
//! `\u{202e}`, as the command line shows it (`crate::output::safe`), and so is any other
//! control character (an escape or a bell has no place in a page's text).
//!
//! A directional mark (U+200E, U+200F, U+061C) is kept where the text around it (the
//! page's text between two tags) holds a right-to-left letter: Hebrew and Arabic
//! keyboards type them, and there a mark pulls the text beside it no more than the
//! letters themselves do. In a text of left-to-right letters only, a mark is shown.
//!
//! What a form sends back is left as it is, a `value` attribute and a textarea's
//! content: it must stay the stored text (an edit form compares it with what is stored
//! now). A browser confines what they hold to their own box.

pub use duet_core::resolve::is_bidi_control;

/// Whether `c` is a directional mark, invisible, which only sets the direction of the
/// text beside it.
pub fn is_mark(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Whether `c` is a letter of a right-to-left script (Hebrew, Arabic, Syriac, Thaana,
/// N'Ko and the presentation forms of Hebrew and Arabic).
pub fn is_rtl_letter(c: char) -> bool {
    matches!(
        c,
        '\u{0590}'..='\u{05ff}'
            | '\u{0600}'..='\u{06ff}'
            | '\u{0700}'..='\u{07ff}'
            | '\u{0860}'..='\u{08ff}'
            | '\u{fb1d}'..='\u{fdff}'
            | '\u{fe70}'..='\u{fefe}'
    ) && c != '\u{061c}'
}

/// Whether a page's text shows `c` as `\u{…}` rather than holding it, in a text that
/// holds a right-to-left letter (`rtl`) or not.
fn escaped(c: char, rtl: bool) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        || (is_bidi_control(c) && !(rtl && is_mark(c)))
}

/// `text` set apart from the page's words around it (`<bdi>`, its own direction). Right
/// to left, a name or title would otherwise draw the level, date or colour beside it
/// into its own run ("Sam: +1" read as "1+ :Sam" once Sam is a Hebrew name).
pub fn bdi(text: impl maud::Render) -> maud::Markup {
    maud::html! { bdi { (text) } }
}

/// `line` (Duet's words around people's) with each of `pieces` found in it set apart
/// ([`bdi`]): from the left, the longest piece found at each place first, and only as
/// whole words (a note "x" is not set apart inside "expected").
pub fn isolated_in(line: &str, pieces: &[&str]) -> maud::Markup {
    let mut pieces: Vec<&str> = pieces.iter().copied().filter(|p| !p.is_empty()).collect();
    pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let word = |c: char| c.is_alphanumeric();
    let whole = |i: usize, p: &str| {
        line[i..].starts_with(p)
            && !(line[..i].chars().next_back().is_some_and(word) && p.starts_with(word))
            && !(line[i + p.len()..].chars().next().is_some_and(word) && p.ends_with(word))
    };
    let mut parts: Vec<(bool, &str)> = Vec::new();
    let (mut plain, mut i) = (0, 0);
    while i < line.len() {
        match pieces.iter().find(|p| whole(i, p)) {
            Some(p) => {
                parts.push((false, &line[plain..i]));
                parts.push((true, &line[i..i + p.len()]));
                i += p.len();
                plain = i;
            }
            None => i += line[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    parts.push((false, &line[plain..]));
    maud::html! {
        @for (set_apart, text) in parts {
            @if set_apart { (bdi(text)) } @else { (text) }
        }
    }
}

/// `html` with every bidirectional control and control character in its text shown as
/// `\u{…}` (a directional mark kept in a right-to-left text). The page is Duet's own
/// markup (maud escapes `<` in text and attributes), so a `<` always opens a tag.
pub fn shown(html: String) -> String {
    if !html.chars().any(|c| escaped(c, false)) {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 16);
    let (mut in_tag, mut in_value, mut in_textarea) = (false, false, false);
    // Whether the text up to the next tag holds a right-to-left letter.
    let rtl_until_tag = |text: &str| {
        text.split('<')
            .next()
            .unwrap_or("")
            .chars()
            .any(is_rtl_letter)
    };
    let mut rtl = rtl_until_tag(&html);
    // Inside a tag: whether an attribute's quoted value is open, and whether it holds a
    // right-to-left letter (a chart's `aria-label` names an RTL title).
    let (mut in_attr, mut attr_rtl) = (false, false);
    let mut rest = html.as_str();
    while let Some(c) = rest.chars().next() {
        if in_textarea && rest.starts_with("</textarea") {
            in_textarea = false;
        }
        match c {
            '<' if !in_value => {
                in_tag = true;
                in_textarea |= rest.starts_with("<textarea");
            }
            '>' if !in_value => {
                in_tag = false;
                in_attr = false;
                rtl = rtl_until_tag(&rest[1..]);
            }
            // maud writes a quote inside an attribute as `&quot;`: this one ends it.
            '"' if in_value => in_value = false,
            '"' if in_tag => {
                in_attr = !in_attr;
                attr_rtl = in_attr
                    && rest[1..]
                        .split('"')
                        .next()
                        .unwrap_or("")
                        .chars()
                        .any(is_rtl_letter);
            }
            ' ' if in_tag && rest.starts_with(" value=\"") => {
                out.push_str(" value=\"");
                rest = &rest[" value=\"".len()..];
                in_value = true;
                continue;
            }
            _ => {}
        }
        let rtl_here = if in_tag { attr_rtl } else { rtl };
        if escaped(c, rtl_here) && !in_value && !in_textarea {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_titles_in_a_line_are_set_apart_longest_first() {
        let line = isolated_in(
            "Sam rated \"Sam's walk\" +1 for Sam",
            &["Sam", "Sam's walk", ""],
        );
        assert_eq!(
            line.into_string(),
            "<bdi>Sam</bdi> rated &quot;<bdi>Sam's walk</bdi>&quot; +1 for <bdi>Sam</bdi>"
        );
    }

    #[test]
    fn a_piece_is_set_apart_only_as_a_whole_word() {
        let line = isolated_in(
            "Sam rated it as expected, with the note \"x\"",
            &["x", "Sa"],
        );
        assert_eq!(
            line.into_string(),
            "Sam rated it as expected, with the note &quot;<bdi>x</bdi>&quot;"
        );
    }

    #[test]
    fn an_override_in_text_is_shown_and_one_in_a_form_field_is_kept() {
        let page = "<h1>evil\u{202e}txt.exe</h1><input value=\"a\u{202e}b\">\
                    <textarea>c\u{202e}d</textarea><p>e\u{2067}f</p>\
                    <svg aria-label=\"g\u{202e}h\"></svg><p>Sam\u{200f}: +1</p>"
            .to_string();
        assert_eq!(
            shown(page),
            "<h1>evil\\u{202e}txt.exe</h1><input value=\"a\u{202e}b\">\
             <textarea>c\u{202e}d</textarea><p>e\\u{2067}f</p>\
             <svg aria-label=\"g\\u{202e}h\"></svg><p>Sam\\u{200f}: +1</p>"
        );
    }

    #[test]
    fn a_mark_in_right_to_left_text_is_kept_and_control_characters_are_shown() {
        let page = "<p>שיחה שבועית\u{200f} (Sunday)</p><p>Sam\u{200f}: +1</p>\
                    <p>Ctrl \u{1b}[31mred\u{7}</p><pre>a\nb\tc</pre>"
            .to_string();
        assert_eq!(
            shown(page),
            "<p>שיחה שבועית\u{200f} (Sunday)</p><p>Sam\\u{200f}: +1</p>\
             <p>Ctrl \\u{1b}[31mred\\u{7}</p><pre>a\nb\tc</pre>"
        );
    }

    #[test]
    fn a_mark_in_a_right_to_left_attribute_is_kept_and_one_in_a_latin_one_is_shown() {
        let page = "<svg aria-label=\"Ratings of שיחה\u{200f}\" class=\"a\u{200f}\"></svg>\
                    <svg aria-label=\"Sam\u{200f}\"></svg>"
            .to_string();
        assert_eq!(
            shown(page),
            "<svg aria-label=\"Ratings of שיחה\u{200f}\" class=\"a\\u{200f}\"></svg>\
             <svg aria-label=\"Sam\\u{200f}\"></svg>"
        );
    }

    #[test]
    fn a_page_without_controls_is_left_as_it_is() {
        let page = "<p>שלום and مرحبا, café</p>".to_string();
        assert_eq!(shown(page.clone()), page);
    }
}

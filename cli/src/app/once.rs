//! Each rendered form counts once: a double click, a browser that sends a form again
//! on reload, or a second tab's copy of the same page would otherwise write twice (two
//! goals, two ratings, two undos). Every form carries a random `once` value
//! ([`super::pages::layout::csrf`]); a value being handled or handled with success is
//! not handled again. A form the page refused (an error page, not a redirect) may be
//! sent again as it was.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// How many handled forms are remembered (the oldest are forgotten first).
const REMEMBERED: usize = 4096;

/// The forms being handled and those handled, by their `once` value.
#[derive(Default)]
pub struct Sent {
    pending: HashSet<String>,
    done: HashSet<String>,
    order: VecDeque<String>,
}

/// Starts handling the form `once`; false when it was sent before (or is being handled).
pub fn start(sent: &Mutex<Sent>, once: &str) -> bool {
    let mut s = sent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if s.done.contains(once) || s.pending.contains(once) {
        return false;
    }
    s.pending.insert(once.to_string());
    true
}

/// Ends handling the form `once`: remembered when it was done, free to send again if
/// it was refused.
pub fn finish(sent: &Mutex<Sent>, once: &str, done: bool) {
    let mut s = sent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    s.pending.remove(once);
    if !done {
        return;
    }
    s.done.insert(once.to_string());
    s.order.push_back(once.to_string());
    while s.order.len() > REMEMBERED {
        if let Some(old) = s.order.pop_front() {
            s.done.remove(&old);
        }
    }
}

/// A fresh value for a form (empty if the system has no randomness: the form then
/// simply counts as often as it is sent).
pub fn fresh() -> String {
    let mut buf = [0u8; 16];
    match getrandom::fill(&mut buf) {
        Ok(()) => hex::encode(buf),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_handled_is_not_handled_again_but_a_refused_one_may_be() {
        let sent = Mutex::new(Sent::default());
        assert!(start(&sent, "a"));
        assert!(
            !start(&sent, "a"),
            "a double click while the first is handled"
        );
        finish(&sent, "a", true);
        assert!(!start(&sent, "a"), "a resend after it was done");
        assert!(start(&sent, "b"));
        finish(&sent, "b", false);
        assert!(start(&sent, "b"), "a refused form may be sent again");
    }
}

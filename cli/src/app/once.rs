//! Each rendered form counts once: a double click, a browser that sends a form again
//! on reload, or a second tab's copy of the same page would otherwise write twice (two
//! goals, two ratings, two undos, two invite codes). Every form carries a random `once`
//! value ([`super::pages::layout::csrf`]); a value handled with success is not handled
//! again but leads to the page the first copy led to (a copy sent while the first is
//! handled waits for it). A form the page refused (an error page, not a redirect) may
//! be sent again as it was; a copy sent again with other words in it is another form
//! ([`with_content`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

/// How many handled forms are remembered (the oldest are forgotten first).
const REMEMBERED: usize = 4096;

/// The forms being handled and those handled (with the page each led to), by their
/// `once` value.
#[derive(Default)]
pub struct Sent {
    pending: HashSet<String>,
    done: HashMap<String, String>,
    order: VecDeque<String>,
}

/// What is known of a form's `once` value.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not sent before (now being handled).
    New,
    /// Being handled by an earlier request.
    Pending,
    /// Handled with success: the page it led to.
    Done(String),
}

/// Starts handling the form `once`, unless it was sent before (or is being handled).
pub fn start(sent: &Mutex<Sent>, once: &str) -> Seen {
    let mut s = sent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(to) = s.done.get(once) {
        return Seen::Done(to.clone());
    }
    if s.pending.contains(once) {
        return Seen::Pending;
    }
    s.pending.insert(once.to_string());
    Seen::New
}

/// Ends handling the form `once`: remembered with the page it led to when it was done,
/// free to send again if it was refused (`None`).
pub fn finish(sent: &Mutex<Sent>, once: &str, led_to: Option<String>) {
    let mut s = sent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    s.pending.remove(once);
    let Some(to) = led_to else {
        return;
    };
    s.done.insert(once.to_string(), to);
    s.order.push_back(once.to_string());
    while s.order.len() > REMEMBERED {
        if let Some(old) = s.order.pop_front() {
            s.done.remove(&old);
        }
    }
}

/// A second copy of a form (a double click) waits for the first to be handled, so that
/// it leads to the same page (the invite code the first made, say); `New` when the first
/// was refused (this copy is then handled), `Pending` if the first is still not done
/// after a minute.
pub async fn after_first(sent: &Mutex<Sent>, once: &str) -> Seen {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = start(sent, once);
        if seen != Seen::Pending || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The key a form counts once under: its `once` value and what it holds (a page sent
/// again unchanged is the same form; sent again with other words, another one).
pub fn with_content(once: &str, body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("{once}:{:016x}", h.finish())
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
        assert_eq!(start(&sent, "a"), Seen::New);
        assert_eq!(
            start(&sent, "a"),
            Seen::Pending,
            "a double click while the first is handled"
        );
        finish(&sent, "a", Some("/devices?shown=1".into()));
        assert_eq!(
            start(&sent, "a"),
            Seen::Done("/devices?shown=1".into()),
            "a resend after it was done leads where the first did"
        );
        assert_eq!(start(&sent, "b"), Seen::New);
        finish(&sent, "b", None);
        assert_eq!(
            start(&sent, "b"),
            Seen::New,
            "a refused form may be sent again"
        );
    }
}

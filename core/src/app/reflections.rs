//! Reflections as a conversation: listing them with their replies, answering one, and
//! editing or withdrawing one's own.

use serde::Serialize;

use super::records::iso;
use crate::advice::NextStep;
use crate::device::{Device, DeviceError};
use crate::ids::new_id;
use crate::model::Reflection;
use crate::readmodel::View;
use crate::store::SpaceKind;

/// Which reflections to list.
#[derive(Debug, Clone, Default)]
pub struct ReflectionQuery {
    /// Only those about this goal (id prefix or title).
    pub goal: Option<String>,
    /// The private ones (this person's devices only) instead of the shared ones.
    pub private: bool,
}

/// One reflection as lists show it, with its replies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReflectionItem {
    /// Reflection id.
    pub id: String,
    /// Person id of the author.
    pub author: String,
    /// The author's name.
    pub author_name: String,
    /// When it was written (RFC 3339 UTC).
    pub at: String,
    /// When its author last edited it.
    pub edited_at: Option<String>,
    /// Goal id it is about.
    pub goal: Option<String>,
    /// That goal's title.
    pub goal_title: Option<String>,
    /// The prompt it answers.
    pub prompt: Option<String>,
    /// The text.
    pub text: String,
    /// Whether it is private (the personal space: only this person's devices).
    pub private: bool,
    /// The replies, oldest first (a reply to a reply is listed under the first).
    pub replies: Vec<ReflectionItem>,
    /// It is a reply whose reflection was withdrawn (it stands on its own now).
    pub answers_withdrawn: bool,
    /// Dated more than [`crate::progress::AHEAD_MS`] after this device's clock (written
    /// on a device whose clock was wrong), as the history marks it.
    pub dated_ahead: bool,
}

impl Device {
    /// The standing reflections, shared or private, each with its replies, oldest first.
    pub fn reflections(&mut self, q: &ReflectionQuery) -> Result<Vec<ReflectionItem>, DeviceError> {
        let shared = self.shown_view(SpaceKind::Shared)?;
        let goal = q
            .goal
            .as_deref()
            .map(|g| self.resolve_goal(g))
            .transpose()?;
        let view = if q.private {
            self.shown_view(SpaceKind::Personal)?
        } else {
            std::sync::Arc::clone(&shared)
        };
        Ok(threads(&view, &shared, q.private, self.now())
            .into_iter()
            .filter(|t| goal.is_none() || t.goal == goal)
            .collect())
    }

    /// The text of each standing shared reflection, by id (for `history --full`).
    pub fn reflection_texts(
        &mut self,
    ) -> Result<std::collections::BTreeMap<String, String>, DeviceError> {
        Ok(self
            .view(SpaceKind::Shared)?
            .reflections
            .into_iter()
            .map(|r| (r.id, r.text.as_str().to_string()))
            .collect())
    }

    /// Answers a shared reflection; returns the reply's id.
    pub fn reply(&mut self, to: &str, text: &str) -> Result<String, DeviceError> {
        let now = self.now();
        let target = self.reply_target(to)?;
        let reply = Reflection {
            id: new_id(),
            author: self.me.person_id.to_string(),
            at: now,
            goal: target.goal.clone(),
            prompt: None,
            text: autosurgeon::Text::with_value(text.trim()),
            reply_to: Some(target.id.clone()),
            edited_at: None,
            withdrawn_at: None,
        };
        let entities = [crate::doc::New::Reflection(&reply)];
        self.put_new(
            SpaceKind::Shared,
            &entities,
            crate::doc::REFLECT_MESSAGE,
            now,
        )?;
        Ok(reply.id)
    }

    /// The reflection a reply to `to` answers (`last`: the partner's newest): the root
    /// of its thread, since threads are flat.
    fn reply_target(&mut self, to: &str) -> Result<Reflection, DeviceError> {
        let view = self.view(SpaceKind::Shared)?;
        let me = self.me.person_id.to_string();
        let now = self.now();
        let newest = |r: &&Reflection| (super::corrections::undo_rank(r.at, now), r.id.clone());
        let target = if to.trim() == LAST {
            // The partner's newest (never one's own: "last" answers the partner); one
            // dated ahead by a clock gone wrong is not taken for the newest.
            view.reflections
                .iter()
                .filter(|r| r.author != me)
                .max_by_key(newest)
        } else {
            find(&view, to)
        };
        // Withdrawn since the page or the list was read: said as such, by no id.
        let withdrawn = target.is_none()
            && to.trim() != LAST
            && find(&self.raw_view(SpaceKind::Shared)?, to)
                .is_some_and(|r| r.withdrawn_at.is_some());
        let target = target.ok_or_else(|| {
            if withdrawn {
                DeviceError::ReflectionThen(
                    "its author has withdrawn that reflection, so it takes no reply; your \
                     words can be a reflection of their own"
                        .to_string(),
                    NextStep::WriteReflection,
                )
            } else if to.trim() == LAST && view.reflections.is_empty() {
                DeviceError::ReflectionThen(
                    "there is no shared reflection to answer yet".to_string(),
                    NextStep::WriteReflection,
                )
            } else if to.trim() == LAST {
                DeviceError::ReflectionThen(
                    "your partner has written no shared reflection yet (`last` answers \
                     theirs); to add to one of yours, reply to its id"
                        .to_string(),
                    NextStep::ListReflections,
                )
            } else {
                DeviceError::ReflectionThen(
                    format!("no shared reflection matches {:?}", as_typed(to)),
                    NextStep::ListReflections,
                )
            }
        })?;
        // Threads are flat: an answer to a reply joins its thread; one whose reflection
        // was withdrawn has no thread to join.
        let target = match target.reply_to.as_deref() {
            None => target,
            Some(root) => view
                .reflections
                .iter()
                .find(|r| r.id == root)
                .ok_or_else(|| {
                    DeviceError::ReflectionThen(
                        "that reply answers a reflection its author has withdrawn, so it takes no \
                     reply of its own; your words can be a reflection of their own"
                            .to_string(),
                        NextStep::WriteReflection,
                    )
                })?,
        };
        Ok(target.clone())
    }

    /// Replaces the text of one of this person's reflections: `query` is an id prefix
    /// (shared or private) or [`LAST`], the newest shared one (with `private`, the
    /// newest private one).
    pub fn edit_reflection(
        &mut self,
        query: &str,
        private: bool,
        text: &str,
    ) -> Result<OwnReflection, DeviceError> {
        // From choosing the reflection (`last`) to writing: two processes would
        // otherwise both take the same one.
        let _lock = self.store.write_lock()?;
        let (kind, rid, reply) = self.own_reflection(query, private)?;
        let now = self.now();
        self.edit(kind, |doc, _| {
            let c = doc.edit_reflection(&rid, text, now)?;
            Ok(((), c.into_iter().collect()))
        })?;
        Ok(OwnReflection::new(kind, rid, reply))
    }

    /// Withdraws one of this person's reflections (`query` as for
    /// [`Device::edit_reflection`]): its text leaves every view, the report and the
    /// export; the history says it was withdrawn.
    pub fn withdraw_reflection(
        &mut self,
        query: &str,
        private: bool,
    ) -> Result<OwnReflection, DeviceError> {
        self.withdraw_reflection_by(query, private, false)
    }

    /// [`Device::withdraw_reflection`], by `undo` or asked for.
    pub(crate) fn withdraw_reflection_by(
        &mut self,
        query: &str,
        private: bool,
        by_undo: bool,
    ) -> Result<OwnReflection, DeviceError> {
        // From choosing the reflection (`last`) to writing: two processes would
        // otherwise both take the same one.
        let _lock = self.store.write_lock()?;
        let (kind, rid, reply) = self.own_reflection(query, private)?;
        let now = self.now();
        self.edit(kind, |doc, _| {
            let c = doc.withdraw_reflection(&rid, by_undo, now)?;
            Ok(((), c.into_iter().collect()))
        })?;
        Ok(OwnReflection::new(kind, rid, reply))
    }

    /// The space and id of a standing reflection of this person's, shared or private,
    /// and whether it is a reply.
    fn own_reflection(
        &mut self,
        query: &str,
        private: bool,
    ) -> Result<(SpaceKind, String, bool), DeviceError> {
        let me = self.me.person_id.to_string();
        if query.trim() == LAST {
            // Never the other space's: `last` of a shared edit overwriting a private
            // note (or the reverse) would change what the person did not mean to.
            let kind = if private {
                SpaceKind::Personal
            } else {
                SpaceKind::Shared
            };
            let view = self.view(kind)?;
            let now = self.now();
            return view
                .reflections
                .into_iter()
                .filter(|r| r.author == me)
                // As `undo` ranks: one dated ahead by a clock gone wrong is not the newest.
                .max_by_key(|r| (super::corrections::undo_rank(r.at, now), r.id.clone()))
                .map(|r| (kind, r.id, r.reply_to.is_some()))
                .ok_or_else(|| {
                    DeviceError::Reflection(format!(
                        "you have no {} reflection standing (none written yet, or every one withdrawn){}",
                        if private { "private" } else { "shared" },
                        if private {
                            ""
                        } else {
                            " (add --private for your newest private one)"
                        }
                    ))
                });
        }
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            let view = self.view(kind)?;
            if let Some(r) = find(&view, query) {
                if r.author != me {
                    return Err(DeviceError::ReflectionThen(
                        format!(
                            "reflection {} was written by your partner; only its author can change it",
                            crate::ids::short(&r.id)
                        ),
                        NextStep::ReplyInstead {
                            reflection: r.id.clone(),
                        },
                    ));
                }
                return Ok((kind, r.id.clone(), r.reply_to.is_some()));
            }
        }
        // Withdrawn meanwhile (another window, another device): said so, by its words.
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            let raw = self.raw_view(kind)?;
            if let Some(r) = find(&raw, query)
                && r.author == me
                && r.withdrawn_at.is_some()
            {
                return Err(DeviceError::Reflection(format!(
                    "your reflection {} was withdrawn already; nothing more can change it",
                    crate::ids::short(&r.id)
                )));
            }
        }
        Err(DeviceError::ReflectionThen(
            format!("no reflection of yours matches {query:?}"),
            NextStep::ListReflections,
        ))
    }
}

/// What names the newest reflection instead of an id: the partner's newest for a
/// reply, one's own newest for an edit or a withdrawal.
pub const LAST: &str = "last";

/// One of this person's reflections that was edited or withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnReflection {
    /// Its id.
    pub id: String,
    /// Whether it is a private one (the personal space).
    pub private: bool,
    /// Whether it is a reply to another reflection.
    pub reply: bool,
}

impl OwnReflection {
    fn new(kind: SpaceKind, id: String, reply: bool) -> Self {
        OwnReflection {
            id,
            private: kind == SpaceKind::Personal,
            reply,
        }
    }
}

/// The one standing reflection whose id starts with `query` (none when ambiguous).
fn find<'v>(view: &'v View, query: &str) -> Option<&'v Reflection> {
    let q = query.trim().to_ascii_lowercase();
    if q.is_empty() {
        return None;
    }
    let mut hits = view.reflections.iter().filter(|r| r.id.starts_with(&q));
    let first = hits.next()?;
    hits.next().is_none().then_some(first)
}

/// The reflections of `view` as threads: each that answers none (or one no longer
/// standing) with its replies under it. Names and titles come from the shared space.
/// `now`: this device's clock, against which a date ahead is marked.
pub(crate) fn threads<'v>(
    view: &'v View,
    shared: &View,
    private: bool,
    now: i64,
) -> Vec<ReflectionItem> {
    let names = crate::names::shown(&shared.people);
    let item = |r: &Reflection| ReflectionItem {
        id: r.id.clone(),
        author: r.author.clone(),
        author_name: names
            .get(&r.author)
            .map_or_else(|| crate::ids::short(&r.author).to_string(), Clone::clone),
        at: iso(r.at),
        edited_at: r.edited_at.map(iso),
        goal: r.goal.clone(),
        goal_title: r
            .goal
            .as_deref()
            .and_then(|g| shared.goal(g))
            .map(|g| g.title.as_str().to_string()),
        prompt: r.prompt.clone(),
        text: r.text.as_str().to_string(),
        private,
        replies: Vec::new(),
        answers_withdrawn: false,
        dated_ahead: crate::progress::dated_ahead(r.at, now),
    };
    let roots = crate::rituals::thread_roots(
        view.reflections
            .iter()
            .map(|r| (r.id.as_str(), r.reply_to.as_deref())),
    );
    let root_of = |r: &'v Reflection| roots.get(r.id.as_str()).copied().unwrap_or(&r.id);
    let mut out: Vec<ReflectionItem> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for r in view.reflections.iter().filter(|r| root_of(r) == r.id) {
        at.insert(&r.id, out.len());
        out.push(ReflectionItem {
            answers_withdrawn: r.reply_to.is_some(),
            ..item(r)
        });
    }
    for r in view.reflections.iter().filter(|r| root_of(r) != r.id) {
        if let Some(&i) = at.get(root_of(r)) {
            out[i].replies.push(item(r));
        }
    }
    out
}

/// A reflection query as an error repeats it: an id the app sent whole is cut to the
/// eight characters lists show.
fn as_typed(query: &str) -> &str {
    let q = query.trim();
    match q.len() > 8 && q.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => crate::ids::short(q),
        false => q,
    }
}

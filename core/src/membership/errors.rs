//! Why an event is not admissible: the one error type of the membership rules, shared by
//! the relay (which maps it to protocol errors) and every client.

use crate::event::EventError;

/// Why an event is not admissible at this point of the space's history.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AdmitError {
    /// The payload is malformed.
    #[error(transparent)]
    Event(#[from] EventError),
    /// An event for a space that has no genesis yet.
    #[error("no such space (it has no genesis event)")]
    NoSuchSpace,
    /// A second genesis.
    #[error("the space already exists")]
    SpaceExists,
    /// The event belongs to another space.
    #[error("event is for another space")]
    WrongSpace,
    /// The author is not (or no longer) a member.
    #[error("the author is not a member of this space")]
    NotMember,
    /// The device was removed from the space.
    #[error("the author was removed from this space")]
    Removed,
    /// Join without a known invite.
    #[error("unknown invite")]
    UnknownInvite,
    /// Someone else's device tries to join a personal space.
    #[error("only the owner's devices may join a personal space")]
    NotOwner,
    /// Join with a spent invite.
    #[error("this invite was already used")]
    InviteUsed,
    /// Join after the invite expired.
    #[error("this invite has expired")]
    InviteExpired,
    /// The invite key's signature in a join does not verify.
    #[error("the invite signature does not verify")]
    BadInviteSignature,
    /// A device that is already a member tries to join again.
    #[error("the device is already a member")]
    AlreadyMember,
    /// Removing a device that is not a member.
    #[error("the device to remove is not a member")]
    NotAMemberToRemove,
    /// A removal or rotation names an epoch other than the next one (a concurrent
    /// removal won, or the epoch was made up).
    #[error("wrong key epoch: the next epoch is {expected}, the event names {got}")]
    StaleEpoch {
        /// The next epoch.
        expected: u32,
        /// The event's.
        got: u32,
    },
    /// A removal does not hand the new key to exactly the remaining members.
    #[error("the new space key must be wrapped for exactly the remaining member devices")]
    BadRecipients,
    /// A changes event under an epoch that does not exist yet.
    #[error("the event is encrypted under key epoch {got}, but the space is at epoch {current}")]
    FutureEpoch {
        /// Current epoch.
        current: u32,
        /// The event's.
        got: u32,
    },
    /// The invite key was already authorised.
    #[error("this invite key already exists")]
    DuplicateInvite,
    /// A device code that names a person other than its issuer's.
    #[error("a device code may only be issued by a device of the person it names")]
    InviteForAnother,
    /// A join whose person the invite does not admit (another person than the device
    /// code names, or an existing person through a partner invite).
    #[error(
        "the join claims a person this invite does not admit (a partner invite admits a new person, a device code only its issuer's person)"
    )]
    WrongPerson,
    /// A genesis or join whose X25519 key is of low order: keys wrapped to it would be
    /// readable by anyone.
    #[error("the device's X25519 key is of low order (a key wrapped to it would be public)")]
    WeakKey,
    /// A join that would add a third person to a shared space (or a new partner after
    /// the first one joined).
    #[error(
        "a shared space holds two persons; it cannot admit a third (its partner invites end once the partner has joined)"
    )]
    SpaceFull,
    /// A join past the devices a person may ever join to a space
    /// ([`super::MAX_DEVICES_PER_PERSON`]).
    #[error("this person has joined {0} devices to the space, as many as a person may ever join")]
    TooManyDevices(usize),
    /// An invite past the invites a person may ever make in a space
    /// ([`super::MAX_INVITES_PER_PERSON`]).
    #[error(
        "this person's devices have made {0} invites in the space, as many as a person may ever make"
    )]
    TooManyInvites(usize),
    /// Join with a revoked invite.
    #[error(
        "this invite was withdrawn (revoked, or the device that made it is no longer a member)"
    )]
    InviteRevoked,
    /// A revocation of an invite that is no longer open (revoked or used meanwhile): a
    /// race lost to another device, answered like a stale removal.
    #[error("this invite is no longer open (it was revoked or used meanwhile)")]
    InviteClosed,
    /// A leave from a personal space (its owner's space, nobody else's to stay in).
    #[error("a personal space cannot be left; only a shared space can")]
    LeavePersonal,
    /// seq is not last + 1.
    #[error("sequence gap: expected seq {expected}, got {got}")]
    Gap {
        /// Next seq the author should use.
        expected: u64,
        /// seq the event carries.
        got: u64,
    },
    /// seq already used by another event of the author.
    #[error("fork: the author already has an event with seq {0}")]
    Fork(u64),
    /// prev is not the hash of the author's previous event.
    #[error("chain broken: prev does not match the author's previous event")]
    BrokenChain,
}

//! Splitting a push body into its events with work and memory bounded by the body.
//!
//! One pass over the framing (`u32 big-endian length ‖ event`, repeated) keeps only
//! slices of the body. A frame that cannot hold an event (shorter than the smallest
//! event, longer than the largest, or running past the body) is refused: the answer
//! names the first bad frame and counts the frames read and the bad ones, so it stays
//! a few hundred bytes whatever the body holds, never a list as long as the body.

use duet_core::event::{Event, EventError, HEADER_LEN, MAX_EVENT_BYTES, SIG_LEN};
use duet_core::protocol::MAX_BODY_BYTES;

/// A batch is decoded on several threads only from this many events (below it, the
/// threads would cost more than the signatures they share out).
const PARALLEL_FROM: usize = 32;

/// The smallest event: a header and a signature around an empty payload.
pub const MIN_EVENT_BYTES: usize = HEADER_LEN + SIG_LEN;

/// Most frames a push body may hold. Every frame is a 4-byte length and at least the
/// smallest event, so a body within the size limit never holds more: this adds no rule
/// for clients, it bounds what the relay keeps per body.
pub const MAX_FRAMES: usize = MAX_BODY_BYTES / (4 + MIN_EVENT_BYTES);

/// The first thing wrong with a push body's framing. Frames are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No frame at all.
    #[error("the body is empty")]
    Empty,
    /// Fewer than 4 bytes left where a length was expected.
    #[error("frame {index} (at byte {offset}) has a truncated length prefix")]
    TruncatedPrefix {
        /// The frame's number.
        index: usize,
        /// Where it starts in the body.
        offset: usize,
    },
    /// The length runs past the end of the body.
    #[error("frame {index} (at byte {offset}) announces {len} bytes but only {left} follow")]
    Overrun {
        /// The frame's number.
        index: usize,
        /// Where it starts in the body.
        offset: usize,
        /// The announced length.
        len: usize,
        /// The bytes left after the prefix.
        left: usize,
    },
    /// Too short to be an event.
    #[error(
        "frame {index} (at byte {offset}) is {len} bytes long, shorter than the smallest \
         event ({MIN_EVENT_BYTES} bytes)"
    )]
    TooShort {
        /// The frame's number.
        index: usize,
        /// Where it starts in the body.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// Too long to be an event.
    #[error(
        "frame {index} (at byte {offset}) is {len} bytes long, longer than the largest \
         event ({MAX_EVENT_BYTES} bytes)"
    )]
    TooLong {
        /// The frame's number.
        index: usize,
        /// Where it starts in the body.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// More frames than any valid body holds.
    #[error("the body holds more than {MAX_FRAMES} frames")]
    TooManyFrames,
}

/// A refused body: its first error, the frames read and how many of them were bad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{first}; {bad} of the {frames} frames read are malformed")]
pub struct BadBody {
    /// The first error.
    pub first: FrameError,
    /// Frames read (up to where the framing could no longer be followed).
    pub frames: usize,
    /// Frames that were wrong.
    pub bad: usize,
}

/// The events of a push body, as slices of it, in order.
pub fn split(body: &[u8]) -> Result<Vec<&[u8]>, BadBody> {
    let mut out = Vec::new();
    let mut first: Option<FrameError> = None;
    let (mut frames, mut bad, mut at) = (0usize, 0usize, 0usize);
    while at < body.len() {
        let (index, offset) = (frames + 1, at);
        frames += 1;
        let Some(prefix) = body.get(at..at + 4) else {
            first.get_or_insert(FrameError::TruncatedPrefix { index, offset });
            bad += 1;
            break;
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let left = body.len() - at - 4;
        let Some(event) = body.get(at + 4..).and_then(|rest| rest.get(..len)) else {
            // Longer than any event is what is wrong with it, whatever follows (413).
            first.get_or_insert(if len > MAX_EVENT_BYTES {
                FrameError::TooLong { index, offset, len }
            } else {
                FrameError::Overrun {
                    index,
                    offset,
                    len,
                    left,
                }
            });
            bad += 1;
            break;
        };
        let wrong = if len < MIN_EVENT_BYTES {
            Some(FrameError::TooShort { index, offset, len })
        } else if len > MAX_EVENT_BYTES {
            Some(FrameError::TooLong { index, offset, len })
        } else if out.len() >= MAX_FRAMES {
            Some(FrameError::TooManyFrames)
        } else {
            None
        };
        match wrong {
            Some(e) => {
                first.get_or_insert(e);
                bad += 1;
            }
            // Past the first error nothing more is kept: only the count goes on.
            None if first.is_none() => out.push(event),
            None => {}
        }
        at += 4 + len;
    }
    let first = match first {
        Some(e) => Some(e),
        None if out.is_empty() => Some(FrameError::Empty),
        None => None,
    };
    match first {
        Some(first) => Err(BadBody { first, frames, bad }),
        None => Ok(out),
    }
}

/// Decodes the events of a batch (verifying each signature), in order, on up to
/// `threads` cores for a large batch. On failure: the index of the first undecodable
/// event and why; the events after it in its share are never examined.
///
/// A frame repeated in the batch is verified once: the protocol answers a repeat as a
/// duplicate, and without this a stranger's one signed event, repeated to fill a body
/// (about 96,000 times), bought as many signature checks (seconds of both cores) for
/// the price of one signature.
pub fn decode_all(frames: &[&[u8]], threads: usize) -> Result<Vec<Event>, (usize, EventError)> {
    decode_all_with(frames, threads, &Event::decode)
}

/// [`decode_all`] with the decoding of one event given (tests count the calls).
fn decode_all_with(
    frames: &[&[u8]],
    threads: usize,
    decode: &(dyn Fn(Vec<u8>) -> Result<Event, EventError> + Sync),
) -> Result<Vec<Event>, (usize, EventError)> {
    // Each distinct frame with its first place in the batch; `first[i]` is the
    // distinct frame that frame i repeats (or is). Frames are looked up by their last
    // 64 bytes (an event's signature: cheap to hash whatever the event's size) and
    // compared whole; a frame whose tail matches another's but not its bytes is kept
    // apart (it is verified, and fails).
    let mut seen: std::collections::HashMap<&[u8], usize> =
        std::collections::HashMap::with_capacity(frames.len());
    let mut distinct: Vec<(usize, &[u8])> = Vec::new();
    let mut first = Vec::with_capacity(frames.len());
    for (i, &raw) in frames.iter().enumerate() {
        let tail = &raw[raw.len().saturating_sub(SIG_LEN)..];
        match seen.get(tail) {
            Some(&d) if distinct[d].1 == raw => first.push(d),
            Some(_) => {
                distinct.push((i, raw));
                first.push(distinct.len() - 1);
            }
            None => {
                seen.insert(tail, distinct.len());
                distinct.push((i, raw));
                first.push(distinct.len() - 1);
            }
        }
    }
    drop(seen);
    let decoded = decode_distinct(&distinct, threads, decode)?;
    // Each decoded event moves to its last place in the batch and is copied only for
    // the places before it: a batch without repeats holds each event once (a copy of
    // every event was more than the four times its body that a push is counted at,
    // for a body of many small events).
    let mut uses = vec![0usize; decoded.len()];
    for &d in &first {
        uses[d] += 1;
    }
    let mut slots: Vec<Option<Event>> = decoded.into_iter().map(Some).collect();
    let mut events = Vec::with_capacity(first.len());
    for &d in &first {
        uses[d] -= 1;
        let event = if uses[d] == 0 {
            slots[d].take()
        } else {
            slots[d].clone()
        };
        events.extend(event);
    }
    Ok(events)
}

/// Decodes the distinct frames (index in the batch, bytes) in order, on up to `threads`
/// cores; on failure, the batch index of the first undecodable one.
fn decode_distinct(
    distinct: &[(usize, &[u8])],
    threads: usize,
    decode: &(dyn Fn(Vec<u8>) -> Result<Event, EventError> + Sync),
) -> Result<Vec<Event>, (usize, EventError)> {
    let frames = distinct;
    let threads = threads.clamp(1, frames.len().div_ceil(PARALLEL_FROM).max(1));
    let decode_from = |share: &[(usize, &[u8])]| {
        share
            .iter()
            .map(|(at, raw)| decode(raw.to_vec()).map_err(|e| (*at, e)))
            .collect::<Result<Vec<Event>, _>>()
    };
    if threads == 1 {
        return decode_from(frames);
    }
    let size = frames.len().div_ceil(threads);
    let shares: Vec<Result<Vec<Event>, _>> = std::thread::scope(|s| {
        // This thread takes the first share; scoped threads the others.
        let others: Vec<_> = frames
            .chunks(size)
            .skip(1)
            .map(|share| s.spawn(move || decode_from(share)))
            .collect();
        let first = decode_from(frames.chunks(size).next().unwrap_or(&[]));
        std::iter::once(first)
            .chain(others.into_iter().map(|t| match t.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }))
            .collect()
    });
    // Shares in order: the first error met is the batch's first undecodable event.
    let mut events = Vec::with_capacity(frames.len());
    for share in shares {
        events.extend(share?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_core::protocol::encode_batch;

    #[test]
    fn a_batch_without_repeats_holds_each_decoded_event_once() {
        let space = duet_core::event::SpaceId::generate();
        let key = duet_core::crypto::SpaceKey::generate();
        let mut dev = duet_testkit::ChainSigner::new("Alex");
        let raw: Vec<Vec<u8>> = (0..3u8)
            .map(|i| dev.changes(space, &key, &[i]).bytes().to_vec())
            .collect();
        // The second frame repeats the first: it is decoded once and copied once.
        let frames: Vec<&[u8]> = vec![&raw[0], &raw[0], &raw[1], &raw[2]];
        let made = std::sync::Mutex::new(Vec::new());
        let decode = |bytes: Vec<u8>| {
            let event = Event::decode(bytes)?;
            made.lock()
                .expect("lock")
                .push(event.bytes().as_ptr() as usize);
            Ok(event)
        };
        let events = decode_all_with(&frames, 1, &decode).expect("all decode");
        let made = made.into_inner().expect("lock");
        assert_eq!(made.len(), 3, "each distinct frame decoded once");
        let kept: Vec<usize> = events.iter().map(|e| e.bytes().as_ptr() as usize).collect();
        let got: Vec<&[u8]> = events.iter().map(Event::bytes).collect();
        assert_eq!(got, frames, "in the batch's order");
        // The decoded events themselves, not copies, except the repeat's first place.
        assert!(
            !made.contains(&kept[0]),
            "the first place of a repeat is a copy"
        );
        assert_eq!(&kept[1..], &made[..], "decoded events were copied");
    }

    #[test]
    fn a_large_batch_decoded_on_several_threads_keeps_its_order_and_names_the_first_bad_event() {
        let space = duet_core::event::SpaceId::generate();
        let key = duet_core::crypto::SpaceKey::generate();
        let mut dev = duet_testkit::ChainSigner::new("Alex");
        let raw: Vec<Vec<u8>> = (0..100u8)
            .map(|i| dev.changes(space, &key, &[i]).bytes().to_vec())
            .collect();
        let frames: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
        let events = decode_all(&frames, 4).expect("all decode");
        let got: Vec<&[u8]> = events.iter().map(Event::bytes).collect();
        assert_eq!(got, frames, "in the batch's order");

        // Bad signatures at 80 and 40: the answer names 40, whichever share ends first.
        let mut bad = raw.clone();
        for i in [80, 40] {
            let last = bad[i].len() - 1;
            bad[i][last] ^= 1;
        }
        let frames: Vec<&[u8]> = bad.iter().map(Vec::as_slice).collect();
        for threads in [1, 2, 4] {
            let at = decode_all(&frames, threads).err().map(|(i, _)| i);
            assert_eq!(at, Some(40), "on {threads} threads");
        }
    }

    /// A stranger's one signed event repeated to fill a body costs one signature check,
    /// and still comes out once per frame, in order (each answered as the protocol says).
    #[test]
    fn a_frame_repeated_in_a_batch_is_verified_once() {
        let space = duet_core::event::SpaceId::generate();
        let key = duet_core::crypto::SpaceKey::generate();
        let mut dev = duet_testkit::ChainSigner::new("Stranger");
        let one = dev.changes(space, &key, b"x").bytes().to_vec();
        let other = dev.changes(space, &key, b"y").bytes().to_vec();
        let mut frames: Vec<&[u8]> = vec![one.as_slice(); 5_000];
        frames.insert(10, other.as_slice());
        // The same signature on other bytes is not a repeat: it is verified (and fails).
        let mut forged = one.clone();
        forged[HEADER_LEN] ^= 1;
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let counting = |raw: Vec<u8>| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Event::decode(raw)
        };
        for threads in [1, 2] {
            calls.store(0, std::sync::atomic::Ordering::Relaxed);
            let events = decode_all_with(&frames, threads, &counting).expect("all decode");
            let got: Vec<&[u8]> = events.iter().map(Event::bytes).collect();
            assert_eq!(got, frames, "every frame, in order");
            assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
        }
        frames.push(forged.as_slice());
        let at = decode_all_with(&frames, 1, &counting).err().map(|(i, _)| i);
        assert_eq!(at, Some(frames.len() - 1));
    }

    #[test]
    fn events_come_out_as_slices_in_order() {
        let a = vec![1u8; MIN_EVENT_BYTES];
        let b = vec![2u8; MIN_EVENT_BYTES + 5];
        let body = encode_batch([a.as_slice(), b.as_slice()]);
        assert_eq!(split(&body), Ok(vec![a.as_slice(), b.as_slice()]));
    }

    #[test]
    fn a_body_of_empty_frames_is_one_error_and_a_count() {
        let body = vec![0u8; 4 * 1000];
        let e = split(&body).err();
        assert_eq!(
            e,
            Some(BadBody {
                first: FrameError::TooShort {
                    index: 1,
                    offset: 0,
                    len: 0
                },
                frames: 1000,
                bad: 1000
            })
        );
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("1000 of the 1000 frames"), "{text}");
    }

    #[test]
    fn truncation_overrun_size_and_emptiness_are_reported_with_the_frame() {
        let good = vec![0u8; MIN_EVENT_BYTES];
        let mut body = encode_batch([good.as_slice()]);
        body.extend_from_slice(&[0, 0]);
        assert_eq!(
            split(&body).err().map(|e| (e.first, e.frames, e.bad)),
            Some((
                FrameError::TruncatedPrefix {
                    index: 2,
                    offset: MIN_EVENT_BYTES + 4
                },
                2,
                1
            ))
        );
        assert_eq!(
            split(&[0, 0, 1, 0, 9]).err().map(|e| e.first),
            Some(FrameError::Overrun {
                index: 1,
                offset: 0,
                len: 256,
                left: 1
            })
        );
        let big = vec![0u8; MAX_EVENT_BYTES + 1];
        assert!(matches!(
            split(&encode_batch([big.as_slice()]))
                .err()
                .map(|e| e.first),
            Some(FrameError::TooLong { index: 1, .. })
        ));
        assert_eq!(split(&[]).err().map(|e| e.first), Some(FrameError::Empty));
        // u32::MAX as a length does not overflow anything; a frame announcing more
        // than the largest event is too long, though the body ends before it does.
        assert!(matches!(
            split(&[0xff, 0xff, 0xff, 0xff, 1]).err().map(|e| e.first),
            Some(FrameError::TooLong { .. })
        ));
        let announced = ((MAX_EVENT_BYTES + 1) as u32).to_be_bytes();
        assert!(matches!(
            split(&[&announced[..], &[0u8; 200]].concat())
                .err()
                .map(|e| e.first),
            Some(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn a_full_body_of_the_smallest_events_fits_the_frame_cap() {
        let ev = vec![0u8; MIN_EVENT_BYTES];
        let n = MAX_BODY_BYTES / (4 + MIN_EVENT_BYTES);
        let body = encode_batch(std::iter::repeat_n(ev.as_slice(), n));
        assert!(body.len() <= MAX_BODY_BYTES);
        assert_eq!(split(&body).map(|v| v.len()).ok(), Some(MAX_FRAMES));
    }
}

//! A push's body as it arrives: held to the relay's minimum rate (a body that arrives
//! slower, once a short grace has passed, is cut off and the push answers 408
//! `timeout`), and counted against the push memory ([`crate::push_memory`]: 503
//! `overloaded` when its share cannot grow).
//!
//! Without it a slow body holds its request slot until the request timeout (60 s by
//! default), and a few hundred of them shut everyone else out. The rule: `grace + n /
//! rate` seconds after the handler starts reading, the body must have delivered more
//! than `n` bytes. A client may fall behind the rate line by the grace at most, so a
//! short stall on a bad network is forgiven and a trickle is not. Nor may a push body
//! pause longer than the grace: sent fast and then stopped a byte short of its end, 16
//! MiB earned over an hour on the rate line, and held 64 MiB of the push memory until
//! the request timeout; 16 such pushes from 4 addresses, sent again each minute (36
//! Mbit/s), kept every couple's pushes refused.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::push_memory::Share;

/// The error a body cut off for its rate ends with.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body arrived slower than {rate} bytes per second")]
pub struct TooSlow {
    /// The minimum rate, in bytes per second.
    pub rate: u64,
}

/// The error a body ends with when its push's memory share cannot grow.
#[derive(Debug, thiserror::Error)]
#[error("the relay's push memory is taken by other pushes")]
struct NoMemory;

/// Why a push body was stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It fell behind the minimum rate.
    TooSlow,
    /// Its share of the push memory could not grow ([`crate::push_memory`]).
    NoMemory,
}

/// What the handler keeps of a body it reads: why the body was stopped, if it was (the
/// extractor's error does not say), and the push's memory share, which the handler takes
/// back once the body is in ([`Watch::take_share`]) and holds until the push is answered:
/// the body's bytes, the events decoded from them and their signatures' work outlive the
/// body itself.
#[derive(Debug, Clone, Default)]
pub struct Watch(Arc<Watched>);

#[derive(Debug, Default)]
struct Watched {
    reason: AtomicU8,
    share: Mutex<Option<Share>>,
}

impl Watch {
    fn new(share: Option<Share>) -> Watch {
        Watch(Arc::new(Watched {
            reason: AtomicU8::new(0),
            share: Mutex::new(share),
        }))
    }

    /// Why the body was stopped, if it was.
    pub fn reason(&self) -> Option<Stopped> {
        match self.0.reason.load(Ordering::Relaxed) {
            1 => Some(Stopped::TooSlow),
            2 => Some(Stopped::NoMemory),
            _ => None,
        }
    }

    /// The memory share the body grew, to hold until the push is answered.
    pub fn take_share(&self) -> Option<Share> {
        self.share().take()
    }

    fn share(&self) -> std::sync::MutexGuard<'_, Option<Share>> {
        // A poisoned lock still holds a share that is only ever grown or taken.
        self.0.share.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, why: Stopped) {
        let code = match why {
            Stopped::TooSlow => 1,
            Stopped::NoMemory => 2,
        };
        self.0.reason.store(code, Ordering::Relaxed);
    }
}

/// The minimum rate's line: `grace + n / rate` seconds after the start, more than `n`
/// bytes must have arrived (a push body's, or an answer the client takes,
/// [`crate::paced`]).
pub(crate) struct RateLine {
    pub(crate) rate: u64,
    grace: Duration,
    start: Instant,
    pub(crate) timer: Pin<Box<Sleep>>,
}

impl RateLine {
    /// A line starting now.
    pub(crate) fn new(rate: u64, grace: Duration) -> RateLine {
        let start = Instant::now();
        let mut line = RateLine {
            rate: rate.max(1),
            grace,
            start,
            timer: Box::pin(tokio::time::sleep_until(start)),
        };
        line.moved_to(0);
        line
    }

    /// Sets the timer to when the byte after `received` must have arrived.
    pub(crate) fn moved_to(&mut self, received: u64) {
        // Capped at a day so that a huge grace cannot overflow the clock.
        let behind = Duration::from_secs_f64(received as f64 / self.rate as f64);
        let wait = self
            .grace
            .saturating_add(behind)
            .min(Duration::from_secs(24 * 3600));
        let deadline = self.start + wait;
        self.timer.as_mut().reset(deadline);
    }
}

/// A push body held to the minimum rate (when there is one) and counted against its
/// push's memory share (when there is a budget) as its bytes arrive; it fails, with the
/// [`Watch`] saying why, at the first rule it breaks.
pub struct PushBody {
    inner: Body,
    received: u64,
    line: Option<RateLine>,
    watch: Watch,
}

impl PushBody {
    /// `inner` held to `rate` bytes per second after `grace` (no rate for 0), and grown
    /// into `share`.
    pub fn new(inner: Body, rate: u64, grace: Duration, share: Option<Share>) -> (PushBody, Watch) {
        let watch = Watch::new(share);
        let body = PushBody {
            inner,
            received: 0,
            line: (rate > 0).then(|| RateLine::new(rate, grace)),
            watch: watch.clone(),
        };
        (body, watch)
    }

    /// Counts `n` more bytes: refused when the memory share cannot cover them. The next
    /// byte is due on the rate line, and at most the grace from now.
    fn arrived(&mut self, n: usize) -> Result<(), BoxError> {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.received = self.received.saturating_add(n);
        if let Some(share) = self.watch.share().as_mut()
            && share.cover(self.received).is_err()
        {
            self.watch.set(Stopped::NoMemory);
            return Err(Box::new(NoMemory));
        }
        if let Some(line) = &mut self.line {
            line.moved_to(self.received);
            let pause = Instant::now() + line.grace;
            if pause < line.timer.deadline() {
                line.timer.as_mut().reset(pause);
            }
        }
        Ok(())
    }
}

impl HttpBody for PushBody {
    type Data = Bytes;
    // The inner body's error is passed on unwrapped, so that wrapping this body in a
    // `Body` again adds no layer: axum's extractor still finds the body limit's error
    // (413) where it looks for it.
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    if let Err(e) = this.arrived(data.len()) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    // Kept as a copy of exactly its bytes: a piece is a slice of the
                    // connection's read buffer, and held until the body is whole it
                    // keeps that buffer alive. A push trickled in 256-byte pieces held
                    // some 14 times its bytes (2.2 GB for 154 MB of 512 slow pushes).
                    Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(&data)))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Poll::Pending => {
                // Nothing arrived: the rate's timer decides, and wakes this task when it
                // fires.
                if let Some(line) = &mut this.line
                    && line.timer.as_mut().poll(cx).is_ready()
                {
                    this.watch.set(Stopped::TooSlow);
                    return Poll::Ready(Some(Err(Box::new(TooSlow { rate: line.rate }))));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into_inner()))),
            Poll::Ready(None) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_piece_of_the_body_is_kept_apart_from_the_buffer_it_came_in() {
        // As hyper hands them over: small slices of one large read buffer.
        let buffer = Bytes::from(vec![7u8; 64 * 1024]);
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let pieces: Vec<Result<Bytes, std::io::Error>> = (0..4)
            .map(|i| Ok(buffer.slice(i * 256..(i + 1) * 256)))
            .collect();
        let (mut body, _) = PushBody::new(
            Body::from_stream(futures_util::stream::iter(pieces)),
            0,
            Duration::ZERO,
            None,
        );
        let mut seen = 0;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let data = frame.expect("a frame").into_data().expect("data");
            assert_eq!(data.len(), 256);
            assert!(
                !range.contains(&(data.as_ptr() as usize)),
                "a piece still points into the read buffer, keeping all of it alive"
            );
            seen += 1;
        }
        assert_eq!(seen, 4);
    }

    async fn collect(body: PushBody) -> Result<usize, axum::Error> {
        axum::body::to_bytes(Body::new(body), usize::MAX)
            .await
            .map(|b| b.len())
    }

    #[tokio::test]
    async fn a_body_at_the_rate_passes_and_a_stalled_one_is_cut_after_the_grace() {
        let grace = Duration::from_millis(200);
        // 1 KiB every 20 ms (50 KiB/s) against 10 KiB/s: on time.
        let chunks = futures_util::stream::unfold(0, |i| async move {
            if i == 5 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1024])), i + 1))
        });
        let (body, stop) = PushBody::new(Body::from_stream(chunks), 10 * 1024, grace, None);
        assert_eq!(collect(body).await.expect("on time"), 5 * 1024);
        assert_eq!(stop.reason(), None);

        // 16 bytes, then nothing: cut once the grace (and 16 bytes' worth) is over.
        let first = Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 16]));
        let stalled = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
        let started = std::time::Instant::now();
        let (body, stop) = PushBody::new(Body::from_stream(stalled), 10 * 1024, grace, None);
        let err = collect(body).await.expect_err("cut off");
        assert_eq!(stop.reason(), Some(Stopped::TooSlow));
        let text = format!("{err:#}");
        assert!(
            text.contains("slower than 10240 bytes per second"),
            "{text}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= grace && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
}

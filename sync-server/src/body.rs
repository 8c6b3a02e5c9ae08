//! The minimum body rate: a request body that arrives slower than the relay's minimum
//! rate, once a short grace has passed, is cut off (the push answers 408 `timeout`).
//!
//! Without it a slow body holds its request slot until the request timeout (60 s by
//! default), and a few hundred of them shut everyone else out. The rule: `grace + n /
//! rate` seconds after the handler starts reading, the body must have delivered more
//! than `n` bytes. A client may fall behind the rate line by the grace at most, so a
//! short stall on a bad network is forgiven and a trickle is not.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a cut-off body ends with.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body arrived slower than {rate} bytes per second")]
pub struct TooSlow {
    /// The minimum rate, in bytes per second.
    pub rate: u64,
}

/// A body that fails with [`TooSlow`] when it falls behind the minimum rate.
pub struct MinRate {
    inner: Body,
    rate: u64,
    grace: Duration,
    start: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
    cut: Arc<AtomicBool>,
}

/// Set once the body was cut off, so that the handler can tell a slow body from another
/// body error (the extractor's error does not say).
#[derive(Debug, Clone, Default)]
pub struct Cut(Arc<AtomicBool>);

impl Cut {
    /// Whether the body was cut off for being too slow.
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Marks the body as cut off (by another wrapper with its own reason).
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl MinRate {
    /// `inner` held to `rate` bytes per second (at least 1) after `grace`.
    pub fn new(inner: Body, rate: u64, grace: Duration) -> (MinRate, Cut) {
        let rate = rate.max(1);
        let start = Instant::now();
        let cut = Cut::default();
        let mut body = MinRate {
            inner,
            rate,
            grace,
            start,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(start)),
            cut: Arc::clone(&cut.0),
        };
        let deadline = body.deadline();
        body.timer.as_mut().reset(deadline);
        (body, cut)
    }

    /// When the next byte must have arrived.
    fn deadline(&self) -> Instant {
        // Capped at a day so that a huge grace cannot overflow the clock.
        let behind = Duration::from_secs_f64(self.received as f64 / self.rate as f64);
        let wait = self
            .grace
            .saturating_add(behind)
            .min(Duration::from_secs(24 * 3600));
        self.start + wait
    }
}

impl HttpBody for MinRate {
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
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    this.received = this.received.saturating_add(n);
                    let deadline = this.deadline();
                    this.timer.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                // Nothing arrived: the timer decides, and wakes this task when it fires.
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.cut.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(TooSlow { rate: this.rate }))));
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

    async fn collect(body: MinRate) -> Result<usize, axum::Error> {
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
        let (body, cut) = MinRate::new(Body::from_stream(chunks), 10 * 1024, grace);
        assert_eq!(collect(body).await.expect("on time"), 5 * 1024);
        assert!(!cut.happened());

        // 16 bytes, then nothing: cut once the grace (and 16 bytes' worth) is over.
        let first = Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 16]));
        let stalled = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
        let started = std::time::Instant::now();
        let (body, cut) = MinRate::new(Body::from_stream(stalled), 10 * 1024, grace);
        let err = collect(body).await.expect_err("cut off");
        assert!(cut.happened());
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

//! An answer's body that keeps what it was given (a read page's share of the memory,
//! [`crate::push_memory::Share`]) until the body has gone to the socket: a page of up to
//! 16 MiB waiting for a client that does not read it is still in the relay's memory.
//! Hyper asks a body for its end only once its write buffer has room again, so the
//! share is held until all but the last few hundred KiB are sent (and [`crate::paced`]
//! closes a connection whose client stops taking them). The request's in-flight slot
//! is not held so (it was: slow readers from a few addresses then took every slot).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};

/// `inner`, holding `slot` until it is dropped.
pub struct Held<G> {
    inner: Body,
    done: bool,
    _slot: G,
}

impl<G> Held<G> {
    /// `inner` holding `slot`.
    pub fn new(inner: Body, slot: G) -> Held<G> {
        Held {
            inner,
            done: false,
            _slot: slot,
        }
    }
}

impl<G: Send + Unpin + 'static> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }

    // Not the inner body's answer, which is "ended" as soon as its one frame is taken:
    // hyper would then drop this body, and the slot, with the frame still unsent.
    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

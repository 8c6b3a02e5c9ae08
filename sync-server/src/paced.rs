//! A connection's socket held to a minimum rate while the relay's writes wait on the
//! client. A client that stops reading (or reads a trickle) would otherwise keep an
//! answer of up to 16 MiB in the relay's memory for as long as it keeps its connection
//! open, and the request timeout does not reach an answer already handed to the socket.
//!
//! The rule is the one a push body is held to ([`crate::body`]), turned around: from the
//! moment a write has to wait, the client must have taken more than `n` bytes within
//! `grace + n / rate` seconds, or the connection is closed. The clock stops whenever
//! everything written has gone out (the socket is flushed), so a connection with
//! nothing to send, such as a quiet live socket, is never cut.
//!
//! What the relay sees the client take is what the kernel lets it write, and the kernel
//! wakes a waiting writer only once about a third of the socket's send buffer has gone:
//! with a buffer autotuned to 4 MiB, a client taking 150 KB/s showed nothing taken for
//! some 9 s and was cut off mid-page. So an accepted socket's send buffer is capped
//! ([`SEND_BUFFER`]), and the grace grows by the time a third of that buffer takes at the
//! rate ([`socket_grace`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::body::RateLine;

/// The send buffer asked for on an accepted socket (Linux keeps twice it): enough for
/// some 5 MB/s at 100 ms of round trip, small enough that a client at the minimum rate
/// is seen taking bytes within a bounded time.
pub const SEND_BUFFER: usize = 256 * 1024;

/// Caps `stream`'s send buffer at [`SEND_BUFFER`] and returns the grace a client of it
/// gets at `rate`: `grace` plus the time a third of the buffer the kernel keeps takes at
/// the rate (how late the relay may see bytes the client has taken).
pub fn socket_grace(stream: &tokio::net::TcpStream, rate: u64, grace: Duration) -> Duration {
    if rate == 0 {
        return grace;
    }
    let socket = socket2::SockRef::from(stream);
    let _ = socket.set_send_buffer_size(SEND_BUFFER);
    let kept = socket.send_buffer_size().unwrap_or(2 * SEND_BUFFER) as u64;
    grace + Duration::from_secs_f64(kept.div_ceil(3) as f64 / rate as f64)
}

/// A socket whose writes the client must take at `rate` bytes a second, after `grace`.
pub struct Paced<IO> {
    inner: IO,
    rate: u64,
    grace: Duration,
    stall: Option<Stall>,
}

/// What the client took since the writes began to wait on it, against the rate's line
/// drawn from that moment.
struct Stall {
    taken: u64,
    line: RateLine,
}

impl<IO> Paced<IO> {
    /// `inner` held to `rate` bytes per second after `grace` (a rate of 0: no rule).
    pub fn new(inner: IO, rate: u64, grace: Duration) -> Paced<IO> {
        Paced {
            inner,
            rate,
            grace,
            stall: None,
        }
    }

    /// Follows a write's outcome: a write that waits starts (or keeps) the clock, bytes
    /// taken move its deadline on, and a wait past the deadline closes the connection.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.rate == 0 {
            return written;
        }
        match written {
            Poll::Ready(Ok(n)) => {
                if let Some(stall) = &mut self.stall {
                    stall.taken = stall.taken.saturating_add(n as u64);
                    stall.line.moved_to(stall.taken);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let (rate, grace) = (self.rate, self.grace);
                let stall = self.stall.get_or_insert_with(|| Stall {
                    taken: 0,
                    line: RateLine::new(rate, grace),
                });
                // Polled with this task's context: the timer wakes it when it fires.
                if stall.line.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client took the answer slower than {rate} bytes per second"),
                    )));
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Paced<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Paced<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        // Everything written went out: nothing waits on the client any more.
        if let Poll::Ready(Ok(())) = flushed {
            this.stall = None;
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

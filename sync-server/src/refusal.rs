//! A connection refused before anything of it is served (its address already holds its
//! share of connections): the 429 is written once the client has begun its request, and
//! what it still sends is read and dropped for a moment before the connection closes.
//!
//! Written at once, the answer reached a client that had not sent its request yet, and
//! an HTTP client takes an answer to no request for a broken connection ("received
//! unexpected message"): `duet sync` then said the relay could not be reached instead of
//! waiting the `Retry-After`. And closing a socket with unread bytes makes the kernel
//! reset the connection, which can take the answer with it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How long a refused connection is kept, at most, waiting for its request and then
/// reading what follows.
const LINGER: Duration = Duration::from_secs(2);

/// The most bytes read from a refused connection.
const LINGER_BYTES: usize = 64 * 1024;

/// Refused connections kept at once; past that they are answered and closed at once (a
/// flood of connections must not hold descriptors for seconds).
const MAX_LINGERING: usize = 32;

/// The answer to refused connections, and the room for those being answered.
pub(crate) struct Refusals {
    answer: Arc<[u8]>,
    lingering: Arc<Semaphore>,
}

impl Refusals {
    pub(crate) fn new(answer: Vec<u8>) -> Refusals {
        Refusals {
            answer: answer.into(),
            lingering: Arc::new(Semaphore::new(MAX_LINGERING)),
        }
    }

    /// Answers `stream` with the refusal and closes it: in a task, after its request
    /// began, when there is room; else at once.
    pub(crate) fn refuse(&self, stream: TcpStream) {
        let Ok(room) = self.lingering.clone().try_acquire_owned() else {
            let _ = stream.try_write(&self.answer);
            return;
        };
        let answer = self.answer.clone();
        tokio::spawn(async move {
            let _room = room;
            let _ = tokio::time::timeout(LINGER, answer_then_drain(stream, &answer)).await;
        });
    }
}

/// Waits for the first bytes of the request, writes `answer`, ends the writing side and
/// reads until the client closes (or [`LINGER_BYTES`]).
async fn answer_then_drain(mut stream: TcpStream, answer: &[u8]) {
    let mut buf = [0u8; 4096];
    let mut read = match stream.read(&mut buf).await {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    if stream.write_all(answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    while read < LINGER_BYTES {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
}

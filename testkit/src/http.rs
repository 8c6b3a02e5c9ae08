//! A plain HTTP/1.1 client for the relay's endpoints over `std::net::TcpStream`: one
//! request a connection (`Connection: close`), the whole answer read back; pushes and
//! signed reads with `duet_core::protocol`'s paths and headers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use duet_core::event::{Event, SpaceId};
use duet_core::protocol::{ErrorBody, encode_batch, events_path};

use crate::ChainSigner;

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON error body (panics with the answer if it is not one).
    pub fn error(&self) -> ErrorBody {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{} {}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not an error body ({e}): {} {}", self.status, self.text()))
    }

    /// Asserts a 200.
    pub fn ok(&self) -> &Reply {
        assert_eq!(self.status, 200, "expected 200: {}", self.text());
        self
    }
}

/// Writes a request (`Connection: close`, `Content-Length` when there is a body or the
/// method is POST) and reads the whole answer.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    read_reply(&mut stream)
}

/// Reads one answer until the relay closes the connection.
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    // A reset after the full answer arrived is fine; the answer is what counts.
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty(),
            "reading the answer failed: {e}"
        );
    }
    parse_reply(&raw).unwrap_or_else(|| {
        panic!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(500)])
        )
    })
}

/// Parses an HTTP/1.1 answer with a `Content-Length` (or none: the rest is the body).
pub fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    assert!(
        !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")),
        "chunked answers are not expected"
    );
    if let Some(len) = len {
        body.truncate(len);
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// Pushes `events` to `space` in one request.
pub fn push(addr: SocketAddr, space: &SpaceId, events: &[&Event]) -> Reply {
    let body = encode_batch(events.iter().map(|e| e.bytes()));
    http(addr, "POST", &events_path(space), &[], &body)
}

/// A read of `space` signed by `reader` (the query is sent as signed).
pub fn read(addr: SocketAddr, reader: &ChainSigner, space: &SpaceId, query: &str) -> Reply {
    let path = events_path(space);
    let auth = reader.read_auth(&path, query);
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let headers = auth.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    http(addr, "GET", &target, &headers, b"")
}

//! A stranger's raw HTTP from an address of its own: Linux routes all of 127/8 to the
//! loopback interface, so a socket bound to 127.0.0.2 before connecting reaches the
//! relay as another client than the couple's 127.0.0.1.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use super::process::{Reply, parse_reply};

/// The attacker's address.
pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A TCP connection from `from` to the relay.
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(IpAddr::V4(from), 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(socket.into())
}

/// Reads one answer's head and its `Content-Length` body, without waiting for the
/// connection to close (a kept-alive or upgraded one stays open); `None` if the relay
/// closed (or reset) the connection first, or sent nothing for `wait`.
pub fn read_answer(stream: &mut TcpStream, wait: Duration) -> Option<Reply> {
    stream.set_read_timeout(Some(wait)).ok()?;
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            _ => return None,
        }
    }
    let head = parse_reply(&raw)?;
    let len: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    raw.extend_from_slice(&body);
    parse_reply(&raw)
}

/// One request from `from` on a fresh connection (`Connection: close`).
pub fn request_from(
    from: Ipv4Addr,
    to: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> Reply {
    let mut stream = connect_from(from, to).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write the head");
    stream.write_all(body).expect("write the body");
    read_answer(&mut stream, Duration::from_secs(10)).expect("an answer")
}

//! What the relay benchmarks (`relay_bench`, `relay_rss`) share: the relay's
//! configuration with every limit off, command-line flag parsing, and a minimal HTTP/1.1 keep-alive client on
//! `tokio::net::TcpStream`.

use std::borrow::Borrow;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use duet_core::event::{Event, SpaceId};
use duet_core::identity::Identity;
use duet_core::protocol::{H_MORE, ReadAuth, decode_page, encode_batch, events_path};
use duet_relay::{Config, Rate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The relay's configuration with rate limits and quotas off: nothing is refused for load.
pub fn unlimited_config() -> Config {
    Config {
        header_timeout: Some(Duration::from_secs(30)),
        request_timeout: None,
        max_in_flight: 0,
        max_in_flight_per_ip: 0,
        max_connections: 0,
        max_connections_per_ip: 0,
        max_live_sockets: 0,
        max_live_per_ip: 0,
        max_live_per_space: 0,
        min_body_rate: 0,
        body_grace: Duration::ZERO,
        rate_per_ip: Rate::OFF,
        rate_per_device: Rate::OFF,
        verify_per_ip: Rate::OFF,
        client_ip_header: None,
        space_max_events: 0,
        space_max_bytes: 0,
        max_db_bytes: 0,
        // Load tests create their spaces without a creation token.
        open_registration: true,
        create_tokens: Default::default(),
        max_creations_per_ip: 0,
        max_creations_per_token: 0,
        // The relay's default: memory figures are those of a relay as shipped.
        space_cache: duet_relay::limits::DEFAULT_SPACE_CACHE,
        max_push_memory: 0,
    }
}

/// The next `--flag value` pair of the command line, if any; a flag without a value is
/// an error that names the options. `--help` (or `-h`) prints `options` and exits.
pub fn next_flag(
    args: &mut impl Iterator<Item = String>,
    options: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let Some(flag) = args.next() else {
        return Ok(None);
    };
    if flag == "--help" || flag == "-h" {
        println!("options: {options}");
        std::process::exit(0);
    }
    let value = args
        .next()
        .with_context(|| format!("{flag} needs a value; options: {options}"))?;
    Ok(Some((flag, value)))
}

/// `v`, the value of `flag`, as a number.
pub fn number(flag: &str, v: &str) -> anyhow::Result<usize> {
    v.parse()
        .with_context(|| format!("{flag}: `{v}` is not a number"))
}

/// A device signing its own chain in one space (the test kit's).
pub use duet_testkit::ChainSigner as Dev;

/// An HTTP answer.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The status line and headers, up to and with the blank line.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of the header `name` (any case), if the answer has one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One kept-alive HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` (with Nagle's algorithm off).
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }

    /// Sends one request (with a body when `body` is `Some`) and reads the answer.
    pub async fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            req.push_str(&format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        let mut req = req.into_bytes();
        if let Some(body) = body {
            req.extend_from_slice(body);
        }
        self.stream.write_all(&req).await?;
        // Headers.
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .context("response headers")?
            .to_string();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("a status line")?;
        let mut answer = Answer {
            status,
            head,
            body: Vec::new(),
        };
        let length: usize = answer
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .context("the relay's answers have a Content-Length")?;
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        answer.body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok(answer)
    }

    /// Reads more of the answer into the buffer.
    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the relay closed the connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Pushes `events` to `space` in one request; an answer other than 200 is an error.
    pub async fn push<E: Borrow<Event>>(
        &mut self,
        space: &SpaceId,
        events: &[E],
    ) -> anyhow::Result<()> {
        let body = encode_batch(events.iter().map(|e| e.borrow().bytes()));
        let answer = self
            .send("POST", &events_path(space), &[], Some(&body))
            .await?;
        if answer.status != 200 {
            bail!(
                "push refused: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        Ok(())
    }
}

impl Conn {
    /// Reads all of a space's events as `reader`, page by page; returns (requests, events).
    pub async fn read_all(
        &mut self,
        space: &SpaceId,
        reader: &Identity,
    ) -> anyhow::Result<(u64, u64)> {
        let path = events_path(space);
        let (mut after, mut requests, mut events) = (0u64, 0u64, 0u64);
        loop {
            let query = format!("after={after}");
            let auth = ReadAuth::sign(reader, "GET", &path, &query);
            let signed = auth.headers();
            let headers = signed
                .each_ref()
                .map(|(name, value)| (*name, value.as_str()));
            let answer = self
                .send("GET", &format!("{path}?{query}"), &headers, None)
                .await?;
            requests += 1;
            if answer.status != 200 {
                bail!(
                    "read refused: {} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                );
            }
            let page = decode_page(&answer.body).context("a read answer's page")?;
            events += page.len() as u64;
            let more = answer.header(H_MORE) == Some("1");
            match page.last() {
                Some((cursor, _)) => after = *cursor,
                None if more => bail!("the relay answered an empty page with {H_MORE}: 1"),
                None => {}
            }
            if !more {
                return Ok((requests, events));
            }
        }
    }
}

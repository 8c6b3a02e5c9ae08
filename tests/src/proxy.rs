//! A relay in front of the real one that answers some pushes itself, as a lying or
//! failing relay would (a false conflict, a push cut off), or holds WebSocket upgrades
//! without an answer, as a stalled proxy or captive portal would, and passes every
//! other request on unchanged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use duet_core::event::Event;

/// What the proxy answers a push holding these events with, instead of passing it on:
/// an HTTP status and a JSON body; `None` passes the push on.
pub type Answer = fn(&[Event]) -> Option<(u16, String)>;

/// The proxy: its URL, and how many pushes it answered itself.
pub struct RelayProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    answered: Arc<AtomicUsize>,
    hiding: Hiding,
    gate: Gate,
}

/// Whether a gated proxy passes requests on yet, and how many wait for it.
#[derive(Clone, Default)]
struct Gate(Arc<(std::sync::Mutex<(bool, usize)>, std::sync::Condvar)>);

impl Gate {
    /// Waits until the gate is open (counted among the waiting meanwhile).
    fn pass(&self) {
        let (lock, opened) = &*self.0;
        let Ok(mut state) = lock.lock() else { return };
        state.1 += 1;
        while !state.0 {
            let Ok(next) = opened.wait(state) else { return };
            state = next;
        }
    }
}

/// What a proxy that hides pushes hides: the events it passed on while lying (their
/// bytes), and whether it still lies.
#[derive(Clone, Default)]
struct Hiding {
    lying: Arc<std::sync::atomic::AtomicBool>,
    hidden: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    /// Set for a proxy that copies (see [`RelayProxy::start_copying_once`]) until it has.
    copy_once: Arc<std::sync::atomic::AtomicBool>,
    /// It copies the last event over the first instead.
    copy_back: Arc<std::sync::atomic::AtomicBool>,
    /// Set for a proxy that copies an event of an earlier page (see
    /// [`RelayProxy::start_copying_earlier_once`]) until it has.
    copy_earlier: Arc<std::sync::atomic::AtomicBool>,
    /// The last event each read address served, for the copy.
    earlier: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    /// Started to copy an earlier page's event: it never says `duet-after-hash`.
    earlier_mode: Arc<std::sync::atomic::AtomicBool>,
    /// It has copied an earlier page's event.
    copied_earlier: Arc<std::sync::atomic::AtomicBool>,
}

impl RelayProxy {
    /// Listens on a free loopback port in front of the relay at `upstream`.
    pub fn start(upstream: &str, answer: Answer) -> RelayProxy {
        Self::start_with(upstream, answer, Mode::Answer)
    }

    /// Like [`RelayProxy::start`] with no push answered, but a request to upgrade to a
    /// WebSocket is read and then never answered, its connection held open.
    pub fn start_holding_upgrades(upstream: &str) -> RelayProxy {
        Self::start_with(upstream, |_| None, Mode::HoldUpgrades)
    }

    /// Like [`RelayProxy::start`], but a push it answers itself is passed on first: the
    /// relay stores it, and the device is told otherwise.
    pub fn start_lying_after(upstream: &str, answer: Answer) -> RelayProxy {
        Self::start_with(upstream, answer, Mode::LieAfter)
    }

    /// A relay that keeps what it takes and says otherwise: each push is passed on, then
    /// answered as if nothing had been stored (`results` empty), and the events it held
    /// are left out of every page read, until [`RelayProxy::be_honest`].
    pub fn start_hiding_pushes(upstream: &str) -> RelayProxy {
        let proxy = Self::start_with(upstream, |_| None, Mode::HidePushes);
        proxy.hiding.lying.store(true, Ordering::SeqCst);
        proxy
    }

    /// A relay that lies in one page read: the first page of two events or more is
    /// served with its last event replaced by a copy of its first (at the last one's
    /// cursor); pushes and every other read pass on unchanged, live sockets are refused.
    pub fn start_copying_once(upstream: &str) -> RelayProxy {
        let proxy = Self::start_with(upstream, |_| None, Mode::CopyOnce);
        proxy.hiding.copy_once.store(true, Ordering::SeqCst);
        proxy
    }

    /// Like [`RelayProxy::start_copying_once`], with the first event replaced by a copy
    /// of the last (at the first one's cursor): the copy comes before the original.
    pub fn start_copying_back_once(upstream: &str) -> RelayProxy {
        let proxy = Self::start_copying_once(upstream);
        proxy.hiding.copy_back.store(true, Ordering::SeqCst);
        proxy
    }

    /// A relay that never says what it stores at the cursor a read starts after (no
    /// `duet-after-hash`, as the protocol allows), and once armed
    /// ([`RelayProxy::copy_earlier_once`]) lies in one page read: the next page of a
    /// space it served events of before is served with its first event replaced by a
    /// copy of the last event served before.
    pub fn start_copying_earlier(upstream: &str) -> RelayProxy {
        let proxy = Self::start_with(upstream, |_| None, Mode::CopyOnce);
        proxy.hiding.earlier_mode.store(true, Ordering::SeqCst);
        proxy
    }

    /// Arms a proxy started with [`RelayProxy::start_copying_earlier`].
    pub fn copy_earlier_once(&self) {
        self.hiding.copy_earlier.store(true, Ordering::SeqCst);
    }

    /// Whether a proxy started with [`RelayProxy::start_copying_once`] (or its kin) has
    /// lied yet.
    pub fn has_copied(&self) -> bool {
        match self.hiding.earlier_mode.load(Ordering::SeqCst) {
            true => self.hiding.copied_earlier.load(Ordering::SeqCst),
            false => !self.hiding.copy_once.load(Ordering::SeqCst),
        }
    }

    /// Passes everything on until [`RelayProxy::drop_reads`]; from then on it stores
    /// every push and answers no read (the connection is closed unanswered, as by a
    /// relay that stopped right after a push): a join stored, and the space never read
    /// back.
    pub fn start_dropping_reads(upstream: &str) -> RelayProxy {
        Self::start_with(upstream, |_| None, Mode::DropReads)
    }

    /// Arms a proxy started with [`RelayProxy::start_dropping_reads`] (or
    /// [`RelayProxy::start_denying_reads`]).
    pub fn drop_reads(&self) {
        self.hiding.lying.store(true, Ordering::SeqCst);
    }

    /// Passes everything on until armed ([`RelayProxy::drop_reads`]); from then on it
    /// answers every page read 403 `not_a_member`, as a relay that lost (or hides) the
    /// events that made the device a member would, and passes pushes on.
    pub fn start_denying_reads(upstream: &str) -> RelayProxy {
        Self::start_with(upstream, |_| None, Mode::DenyReads)
    }

    /// Like [`RelayProxy::start`] with no push answered, but every request waits,
    /// unanswered, until [`RelayProxy::open_gate`]: a relay slow to answer, for as long
    /// as a test needs to do something meanwhile.
    pub fn start_gated(upstream: &str) -> RelayProxy {
        Self::start_with(upstream, |_| None, Mode::Gated)
    }

    /// How many requests have waited at the gate so far.
    pub fn waiting(&self) -> usize {
        self.gate.0.0.lock().map_or(0, |s| s.1)
    }

    /// Lets every request waiting at the gate, and every later one, through.
    pub fn open_gate(&self) {
        if let Ok(mut state) = self.gate.0.0.lock() {
            state.0 = true;
        }
        self.gate.0.1.notify_all();
    }

    /// From now on passes everything on unchanged.
    pub fn be_honest(&self) {
        self.hiding.lying.store(false, Ordering::SeqCst);
    }

    fn start_with(upstream: &str, answer: Answer, mode: Mode) -> RelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let answered = Arc::new(AtomicUsize::new(0));
        let counter = answered.clone();
        let hiding = Hiding::default();
        let hides = hiding.clone();
        // Closed only for a gated proxy (the others never look at it).
        let gate = Gate::default();
        let gated = gate.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                let (hides, gated) = (hides.clone(), gated.clone());
                std::thread::spawn(move || {
                    if mode == Mode::Gated {
                        gated.pass();
                    }
                    // Honest until armed.
                    let mode = match mode {
                        Mode::DropReads | Mode::DenyReads
                            if !hides.lying.load(Ordering::SeqCst) =>
                        {
                            Mode::Answer
                        }
                        mode => mode,
                    };
                    if mode == Mode::CopyOnce
                        || (mode == Mode::HidePushes && hides.lying.load(Ordering::SeqCst))
                    {
                        serve_hiding(stream, &upstream, &hides);
                    } else {
                        serve(stream, &upstream, &counter, answer, mode);
                    }
                });
            }
        });
        RelayProxy {
            url,
            answered,
            hiding,
            gate,
        }
    }

    /// How many pushes the proxy answered itself.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

/// What the proxy does besides passing requests on.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answers the pushes `Answer` takes, passing nothing of them on.
    Answer,
    /// Passes those pushes on first, then answers them.
    LieAfter,
    /// Holds every WebSocket upgrade unanswered.
    HoldUpgrades,
    /// Hides what it is pushed while lying (see [`RelayProxy::start_hiding_pushes`]).
    HidePushes,
    /// Holds every request until the gate opens (see [`RelayProxy::start_gated`]).
    Gated,
    /// Copies an event over another once (see [`RelayProxy::start_copying_once`]).
    CopyOnce,
    /// Answers no read (see [`RelayProxy::start_dropping_reads`]).
    DropReads,
    /// Answers every read as by a device never a member (see
    /// [`RelayProxy::start_denying_reads`]).
    DenyReads,
}

/// One request to a proxy that hides pushes: a push passed on and answered as stored
/// nowhere; a page read passed on with the hidden events left out; anything else (a
/// live socket) refused, so the device reads pages.
fn serve_hiding(mut client: TcpStream, upstream: &str, hiding: &Hiding) {
    let Some((head, body)) = read_request(&client) else {
        return;
    };
    let first = head.first().cloned().unwrap_or_default();
    let copying = !hiding.lying.load(Ordering::SeqCst);
    if first.starts_with("POST ") && copying {
        let _ = pass_on(upstream, &head, &body, &mut client);
        return;
    }
    if first.starts_with("POST ") {
        let mut sink = Vec::new();
        if pass_on(upstream, &head, &body, &mut sink).is_err() {
            return;
        }
        if let (Ok(mut hidden), Ok(events)) = (
            hiding.hidden.lock(),
            duet_core::protocol::decode_batch(&body),
        ) {
            hidden.extend(events);
        }
        let json = r#"{"results":[],"cursor":0}"#;
        let _ = write!(
            client,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
            json.len()
        );
        return;
    }
    if has_header(&head, "upgrade") {
        let _ = write!(
            client,
            "HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        return;
    }
    let mut answer = Vec::new();
    if pass_on(upstream, &head, &body, &mut answer).is_err() {
        return;
    }
    let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let (top, page) = (&answer[..split], &answer[split + 4..]);
    let top = String::from_utf8_lossy(top);
    let page = match duet_core::protocol::decode_page(page) {
        Ok(entries) if top.starts_with("HTTP/1.1 200") => {
            let hidden = hiding.hidden.lock().map(|h| h.clone()).unwrap_or_default();
            let mut kept: Vec<(u64, Vec<u8>)> = entries
                .into_iter()
                .filter(|(_, ev)| !hidden.contains(ev))
                .collect();
            if kept.len() >= 2 && hiding.copy_once.swap(false, Ordering::SeqCst) {
                let last = kept.len() - 1;
                let (from, to) = match hiding.copy_back.load(Ordering::SeqCst) {
                    true => (last, 0),
                    false => (0, last),
                };
                kept[to].1 = kept[from].1.clone();
            }
            if hiding.earlier_mode.load(Ordering::SeqCst) {
                copy_earlier(hiding, &first, &mut kept);
            }
            duet_core::protocol::encode_page(&kept)
        }
        _ => page.to_vec(),
    };
    let unsaid = hiding.earlier_mode.load(Ordering::SeqCst);
    let headers: Vec<&str> = top
        .split("\r\n")
        .filter(|h| !h.to_ascii_lowercase().starts_with("content-length:"))
        .filter(|h| !(unsaid && h.to_ascii_lowercase().starts_with("duet-after-hash:")))
        .collect();
    let _ = write!(
        client,
        "{}\r\ncontent-length: {}\r\n\r\n",
        headers.join("\r\n"),
        page.len()
    );
    let _ = client.write_all(&page);
}

/// Whether the head holds a header of this name.
fn has_header(head: &[String], name: &str) -> bool {
    head.iter().any(|h| {
        h.split_once(':')
            .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
    })
}

/// A request read whole: its head's lines (the request line first, without
/// `connection`) and its body.
fn read_request(client: &TcpStream) -> Option<(Vec<String>, Vec<u8>)> {
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        let h = h.trim_end().to_string();
        match h.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                length = value.trim().parse().unwrap_or(0);
            }
            Some((name, _)) if name.eq_ignore_ascii_case("connection") => continue,
            _ => {}
        }
        head.push(h);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// One request: read whole, then answered here or passed on (with `connection: close`,
/// so the answer ends with the connection).
fn serve(
    mut client: TcpStream,
    upstream: &str,
    answered: &AtomicUsize,
    answer: Answer,
    mode: Mode,
) {
    let Some((head, body)) = read_request(&client) else {
        return;
    };
    let is_post = head.first().is_some_and(|l| l.starts_with("POST "));
    if !is_post && mode == Mode::DropReads {
        return;
    }
    if !is_post && mode == Mode::DenyReads && !has_header(&head, "upgrade") {
        let json = r#"{"error":"not_a_member","message":"device X is not a member of this space; only member devices may read"}"#;
        let _ = write!(
            client,
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
            json.len()
        );
        return;
    }
    if has_header(&head, "upgrade") && mode == Mode::HoldUpgrades {
        // Held until the client gives up and closes.
        let _ = std::io::copy(&mut client, &mut std::io::sink());
        return;
    }
    if is_post {
        let events: Vec<Event> = duet_core::protocol::decode_batch(&body)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| Event::decode(b).ok())
            .collect();
        if let Some((status, json)) = answer(&events) {
            answered.fetch_add(1, Ordering::SeqCst);
            if mode == Mode::LieAfter
                && pass_on(upstream, &head, &body, &mut std::io::sink()).is_err()
            {
                return;
            }
            let _ = write!(
                client,
                "HTTP/1.1 {status} Answered\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                json.len()
            );
            return;
        }
    }
    let _ = pass_on(upstream, &head, &body, &mut client);
}

/// Sends the request to the relay and copies its answer into `to`.
fn pass_on(
    upstream: &str,
    head: &[String],
    body: &[u8],
    to: &mut impl Write,
) -> std::io::Result<u64> {
    let mut up = TcpStream::connect(upstream)?;
    let request = format!("{}\r\nconnection: close\r\n\r\n", head.join("\r\n"));
    up.write_all(request.as_bytes())?;
    up.write_all(body)?;
    std::io::copy(&mut up, to)
}

/// A proxy copying an earlier page's event (see [`RelayProxy::start_copying_earlier_once`]):
/// remembers the last event each read address served, and once, puts it over the first
/// event of a later page of the same address (`request`: its request line).
fn copy_earlier(hiding: &Hiding, request: &str, page: &mut [(u64, Vec<u8>)]) {
    let address = request
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.split('?').next())
        .unwrap_or_default()
        .to_string();
    let Ok(mut earlier) = hiding.earlier.lock() else {
        return;
    };
    let Some(last) = page.last().map(|(_, ev)| ev.clone()) else {
        return;
    };
    if let Some(before) = earlier.get(&address).filter(|b| **b != page[0].1)
        && hiding.copy_earlier.swap(false, Ordering::SeqCst)
    {
        page[0].1 = before.clone();
        hiding.copied_earlier.store(true, Ordering::SeqCst);
        return;
    }
    earlier.insert(address, last);
}

//! Slow bodies and sockets against the real `duet-relay` process (issue 13, finding 4).
//!
//! The attacker is 127.0.0.2 and the couple's devices 127.0.0.1 (Linux routes all of
//! 127/8 to the loopback interface, so the relay sees two addresses): the attacker's
//! sockets are bound to its address before connecting. The relay keeps serving the
//! member while one address holds slow bodies and opens sockets by the thousand, caps
//! live sockets per person of a space, per space and per address (counting them as connections), and raises
//! its open-file limit at start. Slow pushes from many addresses hold neither the push
//! memory (counted as bytes arrive) nor the slots of requests in flight (taken once a
//! body is in), and a pairing claim of megabytes is refused before it is read.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Device;
use common::process::{Proc, Reply, Space, http};
use common::stranger::{ATTACKER, connect_from, read_answer, request_from};
use duet_core::event::{MembershipOp, SpaceId};
use duet_core::protocol::ErrorCode;
use duet_core::protocol::{encode_batch, events_path, live_path};

/// The relay's defaults that the tests count on (`duet_relay::Config::default`).
const MAX_LIVE_PER_IP: usize = 32;
const MAX_CONNECTIONS_PER_IP: usize = 64;

/// The longest a member's request may take while the relay is under attack.
const WITHIN: Duration = Duration::from_secs(1);

/// The signed WebSocket upgrade of `device`'s live socket on `space`.
fn live_request(device: &Device, space: &SpaceId) -> String {
    let path = live_path(space);
    let auth = device.read_auth(&path, "");
    let signed: String = auth
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!(
        "GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         {signed}\r\n"
    )
}

/// Asks for a live socket from `from`: the answer, and the connection (an open live
/// socket after a 101).
fn open_live(
    from: Ipv4Addr,
    to: SocketAddr,
    device: &Device,
    space: &SpaceId,
) -> (Option<Reply>, TcpStream) {
    let mut stream = connect_from(from, to).expect("connect");
    stream
        .write_all(live_request(device, space).as_bytes())
        .expect("write the upgrade");
    (read_answer(&mut stream, Duration::from_secs(10)), stream)
}

/// [`open_live`], asked again while the address's connections are all taken (a
/// connection the test just closed may not be given back yet); `None` after 10 s.
fn open_live_once_connected(
    from: Ipv4Addr,
    to: SocketAddr,
    device: &Device,
    space: &SpaceId,
) -> (Option<Reply>, TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (answer, stream) = open_live(from, to, device, space);
        let busy = answer.as_ref().is_none_or(|r| {
            r.status == 429 && String::from_utf8_lossy(&r.body).contains("open connections")
        });
        if !busy || Instant::now() >= deadline {
            return (answer, stream);
        }
    }
}

/// A throwaway space of the attacker with `n` devices of one person (a genesis, then a
/// device code and a join for each other device), pushed from the attacker's address.
fn attackers_space(p: &Proc, n: usize) -> (SpaceId, Vec<Device>) {
    let (space, devices, _) = shared_space(p, n, false);
    (space, devices)
}

/// A space with `n` devices of its creator and, when `partner` is set, one device of a
/// second person (joined by a partner invite), pushed from the attacker's address.
fn shared_space(p: &Proc, n: usize, partner: bool) -> (SpaceId, Vec<Device>, Option<Device>) {
    let space = SpaceId::generate();
    let mut owner = Device::new("attacker");
    let mut events = vec![owner.genesis(space, false)];
    let invite = |owner: &mut Device, person| {
        let seed = duet_core::ids::random_bytes::<32>();
        let code = MembershipOp::Invite {
            invite_key: duet_core::identity::keypair_from_seed(seed).1,
            expires_at: common::now_ms() + 3_600_000,
            person,
        };
        (owner.membership(space, &code), seed)
    };
    let mut devices = Vec::new();
    for i in 1..n {
        let person = Some(owner.person());
        let (code, seed) = invite(&mut owner, person);
        events.push(code);
        let mut d = owner.sibling(&format!("attacker {i}"));
        events.push(d.join(space, seed));
        devices.push(d);
    }
    let partner = partner.then(|| {
        let (code, seed) = invite(&mut owner, None);
        events.push(code);
        let mut d = Device::new("partner");
        events.push(d.join(space, seed));
        d
    });
    devices.insert(0, owner);
    let body = encode_batch(events.iter().map(|e| e.bytes()));
    let r = request_from(
        ATTACKER,
        p.addr,
        "POST",
        &common::events_path(&space),
        &body,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    (space, devices, partner)
}

/// The relay's open file descriptors now.
fn open_fds(p: &Proc) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", p.pid()))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs `f`, asserting that it took less than [`WITHIN`].
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(took < WITHIN, "{what} took {took:?} under the attack");
    out
}

/// What one address throws at the relay at once.
struct Attack {
    /// POSTs that send their head and 16 bytes of a 64 KiB body, then nothing.
    slow_bodies: usize,
    /// Connections, each asking for a live socket of the attacker's space.
    socket_attempts: usize,
}

/// Runs `attack` from [`ATTACKER`] against a relay with the default limits while a
/// couple on 127.0.0.1 reads, pushes, asks `/healthz` and opens a live socket, each
/// answered within [`WITHIN`]; afterwards every slow body was cut off well before the
/// request timeout, and the attacker held at most its share of sockets.
fn under_attack(attack: Attack) {
    // The test process holds every attacking socket at once.
    rlimit::increase_nofile_limit(4 * (attack.slow_bodies + attack.socket_attempts) as u64)
        .expect("raise the test's open-file limit");
    let p = Proc::start_with(&[]);
    let mut couple = Space::create(&p);
    // 8 devices may hold 64 live sockets: twice the per-address cap.
    let (space, devices) = attackers_space(&p, 8);
    let addr = p.addr;

    let started = Instant::now();
    let slow = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..attack.slow_bodies {
            let Ok(mut s) = connect_from(ATTACKER, addr) else {
                continue;
            };
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: relay\r\nContent-Length: 65536\r\n\r\n",
                events_path(&space)
            );
            // Refused connections fail to write: the attacker does not care.
            let _ = s
                .write_all(head.as_bytes())
                .and_then(|()| s.write_all(&[0u8; 16]));
            held.push((Instant::now(), s));
        }
        held
    });
    let sockets = std::thread::spawn(move || {
        let mut held = Vec::new();
        for i in 0..attack.socket_attempts {
            // Spread over about 6 s, so that attempts keep coming after the slow bodies
            // are cut off.
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(150));
            }
            let Ok(mut s) = connect_from(ATTACKER, addr) else {
                continue;
            };
            let device = &devices[i % devices.len()];
            let _ = s.write_all(live_request(device, &space).as_bytes());
            held.push(s);
        }
        held
    });

    // The couple, meanwhile, at a device's pace, until the attack is over and the slow
    // bodies' grace (5 s) has passed.
    let mut rounds = 0;
    let mut most_fds = 0;
    let mut live = None;
    while !(slow.is_finished() && sockets.is_finished())
        || started.elapsed() < Duration::from_secs(7)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the attack did not end"
        );
        timed(duet_core::protocol::HEALTHZ_PATH, || {
            p.healthz().ok().status
        });
        timed("a read", || {
            p.read(&couple.alex, &couple.id, "").ok().status
        });
        let ev = couple
            .sam
            .changes(couple.id, &couple.key, format!("round {rounds}").as_bytes());
        timed("a push", || p.push(&couple.id, &[&ev]).ok().status);
        if rounds == 10 {
            let (answer, stream) = timed("a live socket", || {
                open_live(Ipv4Addr::LOCALHOST, addr, &couple.alex, &couple.id)
            });
            let answer = answer.expect("an answer to the live socket");
            assert_eq!(
                answer.status,
                101,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            live = Some(stream);
        }
        most_fds = most_fds.max(open_fds(&p));
        rounds += 1;
        // A device's pace (its rate limit allows 20 requests a second).
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(live.is_some(), "the member's live socket was opened");
    let slow = slow.join().expect("slow bodies");
    let sockets = sockets.join().expect("socket attempts");
    assert!(rounds >= 30, "only {rounds} rounds");

    // Every slow body was answered and closed long before the 60 s request timeout:
    // cut off for its rate (408) or refused for its address (429).
    let mut cut = 0;
    for (opened, mut s) in slow {
        if let Some(r) = read_answer(&mut s, Duration::from_secs(10)) {
            let e = r.error();
            match r.status {
                408 => {
                    assert_eq!(e.error, ErrorCode::Timeout);
                    assert!(e.message.contains("slower than"), "{}", e.message);
                    cut += 1;
                }
                429 => assert_eq!(e.error, ErrorCode::RateLimited),
                other => panic!("a slow body got {other}: {}", e.message),
            }
        }
        // Closed by the relay: end of stream (or a reset), not a timeout.
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut rest = Vec::new();
        if let Err(e) = s.read_to_end(&mut rest) {
            assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        }
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "a slow body was held until the request timeout"
        );
    }
    assert!(cut >= 1, "no slow body was cut off for its rate");

    // The attacker opened at most its address's share of live sockets.
    let mut opened = 0;
    for mut s in sockets {
        if let Some(r) = read_answer(&mut s, Duration::from_millis(200))
            && r.status == 101
        {
            opened += 1;
        }
    }
    assert!(
        opened <= MAX_LIVE_PER_IP,
        "{opened} live sockets for one address"
    );
    // What the relay held open stayed bounded by the per-address caps, far from the
    // thousands of sockets thrown at it.
    assert!(
        most_fds < MAX_CONNECTIONS_PER_IP + 100,
        "the relay held {most_fds} descriptors"
    );
    eprintln!(
        "{rounds} rounds served; {cut} slow bodies cut off; {opened} live sockets for the \
         attacker; at most {most_fds} descriptors open"
    );
}

#[test]
fn with_300_slow_bodies_and_2000_socket_attempts_from_one_address_a_member_elsewhere_is_served_within_a_second()
 {
    under_attack(Attack {
        slow_bodies: 300,
        socket_attempts: 2000,
    });
}

/// Caps small enough to reach with a few sockets.
const PER_SPACE: usize = 3;
const PER_ADDRESS: usize = 5;
const CONNECTIONS_PER_ADDRESS: usize = PER_ADDRESS + 1;

#[test]
fn live_sockets_are_capped_per_person_per_space_and_per_address_count_as_connections_and_another_space_still_gets_one()
 {
    let (space, address, connections) = (
        PER_SPACE.to_string(),
        PER_ADDRESS.to_string(),
        CONNECTIONS_PER_ADDRESS.to_string(),
    );
    let p = Proc::start_with(&[
        "--max-live-per-space",
        &space,
        "--max-live-per-ip",
        &address,
        "--max-connections-per-ip",
        &connections,
    ]);
    let couple = Space::create(&p);
    let (x, x_devices, x_partner) = shared_space(&p, 2, true);
    let x_partner = x_partner.expect("a partner");
    let (y, y_devices) = attackers_space(&p, 1);
    let (z, z_devices) = attackers_space(&p, 1);
    let refusal = |answer: Option<Reply>, what: &str| {
        let r = answer.expect("an answer");
        assert_eq!(
            r.status,
            429,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let e = r.error();
        assert_eq!(e.error, ErrorCode::RateLimited);
        assert!(e.message.contains(what), "{}", e.message);
        assert!(r.header("retry-after").is_some());
    };

    // One space: one person's devices take half its sockets (rounded up), whichever of
    // them asks, and leave the rest to the partner; then the space is full.
    let mut held = Vec::new();
    for i in 0..PER_SPACE.div_ceil(2) {
        let (answer, stream) = open_live_once_connected(ATTACKER, p.addr, &x_devices[i % 2], &x);
        assert_eq!(answer.expect("an answer").status, 101);
        held.push(stream);
    }
    let (answer, refused) = open_live_once_connected(ATTACKER, p.addr, &x_devices[1], &x);
    refusal(answer, "for this person's devices in this space");
    drop(refused);
    for _ in PER_SPACE.div_ceil(2)..PER_SPACE {
        let (answer, stream) = open_live_once_connected(ATTACKER, p.addr, &x_partner, &x);
        assert_eq!(answer.expect("an answer").status, 101);
        held.push(stream);
    }
    let (answer, refused) = open_live_once_connected(ATTACKER, p.addr, &x_partner, &x);
    refusal(answer, "for this space");
    drop(refused);

    // Other spaces from the same address: up to the address's cap.
    for _ in PER_SPACE..PER_ADDRESS {
        let (answer, stream) = open_live_once_connected(ATTACKER, p.addr, &y_devices[0], &y);
        assert_eq!(answer.expect("an answer").status, 101);
        held.push(stream);
    }
    let (answer, refused) = open_live_once_connected(ATTACKER, p.addr, &z_devices[0], &z);
    refusal(answer, "from this address");
    drop(refused);

    // The live sockets are connections of the address: one more connection fits (once
    // the refused ones are closed), the next is refused at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let idle = loop {
        let mut s = connect_from(ATTACKER, p.addr).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
            .expect("write");
        match read_answer(&mut s, Duration::from_secs(5)) {
            Some(r) if r.status == 200 => break s,
            other => assert!(
                Instant::now() < deadline,
                "the last connection slot never came free: {other:?}"
            ),
        }
    };
    let mut over = connect_from(ATTACKER, p.addr).expect("connect");
    let _ = over.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n");
    refusal(
        read_answer(&mut over, Duration::from_secs(5)),
        "too many open connections",
    );

    // The couple, on another address and space, is served and gets its live socket.
    let (answer, _couples) = open_live(Ipv4Addr::LOCALHOST, p.addr, &couple.alex, &couple.id);
    assert_eq!(answer.expect("an answer").status, 101);
    assert_eq!(p.read(&couple.sam, &couple.id, "").ok().status, 200);
    assert_eq!(
        http(p.addr, "GET", duet_core::protocol::HEALTHZ_PATH, &[], b"")
            .ok()
            .status,
        200
    );

    // A closed socket gives its slots back: the space's next device gets one.
    drop(idle);
    held.remove(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (answer, stream) = open_live(ATTACKER, p.addr, &x_devices[0], &x);
        if answer.as_ref().is_some_and(|r| r.status == 101) {
            held.push(stream);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed socket's slot never came back: {answer:?}"
        );
    }
}

/// The line `Max open files  SOFT  HARD  files` of /proc/PID/limits.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-file limit in {limits}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

#[test]
fn the_relay_raises_its_soft_open_file_limit_at_start_and_sizes_its_caps_from_it() {
    let has_prlimit = Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_prlimit {
        eprintln!(
            "skipped: the prlimit binary (util-linux) is not installed, so the relay cannot \
             be started under a small open-file limit"
        );
        return;
    }
    // Room to raise: the soft limit goes up to the hard one.
    let p = Proc::start_logged_under(&["prlimit", "--nofile=1024:4096"], &[]);
    assert_eq!(
        open_file_limits(p.pid()),
        ("4096".to_string(), "4096".to_string())
    );
    let log = p.log();
    assert!(
        log.contains("open-file limit raised from 1024 to 4096 (hard limit 4096)"),
        "{log}"
    );
    assert!(
        log.contains("sized from the open-file limit 4096: 4032 connections"),
        "{log}"
    );
    assert_eq!(p.healthz().ok().status, 200);

    // No room: the caps shrink to what the limit allows, and the relay says so.
    let p = Proc::start_logged_under(&["prlimit", "--nofile=256:256"], &[]);
    let log = p.log();
    assert!(
        log.contains("max_connections lowered from 4096 to 192 to fit the open-file limit"),
        "{log}"
    );
    assert!(
        log.contains("max_live_sockets lowered from 3072 to 144 to fit max_connections (192)"),
        "{log}"
    );
    assert!(
        log.contains("sized from the open-file limit 256: 192 connections"),
        "{log}"
    );
    assert_eq!(p.healthz().ok().status, 200);
}

/// Opens a push from `from` that declares `declared` bytes and sends one; the relay
/// either holds it (waiting for the body) or answers it at once.
fn slow_push(from: Ipv4Addr, to: SocketAddr, path: &str, declared: usize) -> TcpStream {
    let mut stream = connect_from(from, to).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: relay\r\nContent-Length: {declared}\r\n\r\n\0"
    )
    .expect("write the head");
    stream
}

#[test]
fn strangers_on_nine_addresses_trickling_pushes_take_neither_the_push_memory_nor_the_slots() {
    let p = Proc::start();
    let mut s = Space::create(&p);
    // Each push declares 16 MB and sends one byte. Counted from what they declare, four
    // addresses held the whole push memory (1 GiB: 64 MiB each, a quarter per address)
    // and eight filled the 256 slots of requests in flight (32 per address): every
    // couple's push was answered 503 for as long as they kept it up.
    let path = common::events_path(&SpaceId::generate());
    let mut held: Vec<TcpStream> = Vec::new();
    for host in 2..=10u8 {
        let from = Ipv4Addr::new(127, 0, 0, host);
        held.extend((0..30).map(|_| slow_push(from, p.addr, &path, 16_000_000)));
    }
    // The last one's head is in: the relay has them all (one connection each).
    let mut last = slow_push(Ipv4Addr::new(127, 0, 0, 11), p.addr, &path, 16_000_000);
    assert!(
        read_answer(&mut last, Duration::from_millis(200)).is_none(),
        "a trickling push is held, not refused"
    );
    let ev = s
        .alex
        .changes(s.id, &s.key, b"rated while strangers trickled");
    let r = timed("the couple's push", || p.push(&s.id, &[&ev]));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let read = timed("the couple's read", || {
        p.read(&s.alex, &s.id, "").ok().status
    });
    assert_eq!(read, 200);
    drop(held);
}

#[test]
fn a_strangers_pairing_claim_of_megabytes_is_refused_before_it_is_read() {
    let p = Proc::start();
    // 16 MB declared, a few bytes sent: the relay answers 413 without waiting for the
    // rest (it held up to 16 MiB per claim, outside the push memory).
    let path = duet_core::protocol::pairing_claim_path(1);
    let mut claim = slow_push(ATTACKER, p.addr, &path, 16_000_000);
    let answer =
        read_answer(&mut claim, Duration::from_secs(5)).expect("an answer before the body is sent");
    assert_eq!(
        answer.status,
        413,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    // In the words of a pairing's limit, not a push's.
    let said = String::from_utf8_lossy(&answer.body);
    assert!(
        said.contains("a pairing request's body is at most"),
        "{said}"
    );
}

#[test]
fn a_stranger_sweeping_the_short_codes_is_slowed_and_the_couple_is_not() {
    let p = Proc::start();
    // Looking up a code (the offer) or claiming one is a try: the first 16 of an
    // address go at once, then one every half minute; a sweep of the open codes to
    // burn them takes hours instead of seconds.
    let mut answers = Vec::new();
    for n in 1..=17u32 {
        let r = request_from(
            ATTACKER,
            p.addr,
            "GET",
            &duet_core::protocol::pairing_path_of(n),
            b"",
        );
        answers.push(r.status);
    }
    assert!(answers[..16].iter().all(|s| *s == 404), "{answers:?}");
    assert_eq!(answers[16], 429, "{answers:?}");
    let couple = request_from(
        Ipv4Addr::LOCALHOST,
        p.addr,
        "GET",
        &duet_core::protocol::pairing_path_of(1),
        b"",
    );
    assert_eq!(couple.status, 404, "another address tries on");
}

/// A client's WebSocket frame of `len` zero bytes, masked with the zero key, not final
/// (a message that goes on).
fn unfinished_frame(first: bool, len: usize) -> Vec<u8> {
    let mut frame = vec![if first { 0x02 } else { 0x00 }, 0x80 | 127];
    frame.extend_from_slice(&(len as u64).to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.resize(frame.len() + len, 0);
    frame
}

#[test]
fn a_live_socket_that_sends_a_large_message_is_closed_before_the_relay_gathers_it() {
    let p = Proc::start_with(&[]);
    let (x, devices) = attackers_space(&p, 1);
    let (answer, mut socket) = open_live(ATTACKER, p.addr, &devices[0], &x);
    assert_eq!(answer.expect("an answer").status, 101);
    // One message that never ends: frames of 64 KiB, a mebibyte in all (64 MiB per socket
    // were gathered before, outside every memory budget).
    let mut sent = 0;
    for i in 0..16 {
        if socket
            .write_all(&unfinished_frame(i == 0, 64 * 1024))
            .is_err()
        {
            break; // closed already
        }
        sent += 1;
    }
    // The relay closes the socket (after its cursor message, maybe a close frame); a
    // socket that is kept reads nothing more until the deadline.
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break, // reset
        }
        assert!(
            Instant::now() < deadline,
            "the socket is still open after {sent} frames of 64 KiB"
        );
    }
    // The relay goes on serving the space.
    let (again, _socket) = open_live(ATTACKER, p.addr, &devices[0], &x);
    assert_eq!(again.expect("an answer").status, 101);
}

#[test]
fn a_pairing_claim_that_trickles_in_is_cut_off_like_a_slow_push() {
    let p = Proc::start_with(&["--body-grace-secs", "1"]);
    // A claim declared at 30,000 bytes, sent a byte at a time: a push so slow is cut off
    // after the grace; a claim was held until the 60 s request timeout.
    let path = duet_core::protocol::pairing_claim_path(1);
    let mut claim = slow_push(ATTACKER, p.addr, &path, 30_000);
    let started = Instant::now();
    let answer = loop {
        let _ = claim.write_all(b"x");
        if let Some(answer) = read_answer(&mut claim, Duration::from_millis(500)) {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a claim trickling in is still held"
        );
    };
    assert_eq!(
        answer.status,
        408,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// A connection over its address's cap is answered once its request has begun, and read
/// while the client still sends: answered at once, an HTTP client that had not sent its
/// request yet took the answer for a broken connection ("received unexpected message"),
/// and `duet sync` said the relay could not be reached instead of waiting to retry.
#[test]
fn a_connection_over_its_addresss_cap_is_answered_429_once_its_request_is_sent() {
    let p = Proc::start_with(&["--max-connections-per-ip", "1"]);
    // The address's one connection, accepted once it is answered.
    let mut held = connect_from(ATTACKER, p.addr).expect("connect");
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        .expect("write");
    let first = read_answer(&mut held, Duration::from_secs(5)).expect("an answer");
    assert_eq!(first.status, 200);
    for _ in 0..3 {
        let mut s = connect_from(ATTACKER, p.addr).expect("connect");
        // Nothing comes before the request.
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        let early = s.read(&mut byte);
        assert!(
            matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "answered before the request: {early:?}"
        );
        // A request with a body larger than one read: the relay takes it all in.
        let body = vec![b'x'; 32 * 1024];
        let head = format!(
            "POST /healthz HTTP/1.1\r\nHost: relay\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())
            .and_then(|()| s.write_all(&body))
            .expect("the relay reads the request");
        let r = read_answer(&mut s, Duration::from_secs(5)).expect("the refusal");
        assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.error().message.contains("open connections"));
        assert_eq!(r.header("retry-after"), Some("5"));
    }
}

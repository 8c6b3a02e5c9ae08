//! Short pairing codes (`duet invite --short`, `duet join CODE --relay URL`) through the
//! real binaries and relay: partners pair with a code read aloud; a wrong code fails on
//! both sides and burns the code (the right one is refused afterwards, and a second claim
//! is refused); the relay's database and log hold nothing of the space key or the long
//! code.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout};

use base64::Engine;
use duet_core::invite::InviteCode;
use duet_core::pairing_code::ShortCode;
use duet_core::protocol::{ErrorCode, pairing_claim_path};
use duet_tests::{Device, Relay};

/// Alex's `duet invite --short --json`, running until the partner used the code.
struct Creator {
    child: Child,
    stdout: BufReader<ChildStdout>,
    code: String,
}

impl Creator {
    /// Starts it and reads the code from its first line.
    fn start(alex: &Device) -> Creator {
        let mut child = alex
            .command(&["invite", "--short", "--json", "--expires", "5m"])
            .spawn()
            .expect("duet invite --short starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        // Returns at once if the process ends, so this cannot hang.
        stdout.read_line(&mut first).expect("read the first line");
        let line: serde_json::Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {first:?}"));
        let code = line["code"].as_str().expect("a code").to_string();
        Creator {
            child,
            stdout,
            code,
        }
    }

    /// Waits for it to end: exit code, the rest of stdout, stderr.
    fn finish(mut self) -> (i32, String, String) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).expect("stdout");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).expect("stderr");
        }
        let status = self.child.wait().expect("waits");
        (status.code().unwrap_or(-1), rest, err)
    }
}

impl Drop for Creator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alex, set up on `relay` with one goal.
fn alex(relay: &Relay) -> Device {
    let a = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a
}

/// Pairs Sam with Alex by a short code typed as people do (upper case, spaces); returns
/// Sam.
fn pair_by_short_code(relay: &Relay, a: &Device) -> Device {
    let creator = Creator::start(a);
    let code = ShortCode::parse(&creator.code).expect("a short code");
    assert!((1..=999).contains(&code.nameplate), "{code}");
    let typed = creator.code.to_uppercase().replace('-', " ");
    let b = Device::new();
    b.ok(&["join", &typed, "--relay", &relay.url, "--name", "Sam"]);
    let (status, rest, err) = creator.finish();
    assert_eq!(status, 0, "{err}");
    assert!(rest.contains("\"delivered\":true"), "{rest}");
    b
}

#[test]
fn partners_pair_with_a_short_code_through_the_relay() {
    let relay = Relay::start();
    let a = alex(&relay);
    let b = pair_by_short_code(&relay, &a);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(duet_tests::shared_titles(&b), ["Weekly check-in"]);
    b.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    assert_eq!(
        duet_tests::shared_titles(&a).len(),
        2,
        "Alex sees Sam's goal too"
    );
}

/// The same code with its first word changed: what a mishearing gives.
fn misheard(code: &str) -> String {
    let mut c = ShortCode::parse(code).expect("a short code");
    c.words[0] = c.words[0].wrapping_add(1);
    c.to_string()
}

#[test]
fn a_wrong_code_fails_on_both_sides_and_burns_the_code() {
    let relay = Relay::start();
    let a = alex(&relay);

    // A misheard word: both sides fail, and the right code is refused afterwards.
    let creator = Creator::start(&a);
    let b = Device::new();
    let wrong = b.run(&[
        "join",
        &misheard(&creator.code),
        "--relay",
        &relay.url,
        "--name",
        "Sam",
    ]);
    assert_ne!(wrong.code, 0);
    assert!(
        wrong.stderr.contains("the code did not match"),
        "{}",
        wrong.stderr
    );
    assert!(!b.db().exists(), "nothing was set up on Sam's side");
    let right = creator.code.clone();
    let (status, _, err) = creator.finish();
    assert_ne!(status, 0);
    assert!(err.contains("tried with other words"), "{err}");
    let states = a.json(&["invite", "list"]);
    assert_eq!(
        states[0]["state"], "revoked",
        "the invite behind the code: {states}"
    );
    let again = b.run(&["join", &right, "--relay", &relay.url, "--name", "Sam"]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("no short code"), "{}", again.stderr);

    // An attacker's claim takes the code's one try: a second claim (the attacker's retry,
    // or the partner's right code) is refused, and Alex hears of it.
    let creator = Creator::start(&a);
    let nameplate = ShortCode::parse(&creator.code).expect("code").nameplate;
    let claim = serde_json::json!({
        "msg": base64::engine::general_purpose::STANDARD.encode([7u8; 33]),
        "confirm": "00".repeat(32),
    })
    .to_string();
    let claim_once = || {
        duet_testkit::http::http(
            relay.addr,
            "POST",
            &pairing_claim_path(nameplate),
            &[("content-type", "application/json")],
            claim.as_bytes(),
        )
    };
    assert_eq!(claim_once().status, 200);
    let retry = claim_once();
    assert_eq!(retry.status, 410);
    assert_eq!(retry.error().error, ErrorCode::PairingUsed);
    let late = b.run(&[
        "join",
        &creator.code,
        "--relay",
        &relay.url,
        "--name",
        "Sam",
    ]);
    assert_ne!(late.code, 0);
    assert!(late.stderr.contains("already used"), "{}", late.stderr);
    let (status, _, err) = creator.finish();
    assert_ne!(status, 0);
    assert!(err.contains("tried with other words"), "{err}");
}

#[test]
fn the_relay_keeps_nothing_that_reveals_the_space_key() {
    let relay = Relay::start_logged(&[]);
    let a = alex(&relay);
    // The long code Alex could have printed instead: the same space key (made before
    // the pairing: once Sam has joined, no partner code is given).
    let long = a.json(&["invite"])["code"]
        .as_str()
        .expect("code")
        .to_string();
    let b = pair_by_short_code(&relay, &a);
    b.ok(&["sync"]);
    let key = *InviteCode::decode(&long).expect("decodes").key.as_bytes();
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let needles = [
        hex::encode(key),
        b64.trim_end_matches('=').to_string(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
        duet_core::invite::PREFIX.to_string(),
    ];
    let log = relay.log();
    for needle in &needles {
        assert!(
            !duet_tests::file_contains(&relay.db, needle),
            "{needle} in the database"
        );
        assert!(!log.contains(needle.as_str()), "{needle} in the log");
    }
    let dump = duet_tests::dump_sqlite(&relay.db).join("\n");
    for needle in &needles {
        assert!(!dump.contains(needle.as_str()), "{needle} in a table");
    }
    assert!(!dump.is_empty(), "the dump read the tables");
}

#[test]
fn a_short_code_the_relay_could_not_take_leaves_no_open_invite_behind() {
    let mut relay = Relay::start();
    let a = alex(&relay);
    a.ok(&["sync"]);
    relay.kill();
    let failed = a.run(&["invite", "--short"]);
    assert_ne!(failed.code, 0, "{failed:?}");
    assert!(
        failed.stderr.contains("no code was made"),
        "{}",
        failed.stderr
    );
    relay.restart();
    a.ok(&["sync"]);
    assert_eq!(
        a.open_invites(),
        0,
        "an invite whose code nobody saw is open: {}",
        a.ok(&["invite", "list"])
    );
}

#[test]
fn a_short_code_typed_without_its_number_is_named_as_not_a_short_code() {
    // Given with --relay, as short codes are, but starting with a word: it is no long
    // code either, so it is a short code mistyped, not "a long code names its relay".
    let d = Device::new();
    let r = d.run(&[
        "join",
        "aardvark-adroitness-abacus",
        "--relay",
        "http://127.0.0.1:9",
        "--name",
        "Sam",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("this is not a short code") && !r.stderr.contains("long code names"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_short_codes_end_is_told_by_this_devices_clock_when_the_relays_is_behind() {
    if !duet_tests::faketime_or_skip() {
        return;
    }
    // The relay's clock is 20 minutes behind: its mailbox for a 30-minute code ends 10
    // minutes from now by its own clock, which is 30 minutes from now by this device's.
    let relay = duet_tests::relay_with_clock("-20m");
    let a = alex(&relay);
    let mut child = a
        .command(&["invite", "--short", "--json", "--expires", "30m"])
        .spawn()
        .expect("duet invite --short starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read the first line");
    let _ = child.kill();
    let _ = child.wait();
    let line: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
    let ends = chrono::DateTime::parse_from_rfc3339(line["expires_at"].as_str().expect("ends"))
        .expect("an RFC 3339 time")
        .timestamp_millis();
    let in_minutes = (ends - duet_core::ids::now_ms()) as f64 / 60_000.0;
    assert!(
        (28.0..=31.0).contains(&in_minutes),
        "ends in {in_minutes:.1} minutes by this device's clock: {first}"
    );
}

//! Who may create a space on a relay (issue 13, finding 5: strangers filled the disk).
//!
//! Against the real `duet-relay` binary: a stranger's genesis, signed with a real
//! duet-core identity, is refused without a creation token (and with a wrong one) and
//! nothing of it is stored; with a token it is created. A couple pairs through a token
//! relay with the real `duet` binary, the partner needing no token. Creations are
//! bounded per client address, and refused once the database is past 90% of
//! `--max-db-bytes` while the couple already there keeps pushing.

use duet_core::event::{Event, SpaceId};
use duet_core::identity::Identity;
use duet_core::protocol::{H_CREATE_TOKEN, encode_batch};
use duet_tests::relay_client::Dev;
use duet_tests::{Device, Relay, TOKEN_FILE_MODE, file_contains, http_post_with};
use serde_json::Value;

const TOKEN: &str = "couples-token-5e1f";

/// Pushes `events` to `space` with the creation token `token` (if any); the status and
/// the parsed JSON answer.
fn push(relay: &Relay, space: SpaceId, events: &[&Event], token: Option<&str>) -> (u16, Value) {
    let body = encode_batch(events.iter().map(|e| e.bytes()));
    let headers: Vec<(&str, &str)> = token.map(|t| (H_CREATE_TOKEN, t)).into_iter().collect();
    let (status, text) = http_post_with(
        &relay.url,
        &format!("/v1/spaces/{space}/events"),
        &body,
        &headers,
    );
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json)
}

/// The genesis of a new personal space by `id`'s device (its first event there).
fn personal_genesis(id: &Identity, space: SpaceId) -> Event {
    let mut device = Dev {
        id: id.clone(),
        seq: 0,
        prev: [0; 32],
    };
    device.genesis(space, true)
}

/// A stranger's device with the genesis of a new shared space.
fn stranger() -> (Dev, SpaceId, Event) {
    let mut eve = Dev::new("Eve");
    let space = SpaceId::generate();
    let genesis = eve.genesis(space, false);
    (eve, space, genesis)
}

#[test]
fn a_strangers_genesis_is_refused_without_the_creation_token_and_nothing_is_stored() {
    let relay = Relay::start_with(&["--create-token", TOKEN]);
    let (mut eve, space, genesis) = stranger();

    let (status, body) = push(&relay, space, &[&genesis], None);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "create_token_required", "{body}");
    let (status, body) = push(&relay, space, &[&genesis], Some("guessed-token"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "bad_create_token", "{body}");
    // A personal genesis is no way around it for a device that is a member nowhere.
    let personal_space = SpaceId::generate();
    let mallory = Dev::new("Mallory");
    let personal = personal_genesis(&mallory.id, personal_space);
    let (status, body) = push(&relay, personal_space, &[&personal], None);
    assert_eq!(status, 403, "{body}");
    assert!(
        !file_contains(&relay.db, &space.to_string())
            && !file_contains(&relay.db, &personal_space.to_string()),
        "a refused creation leaves nothing in the database"
    );

    let (status, body) = push(&relay, space, &[&genesis], Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    // Once the space exists its members push without the token.
    let next = eve.changes(space, &duet_core::crypto::SpaceKey::generate(), b"hello");
    let (status, body) = push(&relay, space, &[&next], None);
    assert_eq!(status, 200, "{body}");
    assert!(file_contains(&relay.db, &space.to_string()));

    // A member creates its one personal space without the token, and no more.
    let first = SpaceId::generate();
    let (status, body) = push(&relay, first, &[&personal_genesis(&eve.id, first)], None);
    assert_eq!(status, 200, "{body}");
    let second = SpaceId::generate();
    let (status, body) = push(&relay, second, &[&personal_genesis(&eve.id, second)], None);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("create_token_required"))
    );
}

#[test]
fn without_tokens_the_relay_makes_one_keeps_it_private_and_requires_it() {
    let relay = Relay::start_with(&[TOKEN_FILE_MODE]);
    let mut file = relay.db.as_os_str().to_owned();
    file.push(".create-token");
    let file = std::path::PathBuf::from(file);
    let token = std::fs::read_to_string(&file).expect("the relay wrote its token file");
    let token = token.trim();
    assert_eq!(token.len(), 32, "{token:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is the operator's only");
    }
    let (_, space, genesis) = stranger();
    let (status, body) = push(&relay, space, &[&genesis], None);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("create_token_required"))
    );
    let (status, body) = push(&relay, space, &[&genesis], Some(token));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_couple_pairs_through_a_token_relay_and_only_the_one_who_creates_needs_the_token() {
    let relay = Relay::start_with(&["--create-token", TOKEN]);

    // Without the token, init works offline but the spaces cannot be created.
    let early = Device::new();
    early.ok(&["init", "--name", "Early", "--relay", &relay.url]);
    let invite = early.run(&["invite"]);
    assert_ne!(invite.code, 0, "no code the partner could not use");
    assert!(
        invite
            .stderr
            .contains("only lets couples with a creation token"),
        "{}",
        invite.stderr
    );
    let refused = early.run(&["sync"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("only lets couples with a creation token")
            && refused.stderr.contains("duet relay set")
            && refused.stderr.contains("DUET_CREATE_TOKEN="),
        "{}",
        refused.stderr
    );
    // `status` says the spaces are not on the relay (its `refused` counts others'
    // events, and there are none).
    let status = early.ok(&["status"]);
    assert_eq!(
        status.matches("not on the relay yet").count(),
        2,
        "{status}"
    );
    // The token given later makes the next sync create them; the invite whose code was
    // never shown does not become a live one with them. Given in the environment, where
    // other users of the machine cannot read it (a command line is in their `ps`).
    early.ok_env(
        &["relay", "set", &relay.url],
        &[("DUET_CREATE_TOKEN", TOKEN)],
    );
    early.ok(&["sync"]);
    assert!(!early.ok(&["status"]).contains("not on the relay"));
    assert_eq!(early.open_invites(), 0, "{}", early.ok(&["invite", "list"]));

    let alex = Device::new();
    let out = alex.ok(&[
        "init", "--name", "Alex", "--relay", &relay.url, "--token", TOKEN,
    ]);
    assert!(!out.contains(TOKEN), "the token is not printed");
    alex.ok(&["goal", "add", "Weekly walk", "--area", "quality-time"]);
    let code = alex.json(&["invite"])["code"]
        .as_str()
        .expect("invite code")
        .to_string();
    let sam = Device::new();
    sam.ok(&["join", &code, "--name", "Sam"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    assert_eq!(sam.json(&["goal", "list"])[0]["title"], "Weekly walk");
    sam.ok(&["reflect", "--private", "only mine"]);
    let synced = sam.run(&["sync"]);
    assert_eq!(
        synced.code, 0,
        "Sam's personal space was created: {}",
        synced.stderr
    );
    for d in [&alex, &sam] {
        let status = d.run(&["status"]);
        assert!(!status.stdout.contains(TOKEN) && !status.stderr.contains(TOKEN));
    }
}

/// A token the relay does not take is said by `init` itself, as the app's setup says it
/// (init said "Welcome" and nothing more, and the first sign came at `invite` or
/// `sync`); `invite --short` says the relay refused, not that it cannot be reached.
#[test]
fn a_wrong_creation_token_is_said_at_init_and_a_short_code_names_the_refusal() {
    let relay = Relay::start_with(&["--create-token", TOKEN]);
    let lee = Device::new();
    let init = lee.run(&[
        "init",
        "--name",
        "Lee",
        "--relay",
        &relay.url,
        "--token",
        "not-the-token",
    ]);
    assert_eq!(init.code, 0, "the device is set up all the same: {init:?}");
    assert!(
        init.stderr.contains("this device is set up, but")
            && init.stderr.contains("duet relay set"),
        "{}",
        init.stderr
    );
    let short = lee.run(&["invite", "--short"]);
    assert_eq!(short.code, 1, "{short:?}");
    assert!(
        short.stderr.contains("it refused this device's sync")
            && !short.stderr.contains("cannot be reached"),
        "{}",
        short.stderr
    );
    // The right token: nothing to say beyond the welcome.
    let alex = Device::new();
    let init = alex.run(&[
        "init", "--name", "Alex", "--relay", &relay.url, "--token", TOKEN,
    ]);
    assert_eq!((init.code, init.stderr.as_str()), (0, ""), "{init:?}");
    assert!(!alex.ok(&["status"]).contains("not on the relay"));
}

#[test]
fn creations_per_address_are_limited() {
    let relay = Relay::start_with(&["--create-token", TOKEN, "--max-creations-per-ip", "2"]);
    for _ in 0..2 {
        let (_, space, genesis) = stranger();
        let (status, body) = push(&relay, space, &[&genesis], Some(TOKEN));
        assert_eq!(status, 200, "{body}");
    }
    let (_, space, genesis) = stranger();
    let (status, body) = push(&relay, space, &[&genesis], Some(TOKEN));
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "too_many_spaces", "{body}");
    assert!(!file_contains(&relay.db, &space.to_string()));
}

/// A creator's address is written only where the per-address limit counts it (it is in
/// the database, and in its backups, for 24 hours).
#[test]
fn a_creators_address_is_recorded_only_while_the_per_address_limit_needs_it() {
    for (limit, recorded) in [("2", true), ("0", false)] {
        let relay = Relay::start_with(&["--create-token", TOKEN, "--max-creations-per-ip", limit]);
        let (_, space, genesis) = stranger();
        let (status, body) = push(&relay, space, &[&genesis], Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        let conn = rusqlite::Connection::open(&relay.db).expect("relay db");
        let address: Option<String> = conn
            .query_row("SELECT address FROM creations", [], |r| r.get(0))
            .expect("the creation");
        assert_eq!(address.is_some(), recorded, "limit {limit}: {address:?}");
    }
}

/// The relay stores the partner's join of the shared space, then refuses their personal
/// space (past the address's creation limit): the joined device is kept, so the couple
/// is not left with a member nobody holds the keys of, and its next sync finishes.
#[test]
fn a_join_refused_half_way_keeps_the_device_that_joined_and_finishes_later() {
    let relay = Relay::start_with(&["--create-token", TOKEN, "--max-creations-per-ip", "2"]);
    let alex = Device::new();
    alex.ok(&[
        "init", "--name", "Alex", "--relay", &relay.url, "--token", TOKEN,
    ]);
    let sam = Device::new();
    // Joined: only Sam's personal space waits for the relay.
    let join = sam.run(&["join", &alex.invite_code(), "--name", "Sam"]);
    assert_eq!(join.code, 0, "{join:?}");
    assert!(
        join.stdout.contains("Joined the shared space with Alex"),
        "{join:?}"
    );
    assert!(
        join.stderr.contains("the first sync did not finish")
            && join.stderr.contains("too_many_spaces")
            && join
                .stderr
                .contains("your personal space (private reflections) is not on")
            && !join.stderr.contains("joined locally"),
        "{}",
        join.stderr
    );
    alex.ok(&["sync"]);
    assert_eq!(
        alex.json(&["status"])["spaces"][0]["members"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // The device that joined is Sam's, kept: it reads and writes the shared space.
    sam.ok(&["reflect", "Glad we started"]);
    let still = sam.run(&["sync"]);
    assert!(still.stderr.contains("too_many_spaces"), "{}", still.stderr);
    // It passes tomorrow as it is: a failure to try later (exit 3), as the README says.
    assert_eq!(still.code, 3, "{still:?}");
    // Said as it is: the shared space synced (its line is printed), the personal did not.
    assert!(still.stdout.contains("shared: sent 1 change"), "{still:?}");
    assert!(
        still.stderr.contains(
            "the personal space's sync did not finish (the shared space synced); nothing was lost"
        ),
        "{}",
        still.stderr
    );
    alex.ok(&["sync"]);
    assert!(alex.ok(&["reflections"]).contains("Glad we started"));
}

#[test]
fn creations_stop_at_90_percent_of_the_database_cap_while_a_couple_keeps_pushing() {
    const CAP: u64 = 2 * 1024 * 1024;
    let relay = Relay::start_with(&[
        "--create-token",
        TOKEN,
        "--max-db-bytes",
        &CAP.to_string(),
        "--max-creations-per-ip",
        "0",
        "--rate-per-ip",
        "0",
        "--rate-per-device",
        "0",
    ]);
    let alex = Device::new();
    alex.ok(&[
        "init", "--name", "Alex", "--relay", &relay.url, "--token", TOKEN,
    ]);
    alex.ok(&["sync"]);

    // A member fills its own space with incompressible events until the relay stops
    // creating spaces; each filler is under 2% of the cap, so the database stays below
    // it.
    let (mut filler, space, genesis) = stranger();
    assert_eq!(push(&relay, space, &[&genesis], Some(TOKEN)).0, 200);
    let key = duet_core::crypto::SpaceKey::generate();
    let mut refused = None;
    for _ in 0..200 {
        let noise = duet_core::ids::random_bytes::<{ 32 * 1024 }>();
        let ev = filler.changes(space, &key, &noise);
        let (status, body) = push(&relay, space, &[&ev], None);
        assert_eq!(status, 200, "the filler fits under the cap: {body}");
        let (_, new_space, new_genesis) = stranger();
        let (status, body) = push(&relay, new_space, &[&new_genesis], Some(TOKEN));
        if status != 200 {
            refused = Some((status, body, new_space));
            break;
        }
    }
    let (status, body, new_space) = refused.expect("creations stop before the cap");
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"], "storage_full", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("90%")),
        "{body}"
    );
    assert!(!file_contains(&relay.db, &new_space.to_string()));

    // The couple already there keeps pushing into the room kept for it.
    alex.ok(&["goal", "add", "Still syncing", "--area", "quality-time"]);
    let synced = alex.run(&["sync"]);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
}

#[test]
fn a_person_creates_one_personal_space_without_the_token_however_many_devices_they_add() {
    let relay = Relay::start_with(&["--create-token", TOKEN]);
    let (mut eve, space, genesis) = stranger();
    let (status, body) = push(&relay, space, &[&genesis], Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let in_an_hour = duet_core::ids::now_ms() + 3_600_000;
    // Eve adds devices of her own with device codes; each asks for a personal space of
    // its own without the token (each would hold a whole quota).
    let mut created = 0;
    for i in 0..3 {
        let seed = duet_core::ids::random_bytes::<32>();
        let code = duet_core::event::MembershipOp::Invite {
            invite_key: duet_core::identity::keypair_from_seed(seed).1,
            expires_at: in_an_hour,
            person: Some(eve.person()),
        };
        let code = eve.membership(space, &code);
        let mut device = eve.sibling(&format!("Eve {i}"));
        let join = device.join(space, seed);
        let (status, body) = push(&relay, space, &[&code, &join], None);
        assert_eq!(status, 200, "{body}");
        let own = SpaceId::generate();
        let (status, body) = push(&relay, own, &[&personal_genesis(&device.id, own)], None);
        match status {
            200 => created += 1,
            _ => assert_eq!(body["error"], "create_token_required", "{body}"),
        }
    }
    assert_eq!(created, 1, "one personal space for Eve, not one per device");
    // Her partner, another person, still creates theirs.
    let seed = duet_core::ids::random_bytes::<32>();
    let invite = eve.invite(space, seed, in_an_hour);
    let mut pat = Dev::new("Pat");
    let join = pat.join(space, seed);
    let (status, body) = push(&relay, space, &[&invite, &join], None);
    assert_eq!(status, 200, "{body}");
    let own = SpaceId::generate();
    let (status, body) = push(&relay, own, &[&personal_genesis(&pat.id, own)], None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_invite_works_though_the_relay_refused_to_create_the_personal_space() {
    let relay = Relay::start_with(&["--open-registration", "--max-creations-per-ip", "1"]);
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    // The shared space is the one creation of the day; the personal one is refused.
    let synced = alex.run(&["sync"]);
    assert!(synced.stderr.contains("too_many_spaces"), "{synced:?}");
    let invite = alex.run(&["invite", "--json"]);
    assert_eq!(invite.code, 0, "{invite:?}");
    let code = invite.json()["code"]
        .as_str()
        .expect("the code")
        .to_string();
    assert_eq!(alex.open_invites(), 1, "the invite is kept");
    let sam = Device::new();
    let join = sam.run(&["join", &code, "--name", "Sam"]);
    assert_eq!(join.code, 0, "{join:?}");
    alex.run(&["sync"]);
    assert!(alex.ok(&["device", "list"]).contains("Sam"));
}

/// A client may send its creation token with every genesis (the reference CLI does):
/// a member's first personal space is created without charging it, though the token
/// has created all it may, and a second personal space is still charged and refused.
#[test]
fn a_members_personal_space_sent_with_a_used_up_token_is_created_and_not_charged() {
    let relay = Relay::start_with(&["--create-token", TOKEN, "--max-creations-per-token", "1"]);
    let (eve, space, genesis) = stranger();
    let (status, body) = push(&relay, space, &[&genesis], Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let first = SpaceId::generate();
    let (status, body) = push(
        &relay,
        first,
        &[&personal_genesis(&eve.id, first)],
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    let second = SpaceId::generate();
    let (status, body) = push(
        &relay,
        second,
        &[&personal_genesis(&eve.id, second)],
        Some(TOKEN),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("token_exhausted")),
        "{body}"
    );
    let said = body["message"].as_str().unwrap_or_default();
    assert!(said.contains("already created 1 space,"), "{body}");
}

/// A creator's address older than the per-address window is forgotten though nothing
/// is created after it (a relay for one couple creates nothing after pairing): at the
/// relay's start, and every few minutes while it runs.
#[test]
fn a_creators_address_is_forgotten_after_a_day_without_another_creation() {
    let mut relay = Relay::start_with(&["--create-token", TOKEN, "--max-creations-per-ip", "2"]);
    let (_, space, genesis) = stranger();
    let (status, body) = push(&relay, space, &[&genesis], Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let db = relay.db.clone();
    let address = || -> Option<String> {
        let conn = rusqlite::Connection::open(&db).expect("relay db");
        conn.query_row("SELECT address FROM creations", [], |r| r.get(0))
            .expect("the creation")
    };
    assert!(address().is_some(), "kept while the limit counts it");
    relay.kill();
    let day_and_an_hour = 25 * 60 * 60 * 1000_i64;
    rusqlite::Connection::open(&relay.db)
        .expect("relay db")
        .execute(
            "UPDATE creations SET created_at = created_at - ?1",
            [day_and_an_hour],
        )
        .expect("aged");
    relay.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while address().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the address is still kept"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A token the relay has used up, or none where the relay needs one, is said at `init`
/// as a wrong one is: init said "Welcome" and "`duet invite` to pair" and nothing more,
/// and the first sign came at `invite`.
#[test]
fn a_used_up_or_missing_creation_token_is_said_at_init() {
    let relay = Relay::start_with(&["--create-token", TOKEN, "--max-creations-per-token", "1"]);
    let first = Device::new();
    let init = first.run(&[
        "init", "--name", "Lee", "--relay", &relay.url, "--token", TOKEN,
    ]);
    assert!(init.code == 0 && init.stderr.is_empty(), "{init:?}");
    for args in [&["--token", TOKEN][..], &[][..]] {
        let d = Device::new();
        let mut cmd = vec!["init", "--name", "Kim", "--relay", &relay.url];
        cmd.extend_from_slice(args);
        let init = d.run(&cmd);
        assert_eq!(init.code, 0, "the device is set up all the same: {init:?}");
        assert!(
            init.stderr
                .contains("this device is set up, but the relay refused")
                && init.stderr.contains("--token TOKEN`"),
            "{args:?}: {}",
            init.stderr
        );
        // The same init run again with a token (what the warning asks for): sent to
        // `relay set`, not only to another home or a start over.
        let again = d.run(&[
            "init", "--name", "Kim", "--relay", &relay.url, "--token", "new",
        ]);
        assert!(
            again.code != 0 && again.stderr.contains("duet relay set URL --token TOKEN"),
            "{again:?}"
        );
    }
}

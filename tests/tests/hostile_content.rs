//! A partner with valid keys sends content crafted to crash or stall the other's CLI,
//! through the real relay and binaries: a compressed change that inflates to hundreds of
//! megabytes, a bundle that spins Automerge's parser forever, one whose predecessor
//! count makes Automerge abort the process, a rating nested 20,000 objects deep, and a
//! rating whose level is 2^53-1.
//! The victim's `duet sync` refuses the content quickly and in bounded memory, records
//! the refusal at once (an interrupted sync never reads it again), stops after a few
//! parses that miss their deadline, and `report` and `progress` ignore the value out of
//! range and list it as a problem.

use std::io::Read;
use std::time::{Duration, Instant};

use duet_core::device::Device as CoreDevice;
use duet_core::doc::DocError;
use duet_core::event::{CODEC_BUNDLE, CODEC_RAW, Event, Header, Kind};
use duet_core::store::{SpaceKind, Store};
use duet_tests::{Device, Relay, Run, pair};

/// A bundle body on which Automerge's parser spins forever (a boolean column's run
/// length it cannot read), with a valid checksum.
const SPINNING: &[u8] = include_bytes!("../../core/tests/fixtures/spinning_bundle.bin");
/// A bundle body, with a valid checksum, whose first operation declares 2^33
/// predecessors: Automerge reserves room for them first, and the failed allocation
/// aborts the process.
const BILLION_PREDECESSORS: &[u8] =
    include_bytes!("../../core/tests/fixtures/billion_predecessors_bundle.bin");

/// The couple, paired through the relay, with a goal both have.
fn couple(relay: &Relay) -> (Device, Device) {
    let (alex, sam) = pair(relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    (alex, sam)
}

/// Sam's device signs one `changes` event per plaintext, next in its chain and sealed
/// with the space's current key, as a hostile partner's modified client would, and its
/// ordinary `duet sync` pushes them. Returns the events' hashes (hex).
fn sam_sends(sam: &Device, plaintexts: &[Vec<u8>]) -> Vec<String> {
    let hashes = {
        let mut store = Store::open(&sam.home, false).expect("Sam's store");
        let me = store.require_identity().expect("identity");
        let rec = store.space(SpaceKind::Shared).expect("shared space");
        let epoch = duet_core::sync::fold_state(&store, &rec.id)
            .expect("state")
            .epoch();
        let key = store
            .epoch_keys(&rec.id)
            .expect("keys")
            .get(&epoch)
            .cloned()
            .expect("the current key");
        let (mut seq, mut prev) = store
            .own_head(&rec.id, &me.device_key())
            .expect("head")
            .unwrap_or((0, [0; 32]));
        let mut events = Vec::new();
        for plain in plaintexts {
            seq += 1;
            let header = Header {
                kind: Kind::Changes,
                space: rec.id,
                author: me.device_key(),
                seq,
                prev,
                time: duet_core::ids::now_ms(),
            };
            let ev = Event::changes_at(header, epoch, plain, &key, &me);
            prev = ev.hash();
            events.push(ev);
        }
        store
            .record_own_events(&rec.id, &events, &[])
            .expect("stored as Sam's own");
        events.iter().map(|e| hex::encode(e.hash())).collect()
    };
    sam.ok(&["sync"]);
    hashes
}

/// One change made by Sam's device with plain Automerge on Sam's copy of the shared
/// document, as a modified client would (none of duet's own bookkeeping on Sam's side),
/// as a raw-changes plaintext for [`sam_sends`]. `craft` gets the transaction and Sam's
/// person id.
fn sam_crafts(
    sam: &Device,
    craft: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &str),
) -> Vec<u8> {
    let dev = CoreDevice::open(&sam.home).expect("open Sam's device");
    let (_, doc, _) = dev.load(SpaceKind::Shared).expect("Sam's document");
    let me = Store::open(&sam.home, false)
        .expect("Sam's store")
        .require_identity()
        .expect("identity");
    let mut am = doc.automerge().fork().with_actor(me.actor());
    let mut tx = am.transaction();
    craft(&mut tx, &me.person_id);
    tx.commit();
    let change = am.get_last_local_change().expect("the change").clone();
    duet_core::event::encode_raw_changes(&[change])
}

/// The id of the space's first goal, as `d` exports it.
fn goal_id(d: &Device) -> String {
    d.json(&["export"])["shared"]["goals"][0]["id"]
        .as_str()
        .expect("goal id")
        .to_string()
}

/// A rating map `id` made in a crafted transaction, on `goal`, naming `person` as its
/// rater (as the owner rules require of Sam's own rating).
fn crafted_rating(
    tx: &mut automerge::transaction::Transaction<'_>,
    id: &str,
    goal: &str,
    person: &str,
) -> automerge::ObjId {
    use automerge::transaction::Transactable;
    let ratings = child(tx, &automerge::ROOT, "ratings");
    let r = tx
        .put_object(&ratings, id, automerge::ObjType::Map)
        .expect("put");
    for (k, v) in [("goal", goal), ("rater", person)] {
        tx.put(&r, k, v).expect("put");
    }
    r
}

/// The object at `key` of `obj`, read in a crafted transaction.
fn child(
    tx: &automerge::transaction::Transaction<'_>,
    obj: &automerge::ObjId,
    key: &str,
) -> automerge::ObjId {
    use automerge::ReadDoc;
    let (_, child) = tx.get(obj, key).expect("read").expect(key);
    child
}

/// The object at the first key of the map `obj`, read in a crafted transaction.
fn first_child(
    tx: &automerge::transaction::Transaction<'_>,
    obj: &automerge::ObjId,
) -> automerge::ObjId {
    use automerge::ReadDoc;
    let key = tx.keys(obj).next().expect("an entry");
    child(tx, obj, &key)
}

/// The object of the space's first goal, read in a crafted transaction.
fn first_goal(tx: &automerge::transaction::Transaction<'_>) -> automerge::ObjId {
    first_child(tx, &child(tx, &automerge::ROOT, "goals"))
}

/// Alex's `duet sync` after Sam sent the crafted event `hash`: it ends (one still running
/// after 120 s is killed and fails the test) and takes the event.
fn alex_takes(alex: &Device, hash: &str) {
    let (run, _, _) = start(alex, &["sync"]).finish(Duration::from_secs(120), "sync");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !recorded_refusals(alex).iter().any(|h| h == hash),
        "{run:?}"
    );
}

/// Alex's history (JSON) shows `text`, as `what` says it should.
fn alex_history_shows(alex: &Device, text: &str, what: &str) {
    let history = alex.run(&["history", "--json"]);
    assert_eq!(history.code, 0, "{history:?}");
    assert!(history.stdout.contains(text), "{what}: {}", history.stdout);
}

/// Raw DEFLATE data of one zero byte followed by `repeats` copies of 258 more (a fixed
/// Huffman block of back-references): about 159 inflated bytes per stored byte.
fn deflate_bomb(repeats: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// Puts `len` bits of a Huffman code, most significant first.
        fn code(&mut self, code: u32, len: u32) {
            for i in (0..len).rev() {
                self.acc |= u64::from((code >> i) & 1) << self.n;
                self.n += 1;
                if self.n == 8 {
                    self.out.push(self.acc as u8);
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }
    }
    let mut b = Bits {
        out: Vec::with_capacity(repeats * 13 / 8 + 16),
        acc: 0,
        n: 0,
    };
    // BFINAL = 1, then BTYPE = 01 (fixed Huffman), least significant bit first.
    b.code(1, 1);
    b.code(1, 1);
    b.code(0, 1);
    b.code(0x30, 8); // literal 0
    for _ in 0..repeats {
        b.code(0xC5, 8); // length 258 (symbol 285)
        b.code(0, 5); // distance 1
    }
    b.code(0, 7); // end of block (symbol 256)
    if b.n > 0 {
        b.out.push(b.acc as u8);
    }
    b.out
}

/// A raw-changes plaintext (codec 2) of one compressed change chunk that inflates to
/// about `mib` MiB.
fn inflating_change(mib: usize) -> Vec<u8> {
    let bomb = deflate_bomb((mib << 20) / 258);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut len = bomb.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            chunk.push(byte);
            break;
        }
        chunk.push(byte | 0x80);
    }
    chunk.extend_from_slice(&bomb);
    let mut plain = vec![CODEC_RAW];
    plain.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
    plain.extend_from_slice(&chunk);
    plain
}

/// A bundle plaintext (codec 1) of `bundle`.
fn bundle_plaintext(bundle: &[u8]) -> Vec<u8> {
    let mut plain = vec![CODEC_BUNDLE];
    plain.extend_from_slice(bundle);
    plain
}

/// A bundle plaintext (codec 1) of an ordinary document of `n` changes.
fn honest_bundle(n: usize) -> Vec<u8> {
    use automerge::transaction::Transactable;
    let mut doc = automerge::Automerge::new();
    for i in 0..n {
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "level", i as i64).expect("put");
        tx.commit();
    }
    let changes = doc.get_changes(&[]);
    let bundle = doc
        .bundle(changes.iter().map(|c| c.hash()))
        .expect("bundle");
    bundle_plaintext(bundle.bytes())
}

/// A `duet` process of `d`, with its output collected.
struct Running {
    child: std::process::Child,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
    started: Instant,
}

fn start(d: &Device, args: &[&str]) -> Running {
    let mut child = d.command(args).spawn().expect("duet starts");
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = collect(Box::new(child.stdout.take().expect("stdout")));
    let err = collect(Box::new(child.stderr.take().expect("stderr")));
    Running {
        child,
        out,
        err,
        started: Instant::now(),
    }
}

impl Running {
    /// The process's peak resident memory so far, in KiB (`VmHWM`), while it runs.
    fn peak_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Waits for the end, polling its peak memory; past `limit` the process is killed
    /// and the test fails. Returns what it did, its peak memory (KiB) and its duration.
    fn finish(mut self, limit: Duration, what: &str) -> (Run, u64, Duration) {
        let mut peak = 0;
        let code = loop {
            if let Some(kib) = self.peak_kib() {
                peak = peak.max(kib);
            }
            match self.child.try_wait().expect("wait") {
                Some(status) => break status.code().unwrap_or(-1),
                None if self.started.elapsed() > limit => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("`duet {what}` still ran after {limit:?} (peak {peak} KiB); killed");
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let elapsed = self.started.elapsed();
        let run = Run {
            code,
            stdout: self.out.join().expect("stdout"),
            stderr: self.err.join().expect("stderr"),
        };
        (run, peak, elapsed)
    }

    /// Kills the process (as a crash or a closed laptop would) and waits for it.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The refused events recorded on `d` (hex hashes), oldest first.
fn recorded_refusals(d: &Device) -> Vec<String> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(d.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let Ok(mut stmt) = conn.prepare("SELECT hash FROM rejected ORDER BY id") else {
        return Vec::new();
    };
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map(|rows| rows.filter_map(Result::ok).map(hex::encode).collect())
        .unwrap_or_default()
}

#[test]
fn a_compressed_change_that_inflates_past_the_cap_is_refused_quickly_in_bounded_memory() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    // About 300 MiB once inflated, from an event of about 2 MB.
    let plain = inflating_change(300);
    assert!(plain.len() < duet_core::event::MAX_EVENT_BYTES - 4096);
    let bomb = sam_sends(&sam, &[plain]).remove(0);
    let (run, peak_kib, took) = start(&alex, &["sync"]).finish(Duration::from_secs(60), "sync");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        peak_kib < 200 * 1024,
        "the sync's peak memory stays modest: {peak_kib} KiB"
    );
    assert!(
        run.stderr.contains("refused") && run.stderr.contains(&bomb[..12]),
        "the sync says it refused the event: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("compression bomb"),
        "and why: {}",
        run.stderr
    );
    assert!(took < Duration::from_secs(20), "and it is quick: {took:?}");
    // The space goes on: the goal is still there and a later rating arrives.
    sam.ok(&["rate", "Walk", "1"]);
    // Sam shares openly: closing the round reveals the blind rating, so Alex holds it.
    sam.ok(&["checkin", "--close"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let export = alex.json(&["export"]);
    assert_eq!(
        export["shared"]["ratings"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn a_refused_event_is_recorded_at_once_and_never_read_again() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    // The first is refused at once; each of the others inflates 31 MiB (within the
    // cap) before its checksum refuses it, which holds the sync a while.
    let mut plaintexts = vec![bundle_plaintext(SPINNING)];
    plaintexts.extend(std::iter::repeat_n(inflating_change(31), 6));
    let hashes = sam_sends(&sam, &plaintexts);
    let sync = start(&alex, &["sync"]);
    // The first refusal is on disk while the others are still being read...
    loop {
        if !recorded_refusals(&alex).is_empty() {
            break;
        }
        assert!(
            sync.started.elapsed() < Duration::from_secs(60),
            "no refusal was recorded"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // ...when the sync is interrupted.
    sync.kill();
    let before = recorded_refusals(&alex);
    assert!(
        before.len() < hashes.len(),
        "the sync was interrupted while it still read: {before:?}"
    );
    assert_eq!(
        before,
        hashes[..before.len()],
        "each refusal was recorded on its own, in order, as the sync read on"
    );
    let run = alex.run(&["sync"]);
    assert_eq!(run.code, 0, "{run:?}");
    for hash in &hashes[before.len()..] {
        assert!(
            run.stderr.contains(&hash[..12]),
            "the next sync reads the events it had not finished: {}",
            run.stderr
        );
    }
    for hash in &before {
        assert!(
            !run.stderr.contains(&hash[..12]),
            "and never one already refused: {}",
            run.stderr
        );
    }
    assert_eq!(recorded_refusals(&alex), hashes);
    let again = alex.run(&["sync"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        hashes.iter().all(|h| !again.stderr.contains(&h[..12])),
        "a later sync reads none: {}",
        again.stderr
    );
}

#[test]
fn contents_crafted_to_spin_or_abort_the_parser_are_refused_at_once_each_once() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let hashes = sam_sends(
        &sam,
        &[
            bundle_plaintext(SPINNING),
            bundle_plaintext(BILLION_PREDECESSORS),
            bundle_plaintext(SPINNING),
            bundle_plaintext(BILLION_PREDECESSORS),
        ],
    );
    let (run, peak_kib, _) = start(&alex, &["sync"]).finish(Duration::from_secs(60), "sync");
    // Before: the second aborted the process (SIGABRT, every sync again), and the first
    // left a thread spinning past its deadline.
    assert_eq!(run.code, 0, "{run:?}");
    assert!(peak_kib < 200 * 1024, "{peak_kib} KiB");
    assert!(
        !run.stderr.contains("run `duet sync` again"),
        "nothing stalls, so the sync reads on to the end: {}",
        run.stderr
    );
    for hash in &hashes {
        assert!(
            run.stderr.contains(&hash[..12]),
            "each is refused and named: {}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("declares more than") || run.stderr.contains("groups more than"),
        "and why: {}",
        run.stderr
    );
    let mut refused = recorded_refusals(&alex);
    refused.sort();
    let mut expected = hashes.clone();
    expected.sort();
    assert_eq!(refused, expected, "each refused exactly once");
    // The space goes on.
    sam.ok(&["goal", "add", "Cook together", "--area", "quality-time"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let goals = alex.json(&["goal", "list"]);
    assert_eq!(goals.as_array().map(Vec::len), Some(2), "{goals}");
}

#[test]
fn contents_that_stall_the_parser_cost_one_bounded_sync_not_one_deadline_each() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let hashes = sam_sends(&sam, &vec![honest_bundle(200); 4]);
    // No content known stalls the parser now; a deadline of 0 ms makes every parse miss
    // it, as content crafted against a parser bug not yet known would.
    let stalled = |args: &[&str]| {
        let mut cmd = alex.command(args);
        cmd.env(duet_core::bundle::DEADLINE_VAR, "0");
        let out = cmd.output().expect("duet runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let run = stalled(&["sync"]);
    assert_eq!(
        run.code, 3,
        "stopped early: not up to date, and said so: {run:?}"
    );
    assert!(
        run.stderr.contains("run `duet sync` again"),
        "the sync stops reading and says so: {}",
        run.stderr
    );
    assert!(
        recorded_refusals(&alex).len() < hashes.len(),
        "it stops after a few: {:?}",
        recorded_refusals(&alex)
    );
    // The next syncs read on from there and each content is refused once.
    for _ in 0..3 {
        let run = stalled(&["sync"]);
        assert!(matches!(run.code, 0 | 3), "{run:?}");
    }
    let mut refused = recorded_refusals(&alex);
    refused.sort();
    let mut expected = hashes.clone();
    expected.sort();
    assert_eq!(refused, expected, "each refused exactly once");
}

#[test]
fn a_long_text_pasted_in_one_change_costs_the_other_one_read_of_it() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    // Sam pastes 100,000 characters into the goal's title, in one change (the owner
    // rules let either partner edit a goal's title).
    let plain = sam_crafts(&sam, |tx, _| {
        use automerge::transaction::Transactable;
        let title = child(tx, &first_goal(tx), "title");
        tx.splice_text(&title, 0, 0, &"x".repeat(100_000))
            .expect("splice");
    });
    let hash = sam_sends(&sam, &[plain]).remove(0);
    // Before, the history read the whole title twice for each of the change's 100,000
    // operations (hours of work for one event of 100 KB, again at every attempt).
    alex_takes(&alex, &hash);
    alex_history_shows(
        &alex,
        "xxxxxxxxxx",
        "the edit is in the history with its text",
    );
}

#[test]
fn a_step_completed_a_hundred_thousand_times_in_one_change_costs_one_read_of_its_text() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["step", "add", "Walk", "Pick a route"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // In one change, Sam makes the step's text 100,000 characters long and sets its
    // completion time 100,000 times (the owner rules allow both: the text is shared, and
    // nobody has completed the step).
    let plain = sam_crafts(&sam, |tx, _| {
        use automerge::transaction::Transactable;
        let step = first_child(tx, &child(tx, &first_goal(tx), "steps"));
        let text = child(tx, &step, "text");
        tx.splice_text(&text, 0, 0, &"y".repeat(100_000))
            .expect("splice");
        for at in 0..100_000i64 {
            tx.put(&step, "done_at", at + 1).expect("put");
        }
    });
    let hash = sam_sends(&sam, &[plain]).remove(0);
    // Before, the history read the step's whole text for each of the 100,000 puts
    // (minutes for one event of a few hundred kilobytes, again at every attempt).
    alex_takes(&alex, &hash);
    alex_history_shows(
        &alex,
        "yyyyyyyyyy",
        "the completion is in the history with the step's text",
    );
}

#[test]
fn a_rating_nested_twenty_thousand_objects_deep_costs_one_quick_sync() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let goal = goal_id(&alex);
    // Sam writes a rating in Sam's own name (the owner rules allow it) whose note is a
    // map in a map in a map, 20,000 deep, in one change.
    let plain = sam_crafts(&sam, |tx, person| {
        use automerge::transaction::Transactable;
        let id = "dddddddddddddddddddddddddddddddd";
        let r = crafted_rating(tx, id, &goal, person);
        tx.put(&r, "id", id).expect("put");
        tx.put(&r, "at", duet_core::ids::now_ms()).expect("put");
        tx.put(&r, "level", 1i64).expect("put");
        let mut obj = tx
            .put_object(&r, "note", automerge::ObjType::Map)
            .expect("put");
        for _ in 0..20_000 {
            obj = tx
                .put_object(&obj, "deeper", automerge::ObjType::Map)
                .expect("put");
        }
    });
    let hash = sam_sends(&sam, &[plain]).remove(0);
    // Before, placing each new object copied its whole path from the root (in the owner
    // rules and in the history's walk): the check grew with the square of the depth, and
    // this sync ran for many minutes, again at every attempt.
    let (run, peak_kib, _) = start(&alex, &["sync"]).finish(Duration::from_secs(120), "sync");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(peak_kib < 400 * 1024, "{peak_kib} KiB");
    // The rating is kept (the model cannot read its note) and the space goes on.
    assert!(
        !recorded_refusals(&alex).contains(&hash),
        "the rules allow it: {run:?}"
    );
    let export = alex.json(&["export"]);
    assert!(
        export
            .to_string()
            .contains("dddddddddddddddddddddddddddddddd"),
        "the rating is stored"
    );
    alex.ok(&["rate", "Walk", "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    for args in [
        &["status"][..],
        &["history"],
        &["progress"],
        &["goal", "show", "Walk"],
    ] {
        let (run, _, _) = start(&alex, args).finish(Duration::from_secs(60), &args.join(" "));
        assert_eq!(run.code, 0, "`duet {}`: {run:?}", args.join(" "));
    }
}

#[test]
fn a_rating_with_an_absurd_level_does_not_hang_report_or_progress() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", "Walk", "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let goal = goal_id(&alex);
    // Sam writes a rating in Sam's own name (the owner rules allow it) whose level is
    // 2^53-1, with a hand-made change.
    let rating = "ffffffffffffffffffffffffffffffff";
    {
        let mut dev = CoreDevice::open(&sam.home).expect("open Sam's device");
        dev.edit(SpaceKind::Shared, move |doc, me| {
            let person = me.person_id.clone();
            let c = doc.raw_transaction("rate", duet_core::ids::now_ms(), |tx| {
                use automerge::ReadDoc;
                use automerge::transaction::Transactable;
                let (_, ratings) = tx
                    .get(automerge::ROOT, "ratings")?
                    .ok_or(DocError::Malformed("ratings"))?;
                let r = tx.put_object(&ratings, rating, automerge::ObjType::Map)?;
                tx.put(&r, "id", rating)?;
                tx.put(&r, "goal", goal.as_str())?;
                tx.put(&r, "rater", person.as_str())?;
                tx.put(&r, "at", duet_core::ids::now_ms())?;
                tx.put(&r, "level", 9_007_199_254_740_991i64)?;
                tx.put(&r, "note", automerge::ScalarValue::Null)?;
                Ok(())
            })?;
            Ok(((), c.into_iter().collect()))
        })
        .expect("craft the rating");
    }
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let html = alex.home.join("report.html");
    let html = html.to_str().expect("path");
    for args in [
        &["report", "--html", html][..],
        &["progress"],
        &["progress", "--json"],
        &["export", "--json"],
    ] {
        let (run, peak_kib, took) =
            start(&alex, args).finish(Duration::from_secs(30), &args.join(" "));
        assert_eq!(run.code, 0, "`duet {}`: {run:?}", args.join(" "));
        // (`export` carries the raw content of what it could not read, value included.)
        assert!(
            args[0] == "export" || !run.stdout.contains("9007199254740991"),
            "`duet {}` uses the value out of range: {}",
            args.join(" "),
            run.stdout
        );
        assert!(
            took < Duration::from_secs(10),
            "`duet {}` took {took:?}",
            args.join(" ")
        );
        assert!(
            peak_kib < 200 * 1024,
            "`duet {}`: {peak_kib} KiB",
            args.join(" ")
        );
    }
    // The rating is listed as a problem, with its value, and Alex's own one counts.
    let export = alex.json(&["export"]);
    let problems = export["shared"]["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["id"] == rating
            && p["reason"]
                .as_str()
                .is_some_and(|r| r.contains("9007199254740991"))),
        "{problems:?}"
    );
    let progress = alex.json(&["progress"]);
    let partners = progress["goals"][0]["partners"]
        .as_array()
        .expect("partners");
    let levels: Vec<i64> = partners
        .iter()
        .flat_map(|p| p["ratings"].as_array().into_iter().flatten())
        .filter_map(|r| r["level"].as_i64())
        .collect();
    assert_eq!(levels, vec![1], "only the rating in range counts");
}

#[test]
fn a_key_of_a_quarter_megabyte_over_fifty_thousand_operations_is_refused_at_once() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let goal = goal_id(&alex);
    // A rating whose id (its key in the ratings map) is 256 KiB long, with 50,000
    // fields: every operation's path holds the id.
    let plain = sam_crafts(&sam, |tx, person| {
        use automerge::transaction::Transactable;
        let r = crafted_rating(tx, &"e".repeat(256 << 10), &goal, person);
        for i in 0..50_000 {
            tx.put(&r, format!("k{i}").as_str(), 1i64).expect("put");
        }
    });
    let hash = sam_sends(&sam, &[plain]).remove(0);
    // Before, each operation hashed and copied the id (the owner rules' lookups and the
    // history's paths): 13 GB of it for this one event of 300 KB, about 45 s of a test
    // build's sync (minutes for a longer key), again at every attempt.
    let (run, _, _) = start(&alex, &["sync"]).finish(Duration::from_secs(120), "sync");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(recorded_refusals(&alex), vec![hash], "{run:?}");
    assert!(
        run.stderr.contains("holds a string of 262144 bytes"),
        "the sync says why: {}",
        run.stderr
    );
    alex.ok(&["rate", "Walk", "1"]);
    alex.ok(&["sync"]);
}

#[test]
fn a_thousand_unreadable_ratings_are_counted_not_listed_one_by_one() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let goal = goal_id(&alex);
    // A thousand ratings in Sam's own name whose note is a map, which no version reads.
    let plain = sam_crafts(&sam, |tx, person| {
        use automerge::transaction::Transactable;
        for i in 0..1000u32 {
            let id = format!("{i:032x}");
            let r = crafted_rating(tx, &id, &goal, person);
            tx.put(&r, "id", id.as_str()).expect("put");
            tx.put(&r, "at", duet_core::ids::now_ms()).expect("put");
            tx.put(&r, "level", 1i64).expect("put");
            tx.put_object(&r, "note", automerge::ObjType::Map)
                .expect("put");
        }
    });
    let hash = sam_sends(&sam, &[plain]).remove(0);
    alex_takes(&alex, &hash);
    let list = alex.run(&["goal", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert_eq!(
        list.stderr.matches("it is kept, and shown once").count(),
        5,
        "five named: {}",
        list.stderr
    );
    assert!(
        list.stderr
            .contains("cannot read 995 more; `duet export` lists them all"),
        "{}",
        list.stderr
    );
    let show = alex.run(&["goal", "show", "Walk"]);
    assert_eq!(show.code, 0, "{show:?}");
    assert_eq!(
        show.stdout.matches("    raw: ").count(),
        5,
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("and 995 more (`duet export` lists them all)"),
        "{}",
        show.stdout
    );
    let export = alex.run(&["export"]);
    assert_eq!(export.code, 0, "{export:?}");
    assert_eq!(export.stdout.matches("    raw: ").count(), 1000);
}

#[test]
fn a_step_id_crafted_as_a_path_never_becomes_a_form_action_of_the_others_app() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    // Sam's modified client adds a goal with a step whose id climbs out of the goal's
    // paths: in Alex's app, "done" on it would post to `/leave`. (In a goal that
    // already exists, the owner rules refuse a step id of this shape outright:
    // `a_partner_cannot_hide_the_others_goal_with_a_crafted_step`.)
    let step = "../../../leave";
    let goal = {
        let mut dev = CoreDevice::open(&sam.home).expect("open Sam's device");
        dev.edit(SpaceKind::Shared, move |doc, me| {
            let person = me.person_id.clone();
            let new = duet_core::doc::NewGoal {
                title: "Tap".into(),
                ..Default::default()
            };
            // The goal and its step go in one event: all of it new, which the owner
            // rules leave to the reader.
            let (made, first) = doc.add_goal(&person, new, duet_core::ids::now_ms())?;
            let mut changes: Vec<_> = first.into_iter().collect();
            let c = doc.raw_transaction("add step", duet_core::ids::now_ms(), |tx| {
                use automerge::ReadDoc;
                use automerge::transaction::Transactable;
                let (_, goals) = tx
                    .get(automerge::ROOT, "goals")?
                    .ok_or(DocError::Malformed("goals"))?;
                let (_, g) = tx
                    .get(&goals, made.as_str())?
                    .ok_or(DocError::Malformed("goal"))?;
                let (_, steps) = tx.get(&g, "steps")?.ok_or(DocError::Malformed("steps"))?;
                let s = tx.put_object(&steps, step, automerge::ObjType::Map)?;
                tx.put(&s, "id", step)?;
                let text = tx.put_object(&s, "text", automerge::ObjType::Text)?;
                tx.splice_text(&text, 0, 0, "Tap done")?;
                tx.put(&s, "created_by", person.to_string())?;
                tx.put(&s, "created_at", duet_core::ids::now_ms())?;
                for absent in ["assignee", "done_by", "done_at"] {
                    tx.put(&s, absent, automerge::ScalarValue::Null)?;
                }
                Ok(())
            })?;
            changes.extend(c);
            Ok((made, changes))
        })
        .expect("craft the step")
    };
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let app = duet_tests::app::App::start(&alex);
    let page = app.get(&format!("/goals/{goal}")).body;
    assert!(
        !page.contains("/../"),
        "a crafted path in Alex's page: {page}"
    );
    // Alex's device holds it as a problem, as any value out of the model's range.
    let export = alex.json(&["export"]);
    assert!(
        export["shared"]["problems"].to_string().contains("leave"),
        "{export}"
    );
}

#[test]
fn a_partner_cannot_hide_the_others_goal_with_a_crafted_step() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", "Walk", "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // Sam's modified client adds a step without its text to Alex's goal: read whole,
    // the goal (with Alex's ratings) would vanish from Alex's lists and progress.
    let plain = sam_crafts(&sam, |tx, person| {
        use automerge::transaction::Transactable;
        let steps = child(tx, &first_goal(tx), "steps");
        let s = tx
            .put_object(&steps, "s1", automerge::ObjType::Map)
            .expect("step");
        tx.put(&s, "id", "s1").expect("put");
        tx.put(&s, "created_by", person).expect("put");
        tx.put(&s, "created_at", duet_core::ids::now_ms())
            .expect("put");
    });
    let hash = sam_sends(&sam, &[plain]).remove(0);
    alex.ok(&["sync"]);
    assert!(
        recorded_refusals(&alex).contains(&hash),
        "Sam's step was taken"
    );
    alex_history_shows(
        &alex,
        "with no text",
        "the refusal says what the step lacked",
    );
    let goals = alex.json(&["goal", "list"]);
    assert!(
        goals.to_string().contains("Walk"),
        "Alex's goal is hidden: {goals}"
    );
    let progress = alex.json(&["progress"]);
    assert!(progress.to_string().contains("Walk"), "{progress}");
}

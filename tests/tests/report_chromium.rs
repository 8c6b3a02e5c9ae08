//! The HTML report for a therapist, rendered in headless Chromium: the period in its title,
//! every goal of every status with the day its status was set, its level descriptions,
//! steps, rating tables and a chart on a dated time axis, the reflections grouped by goal,
//! private reflections only when asked for and then under a banner, the file owner-only;
//! it makes no network request and stays small for a long history. A screenshot and a
//! printed PDF are left in `target/tmp/report/` for a person to look at.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use duet_core::device::Device as CoreDevice;
use duet_core::doc::NewGoal;
use duet_core::store::SpaceKind;
use duet_core::{Area, Level, Status};
use duet_tests::Device;

/// Runs headless Chromium on a file; returns (DOM after load, URLs in its network log).
fn render(chromium: &Path, page: &Path, work: &Path, extra: &[&str]) -> (String, Vec<String>) {
    let netlog = work.join("net.json");
    // `timeout` bounds a Chromium that hangs, so the test fails instead of blocking CI.
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args(duet_tests::HEADLESS_CHROMIUM)
        .arg("--disable-quic")
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .arg(format!("--log-net-log={}", netlog.display()))
        .args(extra)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&netlog).expect("net log")).expect("net log is JSON");
    let mut urls = Vec::new();
    for e in log["events"].as_array().into_iter().flatten() {
        if let Some(params) = e["params"].as_object() {
            for v in params.values() {
                if let Some(s) = v.as_str().filter(|s| s.contains("://")) {
                    urls.push(s.to_string());
                }
            }
        }
    }
    (String::from_utf8_lossy(&out.stdout).into_owned(), urls)
}

/// Requests Chromium makes on its own (updates, accounts), not the page's.
fn page_requests(urls: &[String]) -> Vec<&String> {
    const BROWSER_OWN: &[&str] = &[
        "google.com",
        "googleapis.com",
        "gstatic.com",
        "[direct://]",
        "gvt1.com",
    ];
    urls.iter()
        .filter(|u| !u.starts_with("file://") && !BROWSER_OWN.iter().any(|h| u.contains(h)))
        .collect()
}

/// What the two-year history holds, for the assertions.
struct History {
    /// Goal ids, in the order they were created.
    goals: Vec<String>,
}

/// Week `w` of the history: `START` is 2023-11-14 22:13 UTC.
fn week(w: i64) -> i64 {
    const START: i64 = 1_700_000_000_000;
    START + w * 7 * 86_400_000
}

/// Two partners rating 20 goals weekly for two years. Goal 0 has all five level
/// descriptions, a step Sam completed, an open step and notes; goals 1-3 were made
/// achieved, paused and archived later; reflections about goals 0 and 1 and about none,
/// and a private one of Alex about goal 0.
fn two_year_history(home: &Path) -> History {
    let mut dev = CoreDevice::init(home, "Alex", None).expect("init");
    let sam = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a".to_string();
    let goals = dev
        .edit(SpaceKind::Shared, |doc, me| {
            let mut changes = Vec::new();
            let mut ids = Vec::new();
            changes.extend(doc.set_person(&sam, "Sam", week(0))?);
            for g in 0..20 {
                let levels = if g == 0 {
                    (-2i8..=2)
                        .map(|l| (l, format!("LEVEL{l} of goal 0")))
                        .collect()
                } else {
                    [(0i8, format!("Expected outcome {g}"))]
                        .into_iter()
                        .collect()
                };
                let (id, c) = doc.add_goal(
                    &me.person_id,
                    NewGoal {
                        title: format!("Goal {g}: <b>talk</b> & listen"),
                        why: if g == 0 {
                            "So that we feel heard".into()
                        } else {
                            String::new()
                        },
                        area: Some(Area::ALL[g % Area::ALL.len()]),
                        levels,
                        ..Default::default()
                    },
                    week(0),
                )?;
                changes.extend(c);
                for w in 0..104i64 {
                    for (k, who) in [me.person_id.as_str(), sam.as_str()]
                        .into_iter()
                        .enumerate()
                    {
                        let level = Level::try_from(((w / 8 + g as i64 + k as i64) % 5) - 2)
                            .expect("level");
                        let note = (g == 0 && w == 5).then_some("NOTE <i>rough</i> week");
                        changes.extend(doc.rate(&id, who, level, note, week(w) + k as i64)?.1);
                    }
                }
                ids.push(id);
            }
            let (done, c) = doc.add_step(&ids[0], &me.person_id, "Book a table", week(1))?;
            changes.extend(c);
            changes.extend(doc.complete_step(&ids[0], &done, &sam, week(3))?);
            changes.extend(
                doc.add_step(&ids[0], &me.person_id, "Plan a walk", week(1))?
                    .1,
            );
            for (g, status, w) in [
                (1, Status::Achieved, 50),
                (2, Status::Paused, 60),
                (3, Status::Archived, 70),
            ] {
                changes.extend(doc.set_status(&ids[g], status, week(w))?);
            }
            for (who, goal, text) in [
                (me.person_id.as_str(), None, "We are doing better"),
                (
                    me.person_id.as_str(),
                    Some(&ids[0]),
                    "Talking on Sundays helps",
                ),
                (sam.as_str(), Some(&ids[1]), "SAM-about-goal-1"),
            ] {
                let goal = goal.map(String::as_str);
                changes.extend(doc.reflect(who, goal, None, text, week(100))?.1);
            }
            Ok((ids, changes))
        })
        .expect("history");
    dev.edit(SpaceKind::Personal, |doc, me| {
        let text = "PRIVATE-canary-3e1f";
        let (_, c) = doc.reflect(&me.person_id, Some(&goals[0]), None, text, week(2))?;
        Ok(((), c.into_iter().collect()))
    })
    .expect("private");
    History { goals }
}

/// The rituals on top: Alex corrects their latest rating of goal 4, Sam's rating of goal
/// 4 is still sealed, and Sam answers Alex's reflection about goal 0.
fn rituals(home: &Path, h: &History) {
    let mut dev = CoreDevice::open(home).expect("open");
    let view = dev.raw_view(SpaceKind::Shared).expect("view");
    let me = view
        .people
        .iter()
        .find(|(_, p)| p.name == "Alex")
        .map(|(id, _)| id.clone())
        .expect("Alex");
    let sam = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a".to_string();
    let last = view
        .ratings
        .iter()
        .filter(|r| r.goal == h.goals[4] && r.rater == me)
        .max_by_key(|r| r.at)
        .expect("a rating of goal 4")
        .clone();
    let talk = view
        .reflections
        .iter()
        .find(|r| r.text.as_str() == "Talking on Sundays helps")
        .expect("the reflection")
        .clone();
    let correction = duet_core::model::Rating {
        id: duet_core::ids::new_id(),
        at: last.at + 60_000,
        level: Level::MUCH_MORE,
        note: Some("CORRECTED-4".into()),
        corrects: Some(last.id.clone()),
        ..last
    };
    let seal = duet_core::model::Seal {
        id: duet_core::ids::new_id(),
        goal: h.goals[4].clone(),
        rater: sam.clone(),
        at: correction.at + 60_000,
        round: "0123456789abcdef0123456789abcdef".into(),
        corrects: None,
        commitment: "00".repeat(32),
        sealed: "00".repeat(40),
    };
    let reply = duet_core::model::Reflection {
        id: duet_core::ids::new_id(),
        author: sam,
        at: talk.at + 5_000,
        text: duet_core::model::Text::with_value("SAM-REPLY-to-sundays"),
        reply_to: Some(talk.id.clone()),
        ..talk
    };
    dev.edit(SpaceKind::Shared, |doc, _| {
        let mut changes: Vec<_> = doc
            .put_rating(&correction, "rate", correction.at)?
            .into_iter()
            .collect();
        changes.extend(doc.put_seal(&seal, None, seal.at)?);
        changes.extend(doc.put_reflection(&reply, reply.at)?);
        Ok(((), changes))
    })
    .expect("rituals");
}

/// The part of the DOM from `start` to the next `end` (or the end).
fn between<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("{start} is not in the page"));
    let rest = &dom[from..];
    let to = rest[start.len()..]
        .find(end)
        .map_or(rest.len(), |i| i + start.len());
    &rest[..to]
}

/// One goal's section of the DOM.
fn section<'a>(dom: &'a str, goal: &str) -> &'a str {
    between(
        dom,
        &format!("<section class=\"goal\" id=\"goal-{goal}\""),
        "</section>",
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("report")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_report_renders_every_chart_offline_in_headless_chromium_and_stays_small() {
    let Some(chromium) = duet_tests::chromium() else {
        println!(
            "skipped: install chromium (Debian package `chromium`) to run the report rendering test"
        );
        return;
    };
    let d = Device::new();
    let h = two_year_history(&d.home);
    rituals(&d.home, &h);
    let work = tempfile::tempdir().expect("tempdir");
    let page = work.path().join("report.html");
    // Times on the page are local: UTC makes them the ones written here.
    let utc = [("TZ", "UTC")];
    d.ok_env(
        &["report", "--html", page.to_str().expect("utf-8 path")],
        &utc,
    );
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(
        html.len() < 1_000_000,
        "report of 20 goals over 2 years is {} bytes",
        html.len()
    );
    assert_eq!(mode(&page), 0o600, "readable by its owner only");
    assert!(
        !html.contains("PRIVATE-canary-3e1f"),
        "private reflections stay out by default"
    );
    assert!(
        html.contains("&lt;b&gt;talk&lt;/b&gt; &amp; listen")
            && html.contains("NOTE &lt;i&gt;rough&lt;/i&gt; week"),
        "titles and notes are escaped"
    );
    assert!(
        html.contains("default-src 'none'"),
        "a CSP forbids any network access"
    );
    assert!(
        html.contains("@media print{") && html.contains("tr,.chart"),
        "a print style sheet keeps rows and charts whole"
    );

    let (dom, urls) = render(&chromium, &page, work.path(), &[]);
    let period = "2023-11-14 to 2025-11-04";
    for part in [
        between(&dom, "<title>", "</title>"),
        between(&dom, "<h1>", "</h1>"),
    ] {
        assert!(
            part.contains("Progress report:") && part.contains(period),
            "the period in the title and heading: {part}"
        );
    }
    assert!(
        !dom.contains("private-banner"),
        "no banner without private reflections"
    );

    // (The legend's keys are small drawings too: the charts are `class="chart"`.)
    let charts = dom.matches("<svg class=\"chart\"").count();
    assert_eq!(
        charts,
        h.goals.len() + 1,
        "one chart per goal, of every status, and the T-score chart"
    );
    for svg in dom.split("<svg class=\"chart\"").skip(1) {
        let body = svg.split("</svg>").next().unwrap_or("");
        assert!(
            body.contains("<polyline") && body.contains("points=\""),
            "chart without data: {}",
            &body[..body.len().min(300)]
        );
        let ticks = body.matches("class=\"ax tick\"").count();
        assert!(
            body.contains("class=\"time-axis\"") && ticks >= 3 && body.contains(">Jan 2025<"),
            "a dated time axis ({ticks} ticks): {}",
            &body[..body.len().min(300)]
        );
    }

    // Goal 0: created and never changed, five levels, steps, each partner's ratings.
    let g0 = section(&dom, &h.goals[0]);
    assert!(
        g0.contains("Status: <strong>active</strong> since 2023-11-14 (when it was created)"),
        "{}",
        &g0[..g0.len().min(800)]
    );
    assert!(g0.contains("So that we feel heard") && g0.contains("Communication"));
    for l in -2..=2 {
        assert!(g0.contains(&format!("LEVEL{l} of goal 0")), "level {l}");
    }
    assert!(
        g0.contains("done by <span class=\"done-by\"><bdi>Sam</bdi></span> on <span class=\"done-at\">2023-12-05 22:13</span>"),
        "who completed a step and when"
    );
    assert!(
        g0.contains("Plan a walk") && g0.contains("— open"),
        "open steps too"
    );
    assert_eq!(
        g0.matches("<table class=\"ratings\"").count(),
        2,
        "one table per partner"
    );
    assert_eq!(
        g0.matches("<td class=\"marks\">").count(),
        2 * 104,
        "a row per rating"
    );
    assert!(
        g0.contains(
            "<td>2023-12-19 22:13</td><td>−2</td><td dir=\"auto\">NOTE &lt;i&gt;rough&lt;/i&gt; week</td>"
        ),
        "a rating's date, level and note"
    );
    // A correction counts instead of what it corrects, marked; a sealed rating is a row
    // without level or note.
    let g4 = section(&dom, &h.goals[4]);
    assert!(
        g4.contains(
            "<td>+2</td><td dir=\"auto\">CORRECTED-4</td><td class=\"marks\">corrected</td>"
        ),
        "{}",
        &g4[..g4.len().min(2000)]
    );
    assert_eq!(g4.matches("<tr class=\"sealed\">").count(), 1);
    assert!(between(g4, "<tr class=\"sealed\">", "</tr>").contains(">sealed<"));
    // Goal 5 describes only the expected level.
    let g5 = section(&dom, &h.goals[5]);
    assert_eq!(g5.matches("not described").count(), 4);
    // Achieved, paused and archived goals are there, with the day their status was set.
    for (g, status, day) in [
        (1, "achieved", "2024-10-29"),
        (2, "paused", "2025-01-07"),
        (3, "archived", "2025-03-18"),
    ] {
        let s = section(&dom, &h.goals[g]);
        assert!(
            s.contains(&format!(
                "Status: <strong>{status}</strong> since {day}</span>"
            )),
            "goal {g}: {}",
            &s[..s.len().min(800)]
        );
    }

    // Reflections grouped by goal, those about no goal last.
    let reflections = between(&dom, "<section class=\"reflections\">", "</section>");
    let group = |goal: &str| between(reflections, &format!("data-goal=\"{goal}\""), "</div>");
    assert!(group(&h.goals[0]).contains("Talking on Sundays helps"));
    let thread = between(
        reflections,
        "Talking on Sundays helps",
        "</article></div></article>",
    );
    assert!(
        thread.contains("<div class=\"replies\">") && thread.contains("SAM-REPLY-to-sundays"),
        "a reply under the reflection it answers: {thread}"
    );
    assert!(
        group(&h.goals[1]).contains("SAM-about-goal-1") && group(&h.goals[1]).contains(">Sam<")
    );
    assert!(group("").contains("Not about a goal") && group("").contains("We are doing better"));
    let order: Vec<usize> = [h.goals[0].as_str(), h.goals[1].as_str(), ""]
        .iter()
        .map(|g| {
            reflections
                .find(&format!("data-goal=\"{g}\""))
                .expect("group")
        })
        .collect();
    assert!(
        order.is_sorted(),
        "groups in goal order, no goal last: {order:?}"
    );
    assert!(
        page_requests(&urls).is_empty(),
        "the page made network requests: {:?}",
        page_requests(&urls)
    );

    // Own private reflections appear only when asked for: marked, under a banner. The
    // file it replaces was world-readable; the report is not.
    let with_private = work.path().join("with-private.html");
    std::fs::write(&with_private, b"an older file").expect("older file");
    std::fs::set_permissions(&with_private, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = d.ok_env(
        &[
            "report",
            "--html",
            with_private.to_str().expect("path"),
            "--include-private",
        ],
        &utc,
    );
    assert!(out.contains("1 private reflection"), "{out}");
    assert_eq!(
        mode(&with_private),
        0o600,
        "an existing file is replaced owner-only"
    );
    let (dom, _) = render(&chromium, &with_private, work.path(), &[]);
    let body = between(&dom, "<body>", "</body>");
    assert!(
        body.trim_start_matches("<body>")
            .trim_start()
            .starts_with("<div class=\"banner\" id=\"private-banner\"")
            && between(body, "private-banner", "</div>").contains("1 private reflection"),
        "the banner opens the page: {}",
        &body[..body.len().min(400)]
    );
    let private = between(&dom, "<article class=\"reflection private\">", "</article>");
    assert!(
        private.contains("PRIVATE-canary-3e1f")
            && private.contains("Private: only on <bdi>Alex</bdi>'s devices"),
        "{private}"
    );
    assert!(
        between(&dom, &format!("data-goal=\"{}\"", h.goals[0]), "</div>")
            .contains("PRIVATE-canary-3e1f"),
        "grouped with its goal"
    );
    assert_eq!(
        dom.matches("class=\"reflection private\"").count(),
        1,
        "only the private one is marked"
    );

    // For a person to look at: the top of the page, and the page printed.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let shot = shots.join("report-with-private.png");
    let pdf = shots.join("report-with-private.pdf");
    for old in [&shot, &pdf] {
        let _ = std::fs::remove_file(old);
    }
    for output in [
        format!("--screenshot={}", shot.display()),
        format!("--print-to-pdf={}", pdf.display()),
    ] {
        let out = Command::new("timeout")
            .arg("120")
            .arg(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--hide-scrollbars",
                "--no-pdf-header-footer",
                "--window-size=800,2400",
            ])
            .arg(format!(
                "--user-data-dir={}",
                work.path().join("profile2").display()
            ))
            .arg(output)
            .arg(format!("file://{}", with_private.display()))
            .output()
            .expect("chromium screenshot");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real rendering, {} bytes",
        png.len()
    );
    let printed = std::fs::read(&pdf).expect("PDF written");
    assert!(printed.starts_with(b"%PDF"), "printed to PDF");
    println!("screenshot: {}\nprinted: {}", shot.display(), pdf.display());
}

#[test]
fn the_network_check_catches_a_page_that_loads_something() {
    let Some(chromium) = duet_tests::chromium() else {
        println!(
            "skipped: install chromium (Debian package `chromium`) to run the report rendering test"
        );
        return;
    };
    // Control for the test above: a page with an external image is caught.
    // A port nobody listens on: the request fails fast but is still attempted.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let work = tempfile::tempdir().expect("tempdir");
    let page = work.path().join("leaky.html");
    std::fs::write(
        &page,
        format!("<html><body><img src=\"http://127.0.0.1:{port}/pixel.png\"></body></html>"),
    )
    .expect("write");
    let (_, urls) = render(&chromium, &page, work.path(), &[]);
    assert!(
        !page_requests(&urls).is_empty(),
        "the leaky page's request was not seen: {urls:?}"
    );
}

//! The HTML report renders its charts in headless Chromium, makes no network request,
//! and stays small for a long history.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet_core::device::Device as CoreDevice;
use duet_core::doc::NewGoal;
use duet_core::store::SpaceKind;
use duet_core::{Area, Level};
use duet_tests::Device;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// Runs headless Chromium on a file; returns (DOM after load, URLs in its network log).
fn render(chromium: &Path, page: &Path, work: &Path, extra: &[&str]) -> (String, Vec<String>) {
    let netlog = work.join("net.json");
    // `timeout` bounds a Chromium that hangs, so the test fails instead of blocking CI.
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ])
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

fn two_year_history(home: &Path) -> usize {
    let mut dev = CoreDevice::init(home, "Alex", None).expect("init");
    let sam = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a".to_string();
    let start = 1_700_000_000_000i64;
    let week = 7 * 86_400_000i64;
    dev.edit(SpaceKind::Shared, |doc, me| {
        let mut changes = Vec::new();
        changes.extend(doc.set_person(&sam, "Sam", start)?);
        for g in 0..20 {
            let (id, c) = doc.add_goal(
                &me.person_id,
                NewGoal {
                    title: format!("Goal {g}: <b>talk</b> & listen"),
                    area: Some(Area::ALL[g % Area::ALL.len()]),
                    levels: [(0i8, format!("Expected outcome {g}"))]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                },
                start,
            )?;
            changes.extend(c);
            for w in 0..104i64 {
                for (k, who) in [me.person_id.as_str(), sam.as_str()]
                    .into_iter()
                    .enumerate()
                {
                    let level =
                        Level::try_from(((w / 8 + g as i64 + k as i64) % 5) - 2).expect("level");
                    changes.extend(
                        doc.rate(&id, who, level, None, start + w * week + k as i64)?
                            .1,
                    );
                }
            }
        }
        changes.extend(
            doc.reflect(
                &me.person_id,
                None,
                None,
                "We are doing better",
                start + 100 * week,
            )?
            .1,
        );
        Ok(((), changes))
    })
    .expect("history");
    dev.edit(SpaceKind::Personal, |doc, me| {
        Ok((
            (),
            doc.reflect(&me.person_id, None, None, "PRIVATE-canary-3e1f", start)?
                .1
                .into_iter()
                .collect(),
        ))
    })
    .expect("private");
    20
}

#[test]
fn the_report_renders_every_chart_offline_in_headless_chromium_and_stays_small() {
    let Some(chromium) = chromium() else {
        println!(
            "skipped: install chromium (Debian package `chromium`) to run the report rendering test"
        );
        return;
    };
    let d = Device::new();
    let goals = two_year_history(&d.home);
    let work = tempfile::tempdir().expect("tempdir");
    let page = work.path().join("report.html");
    d.ok(&["report", "--html", page.to_str().expect("utf-8 path")]);
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(
        html.len() < 1_000_000,
        "report of 20 goals over 2 years is {} bytes",
        html.len()
    );
    assert!(
        !html.contains("PRIVATE-canary-3e1f"),
        "private reflections stay out by default"
    );
    assert!(
        html.contains("&lt;b&gt;talk&lt;/b&gt; &amp; listen"),
        "titles are escaped"
    );
    assert!(
        html.contains("default-src 'none'"),
        "a CSP forbids any network access"
    );

    let (dom, urls) = render(&chromium, &page, work.path(), &[]);
    let charts = dom.matches("<svg").count();
    assert_eq!(
        charts,
        goals + 1,
        "one chart per goal and the T-score chart"
    );
    for svg in dom.split("<svg").skip(1) {
        let body = svg.split("</svg>").next().unwrap_or("");
        assert!(
            body.contains("<polyline") && body.contains("points=\""),
            "chart without data: {}",
            &body[..body.len().min(300)]
        );
    }
    assert!(
        page_requests(&urls).is_empty(),
        "the page made network requests: {:?}",
        page_requests(&urls)
    );

    let shot = work.path().join("shot.png");
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
            "--window-size=800,2400",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile2").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium screenshot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real rendering, {} bytes",
        png.len()
    );

    // Own private reflections appear only when asked for.
    let with_private = work.path().join("with-private.html");
    d.ok(&[
        "report",
        "--html",
        with_private.to_str().expect("path"),
        "--include-private",
    ]);
    assert!(
        std::fs::read_to_string(&with_private)
            .expect("report")
            .contains("PRIVATE-canary-3e1f")
    );
}

#[test]
fn the_network_check_catches_a_page_that_loads_something() {
    let Some(chromium) = chromium() else {
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

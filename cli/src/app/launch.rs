//! Opening the browser without the session secret on any command line: every local user
//! can read a process's arguments (`ps`), and a browser started with the URL keeps it in
//! its own for as long as it runs. The opener is given a page in a file only this user
//! can read (mode 0600, in the temporary folder), which sends the browser on to the URL
//! with the secret; the file is removed when the app stops.

use std::io::Write;

/// The page the browser opens: on to `url` at once, with a link for a browser that
/// does not follow the refresh.
fn page(url: &str) -> String {
    // The URL is ours (digits and hex), never the user's text: nothing to escape.
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" \
         content=\"0;url={url}\"><title>Duet</title></head><body><p><a href=\"{url}\">Open \
         Duet</a></p></body></html>\n"
    )
}

/// Writes the page for `url` and opens it with the system's opener, if there is one;
/// failing to is not an error (the URL is printed). Keep the returned file until the
/// app stops: it is removed when dropped.
pub fn open_browser(url: &str) -> Option<tempfile::NamedTempFile> {
    // `tempfile` creates the file readable and writable by this user only.
    let mut file = tempfile::Builder::new()
        .prefix("duet-app-")
        .suffix(".html")
        .tempfile()
        .ok()?;
    file.write_all(page(url).as_bytes()).ok()?;
    file.flush().ok()?;
    let target = url::Url::from_file_path(file.path()).ok()?.to_string();
    for opener in ["xdg-open", "open"] {
        let started = std::process::Command::new(opener)
            .arg(&target)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = started {
            // Reap it in the background so it leaves no zombie.
            std::thread::spawn(move || child.wait());
            return Some(file);
        }
    }
    None
}

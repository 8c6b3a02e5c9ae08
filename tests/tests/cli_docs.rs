//! The CLI's own documentation as people use it: shell completions that a shell really
//! completes with, a manual page that `groff` reads without warnings, and help that
//! keeps the global options apart and never sends a user to cargo.

use std::process::{Command, Stdio};

use duet_tests::Device;

/// Runs a shell tool when it is installed; `None` (with a note) when it is not.
fn tool(name: &str) -> Option<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: install {name}");
    }
    found.then_some(())
}

#[test]
fn bash_completes_duet_go_to_goal() {
    let Some(()) = tool("bash") else { return };
    let d = Device::new();
    let tmp = tempfile::tempdir().expect("temp dir");
    let script = tmp.path().join("duet.bash");
    std::fs::write(&script, d.ok(&["completions", "bash"])).expect("write the script");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(duet go); COMP_CWORD=1; COMP_LINE='duet go'; COMP_POINT=7; \
             _duet duet go duet; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "goal",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_shell_gets_a_script() {
    let d = Device::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        assert!(
            d.ok(&["completions", shell]).contains("duet"),
            "{shell} completions name duet"
        );
    }
    let r = d.run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2, "an unknown shell is a usage error: {}", r.stderr);
}

#[test]
fn the_manual_page_is_roff_groff_reads_without_warnings() {
    let d = Device::new();
    let page = d.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH duet"),
        "{page}"
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("man1");
    d.ok(&["man", "--dir", dir.to_str().expect("utf-8 path")]);
    for name in ["duet.1", "duet-goal.1", "duet-goal-add.1", "duet-rate.1"] {
        assert!(dir.join(name).is_file(), "{name} written");
    }
    // Every page the manual names is one `--dir` writes (it named `duet-help(1)`).
    for line in page
        .lines()
        .filter(|l| l.starts_with("duet\\-") && l.ends_with("(1)"))
    {
        let name = line.replace("\\-", "-").replace("(1)", ".1");
        assert!(dir.join(&name).is_file(), "{name} named but not written");
    }
    let Some(()) = tool("groff") else { return };
    let mut groff = Command::new("groff")
        .args(["-man", "-z", "-ww"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff runs");
    std::io::Write::write_all(&mut groff.stdin.take().expect("stdin"), page.as_bytes())
        .expect("page written to groff");
    let out = groff.wait_with_output().expect("groff ends");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no groff warnings"
    );
}

/// Every subcommand path of `duet` (`["goal", "add"]`, ...), read from the help itself.
fn subcommands(d: &Device, path: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let help = d.ok(&args);
    let mut out = Vec::new();
    let Some(list) = help.split("Commands:\n").nth(1) else {
        return out;
    };
    for line in list.lines().take_while(|l| l.starts_with("  ")) {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name == "help" {
            continue;
        }
        let mut sub: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        sub.push(name.to_string());
        let sub_ref: Vec<&str> = sub.iter().map(String::as_str).collect();
        out.extend(subcommands(d, &sub_ref));
        out.push(sub);
    }
    out
}

#[test]
fn every_help_shows_global_options_apart_and_never_mentions_cargo() {
    let d = Device::new();
    let all = subcommands(&d, &[]);
    assert!(all.len() > 20, "the walk finds the subcommands: {all:?}");
    assert!(
        !d.ok(&["--help"]).contains("cargo"),
        "the top help names `duet demo`"
    );
    for sub in &all {
        let mut args: Vec<&str> = sub.iter().map(String::as_str).collect();
        args.push("--help");
        let help = d.ok(&args);
        assert!(!help.contains("cargo"), "{args:?} mentions cargo");
        let global = help
            .split("Global options:")
            .nth(1)
            .unwrap_or_else(|| panic!("{args:?} has no Global options heading:\n{help}"));
        for flag in ["--home", "--json", "--quiet", "--color"] {
            assert!(
                global.contains(flag),
                "{args:?}: {flag} under Global options"
            );
        }
        let own = help.split("Global options:").next().unwrap_or_default();
        assert!(
            !own.contains("--home <DIR>"),
            "{args:?}: --home is not among the command's own options"
        );
    }
}

/// A script's author looks for the exit codes in the help and the manual, not only in
/// README.md: both list the four, with what 3 means.
#[test]
fn the_help_and_the_manual_list_the_exit_codes() {
    let d = Device::new();
    for text in [d.ok(&["--help"]), d.ok(&["man"])] {
        let codes = text
            .split("Exit codes:")
            .nth(1)
            .unwrap_or_else(|| panic!("no exit codes in: {text}"));
        for code in [
            "0  success",
            "1  failure",
            "2  usage error",
            "3  a failure that can pass later",
        ] {
            assert!(codes.contains(code), "{code} missing from: {codes}");
        }
    }
}

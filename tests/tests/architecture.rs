//! The shape of the code, kept by a test (docs/architecture.md): the CLI stands on core's
//! application layer and never on the store or the document; files and functions stay
//! small enough to read; protocol strings live in the protocol module only.
//!
//! These read the source as text; they build nothing and take milliseconds.

use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read source dir") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A file's lines before its `#[cfg(test)]` module (tests may be long).
fn non_test_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read source file");
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .map(str::to_string)
        .collect()
}

/// The source folders the limits apply to.
fn source_dirs() -> Vec<PathBuf> {
    ["core/src", "sync-server/src", "cli/src"]
        .iter()
        .map(|d| root().join(d))
        .collect()
}

/// Exceptions recorded in docs/decisions.md ("Long on purpose"): `path` or `path::fn`.
fn exceptions() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/decisions.md")).expect("decisions");
    text.lines()
        .filter_map(|l| l.strip_prefix("- long on purpose: `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_cli_does_not_depend_on_the_store_or_the_document() {
    let manifest = std::fs::read_to_string(root().join("cli/Cargo.toml")).expect("manifest");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("cli has dependencies");
    let deps = deps.split("\n[").next().unwrap_or(deps);
    for forbidden in ["rusqlite", "automerge", "autosurgeon"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(forbidden)),
            "the CLI must reach the store and the document through duet_core::app, not depend on {forbidden}"
        );
    }
    for file in rust_files(&root().join("cli/src")) {
        let text = std::fs::read_to_string(&file).expect("read");
        for forbidden in [
            "serde_json::Value",
            "duet_core::store::Store",
            ".store.",
            "duet_core::doc::",
            "fold_state",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}: render typed values from duet_core::app instead",
                file.display()
            );
        }
    }
}

#[test]
fn source_files_stay_under_600_lines_of_non_test_code() {
    let allowed = exceptions();
    let mut long = Vec::new();
    for dir in source_dirs() {
        for file in rust_files(&dir) {
            let rel = file
                .strip_prefix(root())
                .expect("below root")
                .display()
                .to_string();
            let n = non_test_lines(&file).len();
            if n > 600 && !allowed.contains(&rel) {
                long.push(format!("{rel}: {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these files (or say why in docs/decisions.md, \"long on purpose\"): {long:#?}"
    );
}

/// The functions of a file longer than `max` lines: (name, first line, length).
fn long_functions(lines: &[String], max: usize) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let mut depth = 0i64;
        let mut started = false;
        for (j, l) in lines.iter().enumerate().skip(i) {
            let code = strip_strings_and_comments(l);
            if !started && code.contains(';') && !code.contains('{') {
                break; // a declaration without a body
            }
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            started |= code.contains('{');
            if started && depth <= 0 {
                let len = j - i + 1;
                if len > max {
                    out.push((name.clone(), i + 1, len));
                }
                break;
            }
        }
    }
    out
}

/// The name of the function a line starts, if it starts one.
fn fn_name(line: &str) -> Option<String> {
    let t = line.trim_start();
    let t = t
        .strip_prefix("pub(crate) ")
        .or_else(|| t.strip_prefix("pub(super) "))
        .or_else(|| t.strip_prefix("pub "))
        .unwrap_or(t);
    let t = t.strip_prefix("async ").unwrap_or(t);
    let t = t.strip_prefix("const ").unwrap_or(t);
    let rest = t.strip_prefix("fn ")?;
    Some(
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect(),
    )
}

/// A line without its string literals, char literals of braces and `//` comment, so
/// that braces in them are not counted.
fn strip_strings_and_comments(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_str => {
                chars.next();
            }
            '"' => in_str = !in_str,
            '\'' if !in_str => {
                // '{' and '}' as char literals.
                if let (Some(b), Some('\'')) = (chars.next(), chars.peek().copied())
                    && (b == '{' || b == '}')
                {
                    chars.next();
                }
            }
            '/' if !in_str && chars.peek() == Some(&'/') => break,
            c if !in_str => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn functions_stay_under_80_lines() {
    let allowed = exceptions();
    let mut long = Vec::new();
    for dir in source_dirs() {
        for file in rust_files(&dir) {
            let rel = file
                .strip_prefix(root())
                .expect("below root")
                .display()
                .to_string();
            for (name, line, len) in long_functions(&non_test_lines(&file), 80) {
                if !allowed.contains(&format!("{rel}::{name}")) {
                    long.push(format!("{rel}:{line} {name}: {len} lines"));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "break these functions up (or say why in docs/decisions.md, \"long on purpose\"): {long:#?}"
    );
}

#[test]
fn the_length_check_finds_a_long_function() {
    let mut lines = vec!["fn long() {".to_string()];
    lines.extend((0..85).map(|i| format!("    let s{i} = \"{{\";")));
    lines.push("}".to_string());
    lines.push("fn short() { }".to_string());
    assert_eq!(
        long_functions(&lines, 80),
        vec![("long".to_string(), 1, 87)]
    );
}

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
            ".store",
            "duet_core::doc",
            "fold_state",
        ] {
            assert!(
                !contains_word(&text, forbidden),
                "{} uses {forbidden}: render typed values from duet_core::app instead",
                file.display()
            );
        }
    }
}

/// Whether `needle` stands in `text` as a whole name (not as the start of a longer one:
/// `StoreError` is not `Store`).
fn contains_word(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Every source file the limits apply to: (path relative to the root, path).
fn source_files() -> Vec<(String, PathBuf)> {
    source_dirs()
        .iter()
        .flat_map(|dir| rust_files(dir))
        .map(|file| {
            let rel = file
                .strip_prefix(root())
                .expect("below root")
                .display()
                .to_string();
            (rel, file)
        })
        .collect()
}

#[test]
fn source_files_stay_under_600_lines_of_non_test_code() {
    let allowed = exceptions();
    let mut long = Vec::new();
    for (rel, file) in source_files() {
        let n = non_test_lines(&file).len();
        if n > 600 && !allowed.contains(&rel) {
            long.push(format!("{rel}: {n} lines"));
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
    for (rel, file) in source_files() {
        // A `tests.rs` is a test module of its own (`#[cfg(test)] mod tests;`).
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        for (name, line, len) in long_functions(&non_test_lines(&file), 80) {
            if !allowed.contains(&format!("{rel}::{name}")) {
                long.push(format!("{rel}:{line} {name}: {len} lines"));
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

/// The top-level modules a piece of code names through `crate::`: `crate::a::b` and
/// each first segment of a group, `use crate::{a::X, b, c::{..}}`.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(ident(rest));
            continue;
        };
        // The group's top-level items, up to its closing brace.
        let (mut depth, mut item_start) = (0usize, true);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && !c.is_whitespace() => {
                    out.push(ident(&group[i..]));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn crate_paths_reads_plain_and_grouped_imports() {
    let code =
        "use crate::a::X;\nuse crate::{\n    b::{Y, Z},\n    c,\n};\nfn f() { crate::d::g(); }";
    assert_eq!(crate_paths(code), ["a", "b", "c", "d"]);
}

/// Core's top-level modules and, for each, the other top-level modules its non-test
/// code names (`crate::x`).
fn core_module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = root().join("core/src");
    let mut modules = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("core/src") {
        let p = entry.expect("entry").path();
        let name = p.file_stem().expect("name").to_string_lossy().to_string();
        if name == "lib" {
            continue;
        }
        let files = if p.is_dir() { rust_files(&p) } else { vec![p] };
        modules.insert(name, files);
    }
    let names: Vec<String> = modules.keys().cloned().collect();
    let mut graph = std::collections::BTreeMap::new();
    for (name, files) in &modules {
        let mut deps = std::collections::BTreeSet::new();
        for f in files {
            let code: String = non_test_lines(f)
                .iter()
                .map(|l| l.split("//").next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join("\n");
            for used in crate_paths(&code) {
                if used != *name && names.contains(&used) {
                    deps.insert(used);
                }
            }
        }
        graph.insert(name.clone(), deps);
    }
    graph
}

#[test]
fn core_modules_import_one_another_without_cycles() {
    let graph = core_module_graph();
    // Depth-first search for a back edge; reports the first cycle found.
    fn visit(
        m: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for m in graph.keys() {
        let cycle = visit(m, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "core modules import one another in a cycle: {}",
            cycle.unwrap_or_default().join(" -> ")
        );
    }
    assert!(
        graph.get("app").is_some_and(|d| d.contains("device")),
        "the graph reads imports (app uses device): {graph:?}"
    );
}

/// The protocol's strings, read from the protocol module: its `&str` constants (paths,
/// header names) and the wire strings of its error codes (`Variant = "code"`).
fn protocol_strings() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("core/src/protocol.rs")).expect("protocol");
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let quoted = line.split('"').nth(1).filter(|s| !s.is_empty());
        let is_const = line.starts_with("pub const ") && line.contains(": &str = \"");
        let is_code = line.ends_with("\",")
            && line
                .split(" = \"")
                .next()
                .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_alphanumeric()));
        if let (Some(s), true) = (quoted, is_const || is_code) {
            out.push(s.to_string());
        }
    }
    out
}

#[test]
fn protocol_strings_are_written_once_in_the_protocol_module() {
    let strings = protocol_strings();
    assert!(
        strings.iter().any(|s| s == "duet-signature")
            && strings.iter().any(|s| s == "bad_signature"),
        "the protocol module's strings are read: {strings:?}"
    );
    let protocol = root().join("core/src/protocol.rs");
    let mut restated = Vec::new();
    for (rel, file) in source_files() {
        if file == protocol || file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code: Vec<String> = non_test_lines(&file)
            .iter()
            .map(|l| l.split("//").next().unwrap_or("").to_string())
            .collect();
        for s in &strings {
            if code.iter().any(|l| l.contains(&format!("\"{s}\""))) {
                restated.push(format!("{rel}: \"{s}\""));
            }
        }
    }
    assert!(
        restated.is_empty(),
        "use duet_core::protocol's constants and ErrorCode instead of restating: {restated:#?}"
    );
}

/// Core says what to do next as a `NextStep` that each front end words; a command typed
/// in a terminal, named in core's own texts, reached the app's pages as it was.
#[test]
fn core_names_no_command_line_in_what_it_says() {
    let mut named = Vec::new();
    for file in rust_files(&root().join("core/src")) {
        for (i, line) in non_test_lines(&file).iter().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || !code.contains("`duet ") {
                continue;
            }
            // Which processes hold a home open is said, not what to type.
            if code.contains("(a `duet sync --watch`, or `duet app`") {
                continue;
            }
            named.push(format!("{}:{}: {code}", file.display(), i + 1));
        }
    }
    assert!(
        named.is_empty(),
        "say the next step as a NextStep (core/src/advice.rs):\n{}",
        named.join("\n")
    );
}

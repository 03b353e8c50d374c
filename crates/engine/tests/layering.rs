//! ARCHITECTURE.md: the engine knows no SQL, HTTP or wire format. These read the crate's own
//! manifest and sources, so a change that brings one in fails here, not in a review.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file is UTF-8");
            out.push((path, text));
        }
    }
}

/// Source lines that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.starts_with("//"))
}

#[test]
fn the_engine_depends_on_no_http_sql_or_schema_crate() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("the manifest has dependencies");
    for forbidden in [
        "utoipa", "axum", "sea-orm", "sqlx", "reqwest", "hyper", "tower",
    ] {
        let listed = deps.lines().any(|l| l.trim_start().starts_with(forbidden));
        assert!(
            !listed,
            "crates/engine depends on {forbidden}: that belongs to an outer crate"
        );
    }
}

#[test]
fn the_engines_types_carry_no_wire_shape() {
    let mut files = Vec::new();
    sources(&crate_dir().join("src"), &mut files);
    assert!(files.len() > 10, "the engine's sources were found");
    let mut found = Vec::new();
    for (path, text) in &files {
        let name = path
            .strip_prefix(crate_dir())
            .unwrap()
            .display()
            .to_string();
        for (n, line) in code_lines(text) {
            let derives_serde = line.starts_with("#[derive(") && line.contains("Serialize");
            let wire = derives_serde
                || ["#[serde(", "ToSchema", "utoipa"]
                    .iter()
                    .any(|w| line.contains(w));
            // Allowed: the id newtypes (a number in every reader's eyes), and the claims of a
            // platform login token, whose JWT is the engine's own format.
            let allowed = (name.ends_with("model.rs")
                && (line.contains("PartialOrd, Ord, Serialize, Deserialize)]")
                    || line == "#[serde(transparent)]"))
                || (name.ends_with("login_tokens.rs")
                    && line == "#[derive(Debug, Serialize, Deserialize)]");
            if wire && !allowed {
                found.push(format!("{name}:{n}: {line}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the API's shapes live in crates/http (…In/…Out types), not in the engine:\n{}",
        found.join("\n")
    );
}

#[test]
fn engine_messages_name_no_route() {
    let mut files = Vec::new();
    sources(&crate_dir().join("src"), &mut files);
    let mut found = Vec::new();
    for (path, text) in &files {
        for (n, line) in code_lines(text) {
            if line.contains("\"") && line.contains("/api/v1") {
                found.push(format!("{}:{n}: {line}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "an engine error says what is wrong; crates/http adds the route that helps:\n{}",
        found.join("\n")
    );
}

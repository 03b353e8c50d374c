//! The configuration file, `hookflow config print` and the CLI's polish (`--version`,
//! completions), all through the real binary.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

/// Runs `hookflow <args>` with only the `HOOKFLOW_*` variables given in `env`.
fn hookflow(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookflow"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOOKFLOW_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("running the hookflow binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `config print`'s line for `key`: `(value, source)`.
fn printed(text: &str, key: &str) -> (String, String) {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} is not printed:\n{text}"));
    let rest = &line[key.len() + 3..];
    let (value, source) = rest.rsplit_once("  # ").unwrap_or((rest, ""));
    (value.trim_matches('"').to_owned(), source.to_owned())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn flags_beat_the_environment_which_beats_the_file_which_beats_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "hookflow.toml",
        "max-retries = 3\nretry-base-ms = 500\nconcurrency = 64\n\
         allow-private-targets = [\"10.0.0.0/8\", \"127.0.0.1\"]\n",
    );
    let out = hookflow(
        &[
            "config",
            "print",
            "--config",
            &file,
            "--retry-base-ms",
            "700",
        ],
        &[
            ("HOOKFLOW_MAX_RETRIES", "4"),
            ("HOOKFLOW_RETRY_MAX_MS", "9000"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        printed(&text, "retry-base-ms"),
        ("700".into(), "flag".into())
    );
    assert_eq!(
        printed(&text, "max-retries"),
        ("4".into(), "env HOOKFLOW_MAX_RETRIES".into())
    );
    assert_eq!(
        printed(&text, "retry-max-ms"),
        ("9000".into(), "env HOOKFLOW_RETRY_MAX_MS".into())
    );
    assert_eq!(printed(&text, "concurrency"), ("64".into(), "file".into()));
    assert_eq!(
        printed(&text, "allow-private-targets"),
        ("10.0.0.0/8,127.0.0.1".into(), "file".into())
    );
    assert_eq!(
        printed(&text, "delivery-timeout-ms"),
        ("10000".into(), "default".into())
    );
    assert!(text.contains("# notify-email = (not set)"), "{text}");

    // What config print shows is itself a configuration file hookflow accepts.
    let again = write(dir.path(), "printed.toml", &text);
    let out = hookflow(&["config", "print", "--config", &again], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(printed(&stdout(&out), "retry-base-ms").0, "700");
}

#[test]
fn config_print_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "hookflow.toml",
        "admin-token = \"t0ken-from-the-file\"\n\
         smtp-url = \"smtps://mailer:hunter2-pw@mail.example.com:465\"\n",
    );
    let out = hookflow(
        &["config", "print", "--config", &file],
        &[(
            "HOOKFLOW_SECRET_KEY",
            "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGhlLXRlc3Qtb25seQ==",
        )],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for secret in ["t0ken-from-the-file", "hunter2-pw", "c2VjcmV0LWtleS1ieXRl"] {
        assert!(!text.contains(secret), "{secret} is shown:\n{text}");
    }
    assert_eq!(printed(&text, "admin-token").0, "********");
    assert_eq!(printed(&text, "secret-key").0, "********");
    assert_eq!(
        printed(&text, "smtp-url").0,
        "smtps://mailer:********@mail.example.com:465"
    );
}

#[test]
fn unknown_keys_and_bad_values_stop_the_start_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/never.db?mode=rwc", dir.path().display());
    let cases = [
        (
            "unknown.toml",
            "colour = \"blue\"\n",
            vec!["unknown key `colour`"],
        ),
        (
            "snake.toml",
            "max_retries = 3\n",
            vec!["unknown key `max_retries`", "`max-retries`"],
        ),
        (
            "bad.toml",
            "max-retries = \"many\"\n",
            vec!["key `max-retries`", "many"],
        ),
        (
            "range.toml",
            "retain-failed-days = 0\n",
            vec!["key `retain-failed-days`"],
        ),
        (
            "enum.toml",
            "log-format = \"xml\"\n",
            vec!["key `log-format`", "xml"],
        ),
        ("table.toml", "[listen]\nport = 1\n", vec!["key `listen`"]),
        ("syntax.toml", "listen = \n", vec!["not valid TOML"]),
    ];
    for (name, text, expected) in cases {
        let file = write(dir.path(), name, text);
        let out = hookflow(&["serve", "--config", &file, "--database-url", &db], &[]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{name} was accepted:\n{err}");
        assert!(err.contains(&file), "{name}: the file is not named:\n{err}");
        for part in expected {
            assert!(err.contains(part), "{name}: {part:?} missing from:\n{err}");
        }
    }
    let out = hookflow(&["serve", "--config", "/nonexistent/hookflow.toml"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/hookflow.toml"));
    assert!(
        !dir.path().join("never.db").exists(),
        "nothing starts on a bad configuration"
    );
}

#[test]
fn the_example_file_documents_every_key_and_is_accepted_as_written_and_uncommented() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("hookflow.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let documented: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# ")?.split_once(" = ").map(|(k, _)| k))
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(str::to_owned)
        .collect();
    let out = hookflow(&["config", "print"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let keys: BTreeSet<String> = stdout(&out)
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("# ").unwrap_or(l);
            l.split_once(" = ").map(|(k, _)| k.to_owned())
        })
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    assert_eq!(documented, keys, "the example and the settings differ");

    let example_path = example.to_string_lossy().into_owned();
    let out = hookflow(&["config", "print", "--config", &example_path], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| documented.contains(k)) =>
            {
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let file = write(dir.path(), "all.toml", &uncommented);
    let out = hookflow(&["config", "print", "--config", &file], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(printed(&stdout(&out), "metrics-listen").1, "file");
}

#[test]
fn version_names_the_commit_and_completions_are_generated() {
    let out = hookflow(&["--version"], &[]);
    assert!(out.status.success());
    let version = stdout(&out);
    assert!(
        version.starts_with(&format!("hookflow {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let commit = version
        .trim()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap();
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = hookflow(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("hookflow") && script.contains("max-retries"),
            "{shell}"
        );
    }
    // Every flag says what it does.
    let out = hookflow(&["serve", "--help"], &[]);
    let help = stdout(&out);
    for flag in [
        "--config",
        "--log",
        "--log-format",
        "--metrics-listen",
        "--max-retries",
    ] {
        let line = help
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(&format!("{flag} ")))
            .nth(1)
            .unwrap_or_else(|| panic!("{flag} is not in the help:\n{help}"));
        assert!(!line.trim().is_empty(), "{flag} has no help text");
    }
}

both_backends! {
    async fn serve_takes_its_settings_from_the_file(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "hookflow.toml", "admin-token = \"file-t0ken\"\nmax-retries = 0\n");
        let db = TestDb::new(backend).await;
        let app =
            TestApp::spawn_binary_with(&db, &["--config", &file, "--no-default", "--admin-token"]).await;
        // The harness does not know the token: only the file set it.
        let (status, _) = app.get_json("/api/v1/shops").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, shop) = app
            .request_as(Some("file-t0ken"), Method::POST, "/api/v1/shops", Some(RequestBody::Json(json!({"name": "Main"}))))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{shop}");
        // max-retries = 0 from the file: one attempt, then failed.
        let receiver = Receiver::always(Reply::status(503)).await;
        let (status, _) = app
            .request_as(Some("file-t0ken"), Method::POST, "/api/v1/triggers",
                Some(RequestBody::Json(webhook_trigger("OrderChanged", &receiver.url("/hook")))))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = app
            .request_as(Some("file-t0ken"), Method::POST, "/api/v1/events",
                Some(RequestBody::Json(event("OrderChanged", id(&shop), 1, json!({})))))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        wait_for(WAIT, "the call to fail after one attempt", async || {
            let (_, page) = app
                .request_as(Some("file-t0ken"), Method::GET, "/api/v1/queue?status=failed", None)
                .await;
            page["items"].as_array().filter(|i| i.len() == 1).map(|_| ())
        })
        .await;
        assert_eq!(receiver.count(), 1);
    }
}

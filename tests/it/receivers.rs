//! The receiver guides run: the Python and Node receivers of `examples/receivers/` start as real
//! processes with the official Standard Webhooks libraries (from PyPI and npm), hookflow sends
//! them signed calls, and they accept those and refuse what is forged: a tampered body, a wrong
//! secret, a stale timestamp.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::*;

/// The secret the receivers are started with and the trigger signs with.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Another valid secret: calls signed with it must be refused.
const WRONG_SECRET: &str = "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCB5b3Ugd2FudA==";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A directory under `target/` with the Node example's dependencies installed from npm by its
/// own `package.json`, made on first use. The example is copied in beside them before each
/// start (an ES module resolves `node_modules` from its own folder).
fn node_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo().join("target/test-node-receiver");
        let ready = || {
            dir.join("node_modules/standardwebhooks/package.json")
                .exists()
        };
        // Several test processes may get here at once: one installs (mkdir is atomic), the
        // others wait for it.
        let lock = dir.with_extension("installing");
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while !ready() {
            let _ = std::fs::create_dir_all(&dir);
            if std::fs::create_dir(&lock).is_ok() {
                let installed = std::fs::copy(
                    repo().join("examples/receivers/node/package.json"),
                    dir.join("package.json"),
                )
                .is_ok()
                    && std::process::Command::new("npm")
                        .args(["install", "--no-audit", "--no-fund", "--quiet"])
                        .current_dir(&dir)
                        .status()
                        .is_ok_and(|s| s.success());
                let _ = std::fs::remove_dir(&lock);
                assert!(
                    installed,
                    "could not npm install the Node receiver's dependencies in {} \
                     (node and npm are needed: apt-get install nodejs npm)",
                    dir.display()
                );
            } else {
                assert!(
                    std::time::Instant::now() < deadline,
                    "timed out waiting for {} to be installed",
                    dir.display()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        dir
    })
}

/// An example receiver running as a child process.
struct ExampleReceiver {
    name: &'static str,
    port: u16,
    output: Arc<Mutex<Vec<String>>>,
    _child: Child,
    /// The copy of the Node example, removed when the receiver goes.
    script: Option<PathBuf>,
}

impl Drop for ExampleReceiver {
    fn drop(&mut self) {
        if let Some(script) = &self.script {
            let _ = std::fs::remove_file(script);
        }
    }
}

impl ExampleReceiver {
    async fn python() -> ExampleReceiver {
        let mut command = Command::new(crate::security::python());
        command.arg(repo().join("examples/receivers/python/receiver.py"));
        ExampleReceiver::start("python", command).await
    }

    async fn node() -> ExampleReceiver {
        let dir = node_dir();
        let script = dir.join(format!("receiver-{}.mjs", std::process::id()));
        std::fs::copy(repo().join("examples/receivers/node/receiver.mjs"), &script)
            .expect("copying the Node example");
        let mut command = Command::new("node");
        command.arg(&script);
        let mut receiver = ExampleReceiver::start("node", command).await;
        receiver.script = Some(script);
        receiver
    }

    /// Starts `command` with the secret and a free port, and waits for the line that names
    /// the port.
    async fn start(name: &'static str, mut command: Command) -> ExampleReceiver {
        let mut child = command
            .env("WEBHOOK_SECRET", SECRET)
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {name} receiver: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let port = wait_for(
            Duration::from_secs(30),
            &format!("the {name} receiver to say where it listens"),
            async || {
                output.lock().unwrap().iter().find_map(|line| {
                    line.strip_prefix("listening on http://127.0.0.1:")
                        .and_then(|p| p.trim().parse::<u16>().ok())
                })
            },
        )
        .await;
        ExampleReceiver {
            name,
            port,
            output,
            _child: child,
            script: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Posts `body` with Standard Webhooks headers as given; returns the receiver's status.
    async fn post_signed(&self, id: &str, timestamp: u64, signature: &str, body: &str) -> u16 {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(self.url())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("posting to the {} receiver: {e}", self.name))
            .status()
            .as_u16()
    }
}

/// `v1,<base64>` over `{id}.{timestamp}.{body}`, as the Standard Webhooks specification says.
fn sign(secret: &str, id: &str, timestamp: u64, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a whsec_ secret is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// hookflow's signed calls reach `receiver` and succeed; hand-made forgeries are refused.
async fn the_receiver_accepts_our_calls_and_refuses_forgeries(
    backend: Backend,
    receiver: ExampleReceiver,
) {
    let app = spawn_app(backend).await;
    let shop = app.create_shop("Main").await;
    app.create_trigger(json!({
        "name": format!("Orders to the {} example", receiver.name),
        "eventType": "OrderChanged",
        "actions": [
            // The default payload, and a template whose body is not ASCII: the receivers must
            // verify the bytes as sent.
            {"type": "callWebhook", "url": receiver.url(), "hmacSecret": SECRET},
            {"type": "callWebhook", "url": receiver.url(), "hmacSecret": SECRET,
             "payload": {"mimeType": "application/json",
                         "body": "{\"order\": {{ entity.OrderCode }}, \"note\": {{ entity.Note }}}"}},
        ],
    }))
    .await;
    for order in [41, 42] {
        app.post_event(event(
            "OrderChanged",
            shop,
            order,
            json!({"OrderId": order, "OrderCode": format!("ORD-{order}"), "Note": "Grüße, \"quoted\" & <xml>"}),
        ))
        .await;
    }
    let calls = app.wait_for_queue_count("status=succeeded", 4).await;
    for call in &calls {
        let webhook_id = call["webhookId"].as_str().unwrap();
        wait_until(
            Duration::from_secs(10),
            &format!(
                "the {} receiver logs {webhook_id} as verified",
                receiver.name
            ),
            async || {
                receiver
                    .output()
                    .contains(&format!("verified: {webhook_id}"))
            },
        )
        .await;
    }
    let detail = app.queue_item(id(&calls[0])).await;
    assert_eq!(detail["attemptLog"][0]["statusCode"], 204, "{detail}");

    // Forgeries, next to a hand-made call that is signed right (so a refusal below is the
    // receiver's judgement of the flaw, not of our signing).
    let body = r#"{"eventId": 9, "eventType": "OrderChanged", "entityData": {"OrderId": 9}}"#;
    let ts = now();
    let good = sign(SECRET, "msg_hand_made", ts, body);
    assert_eq!(
        receiver.post_signed("msg_hand_made", ts, &good, body).await,
        204,
        "a correctly signed call is accepted; output:\n{}",
        receiver.output()
    );
    let tampered = body.replace("\"OrderId\": 9", "\"OrderId\": 10");
    assert_eq!(
        receiver
            .post_signed(
                "msg_tampered",
                ts,
                &sign(SECRET, "msg_tampered", ts, body),
                &tampered
            )
            .await,
        401,
        "a tampered body is refused"
    );
    assert_eq!(
        receiver
            .post_signed(
                "msg_wrong",
                ts,
                &sign(WRONG_SECRET, "msg_wrong", ts, body),
                body
            )
            .await,
        401,
        "a call signed with another secret is refused"
    );
    let stale = ts - 10 * 60;
    assert_eq!(
        receiver
            .post_signed(
                "msg_stale",
                stale,
                &sign(SECRET, "msg_stale", stale, body),
                body
            )
            .await,
        401,
        "a call signed ten minutes ago is refused"
    );
    // The receiver logs why it refused each (its output is read as it comes).
    wait_until(
        Duration::from_secs(10),
        "the receiver logs three refusals",
        async || receiver.output().matches("refused:").count() == 3,
    )
    .await;
}

both_backends! {
    async fn the_python_example_receiver_verifies_real_calls(backend: Backend) {
        the_receiver_accepts_our_calls_and_refuses_forgeries(backend, ExampleReceiver::python().await).await;
    }

    async fn the_node_example_receiver_verifies_real_calls(backend: Backend) {
        the_receiver_accepts_our_calls_and_refuses_forgeries(backend, ExampleReceiver::node().await).await;
    }
}

/// The guide shows the examples' files: every file it links to exists.
#[test]
fn the_receiving_guide_links_to_files_that_exist() {
    let guide = std::fs::read_to_string(repo().join("docs/receiving.md")).unwrap();
    let mut links = 0;
    for part in guide.split("](../").skip(1) {
        let target = part.split(')').next().unwrap().split('#').next().unwrap();
        assert!(
            Path::new(&repo()).join(target).exists(),
            "docs/receiving.md links to ../{target}, which does not exist"
        );
        links += 1;
    }
    assert!(
        links >= 5,
        "the guide links to the examples ({links} links)"
    );
}

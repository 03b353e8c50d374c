//! Secure delivery: basic auth, signatures verified by the official Standard Webhooks library
//! and a plain HMAC, client certificates against a real mTLS server, secrets at rest.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// A Python with the official `standardwebhooks` package, in a virtualenv under `target/` made
/// on first use (PyPI is one of this project's registries), so the tests need nothing installed
/// by hand beyond Python itself.
pub(crate) fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv");
        let python = venv.join("bin/python");
        let ready = || {
            Command::new(&python)
                .args(["-c", "import standardwebhooks"])
                .status()
                .is_ok_and(|s| s.success())
        };
        // Several test processes may get here at once: one builds (mkdir is atomic), the
        // others wait for it.
        let lock = venv.with_extension("building");
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while !ready() {
            let _ = std::fs::create_dir_all(venv.parent().unwrap());
            if std::fs::create_dir(&lock).is_ok() {
                let built = Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .status()
                    .is_ok_and(|s| s.success())
                    && Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", "standardwebhooks"])
                        .status()
                        .is_ok_and(|s| s.success());
                let _ = std::fs::remove_dir(&lock);
                assert!(
                    built,
                    "could not make a virtualenv with standardwebhooks under {}",
                    venv.display()
                );
            } else {
                assert!(
                    std::time::Instant::now() < deadline,
                    "timed out waiting for {} to be built",
                    venv.display()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        python
    })
}

/// Verifies a received call with the Standard Webhooks library; returns the library's verdict.
fn standard_webhooks_verify(secret: &str, request: &Recorded) -> Result<(), String> {
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    Value::String(request.header(h).unwrap_or_default().to_string()),
                )
            })
            .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
secret, headers, body = sys.argv[1], json.loads(sys.argv[2]), sys.stdin.buffer.read()
try:
    Webhook(secret).verify(body, headers)
except WebhookVerificationError as e:
    print("refused:", e, file=sys.stderr)
    sys.exit(1)
except json.JSONDecodeError:
    pass  # verify() checks the signature first, then parses the body, which a GET lacks
print("verified")
"#;
    let mut child = Command::new(python())
        .args(["-c", script, secret, &Value::Object(headers).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.body)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Checks `X-Hub-Signature-256` with Python's standard `hmac` module.
fn hub_verify(secret: &str, request: &Recorded) -> bool {
    let script = r#"
import hmac, hashlib, sys
secret, header, body = sys.argv[1], sys.argv[2], sys.stdin.buffer.read()
expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(expected, header) else 1)
"#;
    let header = request
        .header("x-hub-signature-256")
        .unwrap_or_default()
        .to_string();
    let mut child = Command::new("python3")
        .args(["-c", script, secret, &header])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("running python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.body)
        .unwrap();
    child.wait().unwrap().success()
}

fn with_action(event_type: &str, action: Value) -> Value {
    json!({"name": "secure", "eventType": event_type, "actions": [action]})
}

async fn reveal(app: &TestApp, trigger: &Value) -> String {
    let (status, body) = app
        .post_json(
            &format!("/api/v1/triggers/{}/actions/0/reveal-secret", id(trigger)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hmacSecret"].as_str().unwrap().to_string()
}

both_backends! {
    async fn calls_carry_basic_auth_and_a_standard_webhooks_signature(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let trigger = app
            .create_trigger(with_action("OrderChanged", json!({
                "type": "callWebhook", "url": receiver.url("/hook"),
                "basicAuth": {"username": "erp", "password": "s3cr3t-pw"},
                "hmacSecret": "generate"
            })))
            .await;
        // The answer that generated the secret shows it, once; reads never show the secrets.
        let secret = trigger["actions"][0]["hmacSecret"]["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{secret}");
        let (_, read) = app.get_json(&format!("/api/v1/triggers/{}", id(&trigger))).await;
        let shown = read["actions"][0].clone();
        assert_eq!(shown["basicAuth"], json!({"username": "erp", "password": {"set": true}}));
        assert_eq!(shown["hmacSecret"], json!({"set": true}));
        assert_eq!(reveal(&app, &trigger).await, secret);

        app.post_event(event("OrderChanged", shop, 7, json!({"OrderId": 7}))).await;
        let got = receiver.wait_for_requests(1, Duration::from_secs(10)).await;
        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("erp:s3cr3t-pw"));
        assert_eq!(got[0].header("authorization"), Some(expected.as_str()));
        standard_webhooks_verify(&secret, &got[0]).expect("the official library accepts our signature");
        // A wrong secret is refused by the same library: the check is real.
        assert!(standard_webhooks_verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &got[0]).is_err());

        // The queue and its attempt log never show the credentials: the Authorization header
        // sent is listed (the call page shows what went out) with its value masked.
        let item = app.only_item("").await;
        let detail = app.queue_item(id(&item)).await;
        let text = detail.to_string();
        assert!(!text.contains("s3cr3t-pw"));
        let encoded = base64::engine::general_purpose::STANDARD.encode("erp:s3cr3t-pw");
        assert!(!text.contains(&encoded), "{detail:#}");
        for attempt in detail["attemptLog"].as_array().unwrap() {
            let sent: Vec<(String, String)> =
                serde_json::from_value(attempt["requestHeaders"].clone()).unwrap();
            let auth = sent.iter().find(|(n, _)| n.eq_ignore_ascii_case("authorization"));
            assert_eq!(auth.map(|(_, v)| v.as_str()), Some("Basic ••••••"), "{sent:?}");
        }
    }

    async fn get_calls_and_the_hub_scheme_are_signed(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let pasted = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        app.create_trigger(with_action("OrderChanged", json!({
            "type": "callWebhook", "url": receiver.url("/get"), "method": "GET", "hmacSecret": pasted
        })))
        .await;
        app.create_trigger(with_action("OrderChanged", json!({
            "type": "callWebhook", "url": receiver.url("/hub"), "hmacSecret": pasted,
            "signatureScheme": "hubSha256"
        })))
        .await;
        app.post_event(event("OrderChanged", shop, 9, json!({"OrderId": 9}))).await;
        let got = receiver.wait_for_requests(2, Duration::from_secs(10)).await;
        let get = got.iter().find(|r| r.method == "GET").unwrap();
        assert!(get.body.is_empty());
        standard_webhooks_verify(pasted, get).expect("GET calls are signed over an empty body");
        let hub = got.iter().find(|r| r.path == "/hub").unwrap();
        assert!(hub_verify(pasted, hub), "X-Hub-Signature-256 verifies with a standard HMAC");
        assert!(!hub_verify("another secret", hub));
    }

    async fn a_rotated_secret_keeps_the_old_one_valid(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let trigger = app
            .create_trigger(with_action("OrderChanged", json!({
                "type": "callWebhook", "url": receiver.url("/hook"), "hmacSecret": old
            })))
            .await;
        // Rotate by sending back what a read shows, with a new secret.
        let mut update = trigger.clone();
        update["actions"][0]["hmacSecret"] = json!("generate");
        for key in ["id", "createdAt", "updatedAt"] {
            update.as_object_mut().unwrap().remove(key);
        }
        let (status, updated) = app.put_json(&format!("/api/v1/triggers/{}", id(&trigger)), update).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert!(updated["actions"][0]["hmacSecret"]["previousValidUntil"].is_string(), "{updated}");
        let new = reveal(&app, &trigger).await;
        assert_ne!(new, old);

        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let got = receiver.wait_for_requests(1, Duration::from_secs(10)).await;
        assert_eq!(got[0].header("webhook-signature").unwrap().split(' ').count(), 2);
        standard_webhooks_verify(&new, &got[0]).expect("the new secret verifies");
        standard_webhooks_verify(old, &got[0]).expect("the old secret still verifies");
    }

    async fn bad_secrets_and_certificates_are_refused_at_save(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = "https://erp.example.com/hook";
        let cases = [
            (json!({"type": "callWebhook", "url": url, "hmacSecret": "not-a-secret"}), "actions[0].hmacSecret"),
            (json!({"type": "callWebhook", "url": url, "hmacSecret": "whsec_***"}), "actions[0].hmacSecret"),
            (json!({"type": "callWebhook", "url": url, "basicAuth": {"username": "u"}}), "actions[0].basicAuth.password"),
            (json!({"type": "callWebhook", "url": url,
                    "clientCertificate": {"certPem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", "keyPem": "x"}}),
             "certPem"),
            (json!({"type": "callWebhook", "url": url, "caPem": "garbage"}), "actions[0].caPem"),
        ];
        for (action, field) in cases {
            let answer = app.post_json("/api/v1/triggers", with_action("OrderChanged", action.clone())).await;
            let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(message.contains(field), "{action}: {message}");
        }
        // A key that does not match, and an expired certificate, say so.
        let pki = Pki::new();
        let (other_cert, _) = pki.client("other");
        let (cert, key) = pki.client("erp-client");
        let mismatched = app
            .post_json("/api/v1/triggers", with_action("OrderChanged", json!({"type": "callWebhook", "url": url,
                "clientCertificate": {"certPem": other_cert, "keyPem": key}})))
            .await;
        assert!(assert_error(&mismatched, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").contains("does not match"));
        let (expired, expired_key) = pki.expired_client();
        let answer = app
            .post_json("/api/v1/triggers", with_action("OrderChanged", json!({"type": "callWebhook", "url": url,
                "clientCertificate": {"certPem": expired, "keyPem": expired_key}})))
            .await;
        assert!(assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").contains("expired"));
        // A good one is described.
        let trigger = app
            .create_trigger(with_action("OrderChanged", json!({"type": "callWebhook", "url": url,
                "clientCertificate": {"certPem": cert, "keyPem": key}})))
            .await;
        let shown = &trigger["actions"][0]["clientCertificate"];
        assert!(shown["subject"].as_str().unwrap().contains("erp-client"), "{shown}");
        assert!(shown["issuer"].as_str().unwrap().contains("hookflow test CA"), "{shown}");
        assert!(shown["notAfter"].is_string());
        assert_eq!(shown["keyPem"], json!({"set": true}));
    }

    async fn mutual_tls_succeeds_with_the_certificate_and_fails_without(backend: Backend) {
        let app = spawn_app(backend).await;
        let pki = Pki::new();
        let server = MtlsServer::start(&pki).await;
        let shop = app.create_shop("Main").await;
        let (cert, key) = pki.client("erp-client");
        app.create_trigger(json!({"name": "with cert", "eventType": "OrderChanged", "actions": [{
            "type": "callWebhook", "url": server.url("/with"), "caPem": pki.ca_pem(),
            "clientCertificate": {"certPem": cert, "keyPem": key}}]}))
            .await;
        app.create_trigger(json!({"name": "without", "eventType": "OrderCreated", "actions": [{
            "type": "callWebhook", "url": server.url("/without"), "caPem": pki.ca_pem()}]}))
            .await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        app.post_event(event("OrderCreated", shop, 2, json!({}))).await;
        let ok = app.wait_for_queue_count("eventType=OrderChanged&status=succeeded", 1).await;
        assert_eq!(ok[0]["lastStatusCode"], 200);
        assert_eq!(server.requests(), vec!["/with".to_string()]);
        // Without a certificate the handshake fails, and the attempt log says so.
        let item = app.only_item("eventType=OrderCreated").await;
        let detail = app
            .wait_for_item(id(&item), "an attempt is logged", |d| d["attemptLog"].as_array().is_some_and(|a| !a.is_empty()))
            .await;
        let error = detail["attemptLog"][0]["error"].as_str().unwrap_or_default().to_lowercase();
        // In TLS 1.3 the client finishes its side of the handshake before the server checks
        // for a certificate, so the refusal (an alert) can race the request and surface as a
        // closed connection instead of a handshake error. Either way nothing reached the
        // receiver and the attempt failed with a connection-level error.
        assert!(
            ["certificate", "handshake", "tls", "connection"].iter().any(|w| error.contains(w)),
            "{detail}"
        );
        assert_eq!(detail["attemptLog"][0]["statusCode"], Value::Null, "{detail}");
        assert_eq!(server.requests(), vec!["/with".to_string()]);
    }
}

/// Secrets never reach the database file in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_holds_no_secret_in_the_clear() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start_with(&db, &[]).await;
    let pki = Pki::new();
    let (cert, key) = pki.client("erp-client");
    let secret = "whsec_c2VjcmV0LWtleS1ieXRlcy1mb3ItdGhlLXRlc3Qtb25seQ==";
    app.create_trigger(with_action(
        "OrderChanged",
        json!({
            "type": "callWebhook", "url": "https://erp.example.com/hook",
            "basicAuth": {"username": "erp", "password": "pa55-w0rd-in-the-clear"},
            "hmacSecret": secret,
            "clientCertificate": {"certPem": cert, "keyPem": key}
        }),
    ))
    .await;
    let path = db
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // Include the WAL: recent writes live there until a checkpoint.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("erp.example.com"),
        "the trigger is in the file"
    );
    for needle in [
        "pa55-w0rd-in-the-clear",
        "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGhlLXRlc3Qtb25seQ",
        "PRIVATE KEY",
    ] {
        assert!(
            !text.contains(needle),
            "{needle} is readable in the database file"
        );
    }
    let key_file = std::path::Path::new(&path).with_file_name("hookflow.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A literal private address is refused when the trigger is saved, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_private_address_is_refused_at_save() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start_with(&db, &["--allow-private-targets", ""]).await;
    let answer = app
        .post_json(
            "/api/v1/triggers",
            webhook_trigger("OrderChanged", "http://127.0.0.1:9/hook"),
        )
        .await;
    let message = assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        message.contains("actions[0].url") && message.contains("loopback"),
        "{message}"
    );
    let answer = app
        .post_json(
            "/api/v1/triggers",
            webhook_trigger("OrderChanged", "http://[::ffff:10.0.0.1]/hook"),
        )
        .await;
    assert!(assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed"
    )
    .contains("private"));
}

/// A test PKI: a CA, server certificates for 127.0.0.1 and client certificates.
pub(crate) struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "hookflow test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn issue(&self, name: &str, sans: Vec<String>, expired: bool) -> (String, String) {
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub(crate) fn client(&self, name: &str) -> (String, String) {
        self.issue(name, Vec::new(), false)
    }

    fn expired_client(&self) -> (String, String) {
        self.issue("expired-client", Vec::new(), true)
    }

    fn server(&self) -> (String, String) {
        self.issue(
            "receiver",
            vec!["127.0.0.1".into(), "localhost".into()],
            false,
        )
    }
}

/// An HTTPS server on 127.0.0.1 that demands a client certificate from the test CA.
pub(crate) struct MtlsServer {
    addr: std::net::SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl MtlsServer {
    pub(crate) async fn start(pki: &Pki) -> MtlsServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (cert, key) = pki.server();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        log.lock().unwrap().push(req.uri().path().to_string());
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from("ok"),
                            )))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        MtlsServer { addr, seen }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

both_backends! {
    /// A credential in a receiver's URL (`?apikey=`) is sent, but shown nowhere: not in the
    /// log (at trace level), not in any API answer about the call, not on the queue, call,
    /// event or alert pages, nor to a viewer reading the trigger; one in the userinfo
    /// (`user:password@`) is refused at save.
    async fn credentials_in_a_url_are_sent_but_never_shown(backend: Backend) {
        const KEY: &str = "PLANTED-SECRET-123";
        const PASSWORD: &str = "PLANTED-PW";
        let db = TestDb::new(backend).await;
        let app = TestApp::spawn_binary_with(&db, &["--log", "trace", "--max-retries", "1"]).await;
        let failing = Receiver::always(Reply::status(500)).await;
        // A port nothing listens on: connection refused.
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let shop = app.create_shop("Main").await;
        // Credentials in the userinfo are refused when saved, without being echoed.
        let url = format!("http://erp:{PASSWORD}@127.0.0.1:{}/hook", failing.port());
        let answer = app.post_json("/api/v1/triggers", webhook_trigger("OrderChanged", &url).with(json!({"name": "planted"}))).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(!answer.1.to_string().contains(PASSWORD), "{message}");
        // Query values are taken: a receiver that refuses the connection, one that answers 500.
        let urls = [
            format!("http://127.0.0.1:{refused}/hook?apikey={KEY}"),
            format!("http://127.0.0.1:{}/hook?id=1&apikey={KEY}#frag", failing.port()),
        ];
        let mut triggers = Vec::new();
        for url in &urls {
            triggers.push(app.create_trigger(webhook_trigger("OrderChanged", url).with(json!({"name": "planted"}))).await);
        }
        let answer = app.post_event(event("OrderChanged", shop, 7, json!({"OrderId": 7}))).await;
        assert_eq!(answer["callsQueued"], urls.len());
        let items = app.wait_for_queue_count("status=failed", urls.len()).await;

        // The receiver got the credentials: redaction is only for showing.
        let requests = failing.requests();
        assert!(requests.iter().any(|r| r.path.contains(&format!("apikey={KEY}"))), "{requests:?}");

        // Everything said about the calls, by the API and the pages.
        let mut said = vec![app.get_json("/api/v1/queue").await.1.to_string()];
        let (status, alerts) = app.get_json("/api/v1/alerts").await;
        assert_eq!(status, StatusCode::OK);
        said.push(alerts.to_string());
        let (_, user) = app
            .post_json("/api/v1/users", json!({"email": "ops@shop.example", "role": "viewer", "password": "Chosen-by-admin-1"}))
            .await;
        assert!(user["id"].is_i64(), "{user}");
        let cookie = crate::browser::http_session(&app, "ops@shop.example", "Chosen-by-admin-1").await;
        let client = reqwest::Client::new();
        let page = async |path: String| {
            let answer = client.get(app.url(&path)).header(reqwest::header::COOKIE, &cookie).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            answer.text().await.unwrap()
        };
        said.push(page("/queue".into()).await);
        said.push(page("/queue?status=failed".into()).await);
        said.push(page("/alerts".into()).await);
        for item in &items {
            let (_, detail) = app.get_json(&format!("/api/v1/queue/{}", id(item))).await;
            assert_eq!(detail["attemptLog"].as_array().map(Vec::len), Some(2), "{detail:#}");
            let error = detail["lastError"].as_str().unwrap_or_default();
            assert!(!error.is_empty(), "{detail:#}");
            said.push(detail.to_string());
            said.push(page(format!("/queue/{}", id(item))).await);
            said.push(page(format!("/events/{}", detail["eventId"])).await);
        }
        // A trigger's URL: as configured for those who edit it, masked for a viewer.
        let (_, edited) = app.get_json("/api/v1/triggers").await;
        assert!(edited.to_string().contains(KEY), "{edited}");
        let viewed = page("/api/v1/triggers".into()).await;
        assert!(viewed.contains("apikey=***"), "{viewed}");
        said.push(viewed);
        for trigger in &triggers {
            said.push(page(format!("/api/v1/triggers/{}", id(trigger))).await);
            said.push(page(format!("/triggers/{}", id(trigger))).await);
        }
        let (_, events) = app.get_json("/api/v1/events?includeAttempts=true").await;
        said.push(events.to_string());
        let urls_shown: Vec<&str> = items.iter().filter_map(|i| i["url"].as_str()).collect();
        assert!(urls_shown.iter().any(|u| u.contains("apikey=***")), "{urls_shown:?}");
        assert!(urls_shown.iter().all(|u| u.contains("apikey=***")), "{urls_shown:?}");

        let mut app = app;
        app.terminate();
        assert!(app.wait_exit(WAIT).await.success());
        wait_until(WAIT, "the log has the shutdown", async || app.log_contains("shutting down")).await;
        // The log, with the shutdown: at trace level everything it says.
        let log = app.log();
        assert!(log.lines().count() > 50, "a trace log says a lot:\n{log}");
        said.push(log);
        for text in &said {
            for needle in [KEY, PASSWORD] {
                assert!(!text.contains(needle), "{needle} is shown:\n{text}");
            }
        }
    }
}

//! Notices of calls that failed for good: by email through a real SMTP server (a minimal one
//! this file starts on 127.0.0.1), and as a JSON POST to an operator's webhook.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::common::*;

/// One message as an SMTP client handed it over.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) from: String,
    /// The envelope recipients (`RCPT TO`), blind copies included.
    pub(crate) to: Vec<String>,
    /// Headers and body, lines joined with `\n`, dot-stuffing undone.
    data: String,
}

impl Mail {
    /// A header's value, folded lines joined.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split_once("\n\n").map_or(&*self.data, |(h, _)| h);
        let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        unfolded
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].to_owned())
    }

    /// The body, with quoted-printable soft breaks and escapes undone.
    pub(crate) fn body(&self) -> String {
        let body = self.data.split_once("\n\n").map_or("", |(_, b)| b);
        let joined = body.replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = (bytes[i] == b'=' && i + 3 <= bytes.len())
                .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
                .flatten()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A minimal SMTP server on 127.0.0.1 (EHLO, MAIL, RCPT, DATA, QUIT; everything else is
/// answered 250) that accepts every message and keeps it.
pub(crate) struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub(crate) async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the SMTP sink");
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let sink = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, sink.clone()));
            }
        });
        SmtpSink { port, mails, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub(crate) async fn wait_for_mails(&self, n: usize) -> Vec<Mail> {
        wait_for(WAIT, &format!("{n} mail(s) to arrive"), async || {
            let mails = self.mails();
            (mails.len() >= n).then_some(mails)
        })
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn converse(stream: tokio::net::TcpStream, sink: Arc<Mutex<Vec<Mail>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut mail = Mail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 sink\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail {
                from: line["MAIL FROM:".len()..].trim().to_owned(),
                to: Vec::new(),
                data: String::new(),
            };
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line["RCPT TO:".len()..].trim().to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if write.write_all(b"354 end with .\r\n").await.is_err() {
                return;
            }
            while let Ok(Some(data)) = lines.next_line().await {
                if data == "." {
                    break;
                }
                mail.data.push_str(data.strip_prefix('.').unwrap_or(&data));
                mail.data.push('\n');
            }
            sink.lock().unwrap().push(mail.clone());
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 OK\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn create_shop_with_email(app: &TestApp, name: &str, email: &str) -> i64 {
    let (status, body) = app
        .post_json(
            "/api/v1/shops",
            json!({"name": name, "notificationEmail": email}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "creating shop {name}: {body}");
    assert_eq!(body["notificationEmail"], email);
    id(&body)
}

both_backends! {
    async fn a_call_that_fails_for_good_is_mailed_to_the_shop(backend: Backend) {
        let smtp = SmtpSink::start().await;
        let app = spawn_app_with(backend, &[
            "--max-retries", "0",
            "--smtp-url", &smtp.url(),
            "--smtp-from", "alerts@hookflow.example",
            "--notify-email", "ops@hookflow.example",
        ])
        .await;
        let receiver = Receiver::always(Reply::status(500)).await;
        let shop = create_shop_with_email(&app, "Main", "orders@shop.example").await;
        let url = receiver.url("/erp/orders");
        let trigger = app
            .create_trigger(json!({
                "name": "Orders to ERP",
                "eventType": "OrderChanged",
                "shopId": shop,
                "actions": [{"type": "callWebhook", "url": url}],
            }))
            .await;
        app.post_event(event("OrderChanged", shop, 42, json!({"OrderId": 42}))).await;
        let item = app.only_item("").await;
        app.wait_for_queue_status(id(&item), "failed").await;

        let mails = smtp.wait_for_mails(1).await;
        let mail = &mails[0];
        assert_eq!(mail.from, "<alerts@hookflow.example>");
        assert_eq!(
            mail.to,
            vec!["<orders@shop.example>".to_owned(), "<ops@hookflow.example>".to_owned()],
            "to the shop, with the operator in blind copy"
        );
        assert_eq!(mail.header("To").as_deref(), Some("orders@shop.example"));
        let subject = mail.header("Subject").expect("a subject");
        assert!(subject.contains("Orders to ERP") && subject.contains("HTTP 500"), "{subject}");
        let body = mail.body();
        for expected in [
            format!("Orders to ERP (id {}), action 0", id(&trigger)),
            url.clone(),
            "Last status: HTTP 500".to_owned(),
            format!("POST /api/v1/queue/{}/retry", id(&item)),
        ] {
            assert!(body.contains(&expected), "{expected:?} missing from the mail:\n{body}");
        }
    }

    async fn a_shop_without_an_address_gets_no_mail_but_the_operator_does(backend: Backend) {
        let smtp = SmtpSink::start().await;
        let app = spawn_app_with(backend, &[
            "--smtp-url", &smtp.url(),
            "--notify-email", "ops@hookflow.example",
        ])
        .await;
        let receiver = Receiver::always(Reply::status(404)).await;
        let shop = app.create_shop("No address").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/gone"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let mails = smtp.wait_for_mails(1).await;
        assert_eq!(mails[0].to, vec!["<ops@hookflow.example>".to_owned()]);
        let subject = mails[0].header("Subject").expect("a subject");
        assert!(subject.contains("HTTP 404"), "{subject}");
    }

    async fn the_operator_webhook_gets_each_notice_as_json(backend: Backend) {
        let operator = Receiver::start().await;
        let app = spawn_app_with(backend, &[
            "--max-retries", "0",
            "--notify-webhook-url", &operator.url("/notices"),
        ])
        .await;
        let receiver = Receiver::always(Reply::status(503)).await;
        let shop = create_shop_with_email(&app, "Main", "orders@shop.example").await;
        let trigger = app
            .create_trigger(webhook_trigger("OrderChanged", &receiver.url("/down")))
            .await;
        app.post_event(event("OrderChanged", shop, 7, json!({}))).await;
        let item = app.only_item("").await;

        let notices = operator.wait_for_requests(1, WAIT).await;
        assert_eq!(notices[0].method, "POST");
        assert_eq!(notices[0].path, "/notices");
        let notice: Value = notices[0].json();
        assert_eq!(notice["kind"], "callFailed");
        assert_eq!(notice["triggerId"], trigger["id"]);
        assert_eq!(notice["triggerName"], trigger["name"]);
        assert_eq!(notice["shopId"], shop);
        assert_eq!(notice["shopEmail"], "orders@shop.example");
        assert_eq!(notice["url"], receiver.url("/down"));
        assert_eq!(notice["callId"], item["id"]);
        assert_eq!(notice["lastStatusCode"], 503);
        parse_time(&notice["at"]);
    }
}

#[tokio::test]
async fn an_unusable_smtp_url_stops_hookflow_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args([
                "--database-url",
                &format!("sqlite://{}/h.db?mode=rwc", dir.path().display()),
            ])
            .args(["--smtp-url", "imap://mail.example.com"])
            .env_remove("HOOKFLOW_SMTP_URL")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("hookflow exits at once")
    .expect("running hookflow");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--smtp-url"), "{stderr}");
}

//! Notices to people (see [`hookflow_engine::notify`]): an email over SMTP to the shop's
//! notification address (and an operator's), and a JSON POST to an operator's webhook.
//!
//! The engine calls a [`Notifier`] from the delivery loop's recorder, so nothing here may make
//! it wait: each way of sending runs behind a bounded queue on a task of its own
//! ([`Queued`]). A notice that finds the queue full is dropped with a warning rather than
//! slowing delivery down; a notice that cannot be sent is logged. [`FanOut`] hands each notice
//! to several of them, and [`build`] makes the combination the configuration asks for.
//!
//! The operator's webhook URL comes from the operator, not from an API user, so it is not
//! subject to the SSRF guard that webhook calls are.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookflow_engine::model::{CallId, ShopId, Timestamp, TriggerId};
use hookflow_engine::notify::{Notice, NoticeKind, Notifier};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Notices waiting to be sent, per way of sending. Notices come one per call that failed for
/// good, so a full queue means the mail server or webhook is down or far too slow.
pub const QUEUE_CAPACITY: usize = 1024;
/// Longest an SMTP conversation (connect, TLS, every command) may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the operator's webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Where notices come from unless `--smtp-from` says otherwise.
pub const DEFAULT_FROM: &str = "hookflow@localhost";

/// Where notices go, from the CLI. Nothing set: no notices (alerts in the API only).
#[derive(Clone)]
pub struct NotifyConfig {
    /// `smtp://host:port` (plain), `smtp://host?tls=required` (STARTTLS), `smtps://host`
    /// (TLS); credentials as `smtp://user:password@host`.
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    /// An operator's address that gets every notice besides the shop's.
    pub operator_email: Option<String>,
    /// Gets every notice as a JSON POST.
    pub webhook_url: Option<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_url: None,
            smtp_from: DEFAULT_FROM.to_owned(),
            operator_email: None,
            webhook_url: None,
        }
    }
}

/// The SMTP URL may carry a password: it is never printed.
impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(redact))
            .field("smtp_from", &self.smtp_from)
            .field("operator_email", &self.operator_email)
            .field(
                "webhook_url",
                &self
                    .webhook_url
                    .as_deref()
                    .map(hookflow_engine::redact::url),
            )
            .finish()
    }
}

/// A URL without its password (for logs and debug output).
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have credentials, which this one has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// The notification settings are unusable; said at start-up, not at the first failure.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("--smtp-url {url}: {message}")]
    SmtpUrl { url: String, message: String },
    #[error("{flag}: {value:?} is not an email address: {message}")]
    Address {
        flag: &'static str,
        value: String,
        message: String,
    },
    #[error("--notify-webhook-url {url:?}: {message}")]
    WebhookUrl { url: String, message: String },
    #[error("could not build the HTTP client for notices: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why one notice could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("could not build the message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the webhook answered HTTP {0}")]
    Status(u16),
}

/// One way of sending a notice. Runs on its [`Queued`] task, so it may take its time.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// For logs: `email`, `webhook`.
    fn name(&self) -> &'static str;
    async fn send(&self, notice: &Notice) -> Result<(), SendError>;
}

/// A [`Notifier`] that queues notices for a [`Sender`] running on a task of its own. The task
/// ends once the notifier is dropped and the queue is drained.
pub struct Queued {
    name: &'static str,
    tx: mpsc::Sender<Notice>,
    dropped: AtomicU64,
}

impl Queued {
    /// Spawns the sending task (on the current tokio runtime).
    pub fn start(sender: impl Sender, capacity: usize) -> Queued {
        let name = sender.name();
        let (tx, mut rx) = mpsc::channel::<Notice>(capacity.max(1));
        tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                match sender.send(&notice).await {
                    Ok(()) => info!(
                        channel = name,
                        kind = ?notice.kind,
                        trigger_id = %notice.trigger_id,
                        call_id = ?notice.call_id.map(|c| c.0),
                        "notice sent"
                    ),
                    Err(err) => warn!(
                        channel = name,
                        error = %err,
                        kind = ?notice.kind,
                        trigger_id = %notice.trigger_id,
                        call_id = ?notice.call_id.map(|c| c.0),
                        "could not send a notice"
                    ),
                }
            }
        });
        Queued {
            name,
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Notices dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Notifier for Queued {
    async fn notify(&self, notice: &Notice) {
        if self.tx.try_send(notice.clone()).is_err() {
            // Full (the task never stops while we hold the sender): better a lost notice
            // than a delivery loop waiting on a mail server.
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                channel = self.name,
                dropped,
                kind = ?notice.kind,
                trigger_id = %notice.trigger_id,
                "the notice queue is full; dropping a notice"
            );
        }
    }
}

/// Hands every notice to each of several notifiers.
pub struct FanOut(pub Vec<Arc<dyn Notifier>>);

#[async_trait]
impl Notifier for FanOut {
    async fn notify(&self, notice: &Notice) {
        for notifier in &self.0 {
            notifier.notify(notice).await;
        }
    }
}

/// The notifier `config` asks for: email, webhook, both, or `None` when neither is set.
/// Spawns the sending tasks, so it must run inside a tokio runtime.
pub fn build(config: &NotifyConfig) -> Result<Option<Arc<dyn Notifier>>, NotifyError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(url) = config.smtp_url.as_deref().filter(|u| !u.is_empty()) {
        let email = EmailSender::new(
            url,
            &config.smtp_from,
            config.operator_email.as_deref().filter(|e| !e.is_empty()),
        )?;
        notifiers.push(Arc::new(Queued::start(email, QUEUE_CAPACITY)));
    } else if config
        .operator_email
        .as_deref()
        .is_some_and(|e| !e.is_empty())
    {
        warn!("--notify-email is set but --smtp-url is not: no email will be sent");
    }
    if let Some(url) = config.webhook_url.as_deref().filter(|u| !u.is_empty()) {
        let webhook = WebhookSender::new(url)?;
        notifiers.push(Arc::new(Queued::start(webhook, QUEUE_CAPACITY)));
    }
    Ok(match notifiers.len() {
        0 => None,
        1 => notifiers.pop(),
        _ => Some(Arc::new(FanOut(notifiers))),
    })
}

// ---- email ----

/// Sends a plain-text email per notice: to the shop's notification address, with the
/// operator's address as a blind copy (or to the operator alone when the shop has none).
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    operator: Option<Mailbox>,
}

impl EmailSender {
    pub fn new(
        smtp_url: &str,
        from: &str,
        operator: Option<&str>,
    ) -> Result<EmailSender, NotifyError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| NotifyError::SmtpUrl {
                url: redact(smtp_url),
                message: e.to_string(),
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let address = |flag: &'static str, value: &str| {
            value.parse::<Mailbox>().map_err(|e| NotifyError::Address {
                flag,
                value: value.to_owned(),
                message: e.to_string(),
            })
        };
        Ok(EmailSender {
            transport,
            from: address("--smtp-from", from)?,
            operator: operator.map(|o| address("--notify-email", o)).transpose()?,
        })
    }

    /// The message for `notice`, or `None` when nobody is to get it.
    fn message(&self, notice: &Notice) -> Result<Option<Message>, SendError> {
        let shop = notice.shop_email.as_deref().and_then(|email| {
            email
                .parse::<Mailbox>()
                .inspect_err(
                    |e| warn!(email, error = %e, "the shop's notification address is not usable"),
                )
                .ok()
        });
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject(notice))
            .header(ContentType::TEXT_PLAIN);
        builder = match (shop, &self.operator) {
            (Some(shop), Some(operator)) => builder.to(shop).bcc(operator.clone()),
            (Some(shop), None) => builder.to(shop),
            (None, Some(operator)) => builder.to(operator.clone()),
            (None, None) => return Ok(None),
        };
        Ok(Some(builder.body(body(notice))?))
    }
}

#[async_trait]
impl Sender for EmailSender {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn send(&self, notice: &Notice) -> Result<(), SendError> {
        let Some(message) = self.message(notice)? else {
            debug!(trigger_id = %notice.trigger_id, "no address to send this notice to");
            return Ok(());
        };
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Control characters (a trigger name with a line break) have no place in a header.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn status_text(notice: &Notice) -> String {
    match notice.last_status_code {
        Some(code) => format!("HTTP {code}"),
        None => "no response".to_owned(),
    }
}

/// The email's subject: what happened, to which trigger.
pub fn subject(notice: &Notice) -> String {
    let name = one_line(&notice.trigger_name);
    match notice.kind {
        NoticeKind::CallFailed => format!(
            "[hookflow] Webhook call failed: {name} ({})",
            status_text(notice)
        ),
        NoticeKind::ActionDeactivated => format!(
            "[hookflow] Webhook deactivated: {name} (action {})",
            notice.action_index
        ),
    }
}

/// The email's text: what happened, everything known about it, and what to do next.
pub fn body(notice: &Notice) -> String {
    let mut text = match notice.kind {
        // Short lines: mail clients show them as written.
        NoticeKind::CallFailed => format!(
            "A webhook call of trigger \"{}\" failed for good:\n\
             hookflow will not try it again.\n\n",
            notice.trigger_name
        ),
        NoticeKind::ActionDeactivated => format!(
            "Action {} of trigger \"{}\" was deactivated after failing\n\
             repeatedly: it gets no calls until an admin reactivates it.\n\n",
            notice.action_index, notice.trigger_name
        ),
    };
    let mut line = |label: &str, value: &str| {
        text.push_str(&format!("{label:<13}{value}\n"));
    };
    line(
        "Trigger:",
        &format!(
            "{} (id {}), action {}",
            notice.trigger_name, notice.trigger_id, notice.action_index
        ),
    );
    if let Some(shop) = notice.shop_id {
        line("Shop:", &shop.to_string());
    }
    line("URL:", &notice.url);
    if let Some(call) = notice.call_id {
        line("Call:", &call.to_string());
    }
    line("Last status:", &status_text(notice));
    if let Some(error) = &notice.last_error {
        line("Last error:", error);
    }
    line("At:", &notice.at.to_rfc3339());
    if let (NoticeKind::CallFailed, Some(call)) = (notice.kind, notice.call_id) {
        text.push_str(&format!(
            "\nSee the call and its attempts: GET /api/v1/queue/{call}\n\
             Send it again: POST /api/v1/queue/{call}/retry\n"
        ));
    }
    text
}

// ---- operator webhook ----

/// POSTs every notice as JSON (the [`Notice`] fields, camelCase) to the operator's URL.
pub struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl WebhookSender {
    pub fn new(url: &str) -> Result<WebhookSender, NotifyError> {
        let invalid = |message: String| NotifyError::WebhookUrl {
            url: hookflow_engine::redact::url(url),
            message,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("use an http or https URL".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookflow/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(WebhookSender {
            client,
            url: parsed,
        })
    }
}

#[async_trait]
impl Sender for WebhookSender {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, notice: &Notice) -> Result<(), SendError> {
        let response = self
            .client
            .post(self.url.clone())
            .json(&NoticeOut::from(notice))
            .send()
            .await
            // The operator's URL may carry a credential; the error is logged.
            .map_err(reqwest::Error::without_url)?;
        if !response.status().is_success() {
            return Err(SendError::Status(response.status().as_u16()));
        }
        Ok(())
    }
}

/// A notice as the operator's webhook receives it (JSON, camelCase).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeOut<'a> {
    /// `callFailed` or `actionDeactivated`.
    pub kind: &'static str,
    pub shop_id: Option<ShopId>,
    /// The shop's notification address, if it has one.
    pub shop_email: Option<&'a str>,
    pub trigger_id: TriggerId,
    pub trigger_name: &'a str,
    pub action_index: i32,
    pub url: &'a str,
    pub call_id: Option<CallId>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<&'a str>,
    pub at: Timestamp,
}

impl<'a> From<&'a Notice> for NoticeOut<'a> {
    fn from(n: &'a Notice) -> NoticeOut<'a> {
        NoticeOut {
            kind: match n.kind {
                NoticeKind::CallFailed => "callFailed",
                NoticeKind::ActionDeactivated => "actionDeactivated",
            },
            shop_id: n.shop_id,
            shop_email: n.shop_email.as_deref(),
            trigger_id: n.trigger_id,
            trigger_name: &n.trigger_name,
            action_index: n.action_index,
            url: &n.url,
            call_id: n.call_id,
            last_status_code: n.last_status_code,
            last_error: n.last_error.as_deref(),
            at: n.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use hookflow_engine::model::{CallId, ShopId, Timestamp, TriggerId};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::{watch, Semaphore};

    use super::*;

    fn notice(kind: NoticeKind, shop_email: Option<&str>) -> Notice {
        Notice {
            kind,
            shop_id: Some(ShopId(7)),
            shop_email: shop_email.map(str::to_owned),
            trigger_id: TriggerId(3),
            trigger_name: "Orders to ERP".into(),
            action_index: 0,
            url: "https://erp.example.com/hooks/orders".into(),
            call_id: Some(CallId(42)),
            last_status_code: Some(500),
            last_error: Some("HTTP 500".into()),
            at: Timestamp(1_800_000_000_000),
        }
    }

    /// One mail as an SMTP client handed it over.
    #[derive(Debug, Clone)]
    struct Mail {
        from: String,
        to: Vec<String>,
        data: String,
    }

    /// A minimal SMTP server on 127.0.0.1 that accepts every message and keeps it.
    async fn smtp_sink() -> (String, watch::Receiver<Vec<Mail>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let (tx, rx) = watch::channel(Vec::new());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let mut mail = Mail {
                        from: String::new(),
                        to: Vec::new(),
                        data: String::new(),
                    };
                    write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO")
                        {
                            b"250 sink\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            mail.from = line["MAIL FROM:".len()..].trim().to_owned();
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            mail.to.push(line["RCPT TO:".len()..].trim().to_owned());
                            b"250 OK\r\n"
                        } else if upper == "DATA" {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            while let Ok(Some(data)) = lines.next_line().await {
                                if data == "." {
                                    break;
                                }
                                let data = data.strip_prefix('.').unwrap_or(&data);
                                mail.data.push_str(data);
                                mail.data.push('\n');
                            }
                            tx.send_modify(|mails| mails.push(mail.clone()));
                            b"250 queued\r\n"
                        } else if upper == "QUIT" {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 OK\r\n"
                        };
                        write.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        (url, rx)
    }

    /// Undoes quoted-printable soft line breaks and escapes, enough to read a mail body.
    fn unquote(text: &str) -> String {
        let joined = text.replace("=\n", "");
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

    #[test]
    fn the_subject_and_body_say_what_failed_where_and_how() {
        let failed = notice(NoticeKind::CallFailed, None);
        assert_eq!(
            subject(&failed),
            "[hookflow] Webhook call failed: Orders to ERP (HTTP 500)"
        );
        let text = body(&failed);
        for expected in [
            "Orders to ERP (id 3), action 0",
            "https://erp.example.com/hooks/orders",
            "Last status: HTTP 500",
            "Last error:  HTTP 500",
            "Send it again: POST /api/v1/queue/42/retry",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        let deactivated = notice(NoticeKind::ActionDeactivated, None);
        assert_eq!(
            subject(&deactivated),
            "[hookflow] Webhook deactivated: Orders to ERP (action 0)"
        );
        assert!(body(&deactivated).contains("deactivated"));
    }

    #[test]
    fn a_trigger_name_cannot_break_the_subject_line() {
        let mut n = notice(NoticeKind::CallFailed, None);
        n.trigger_name = "Orders\r\nBcc: victim@example.com".into();
        assert!(!subject(&n).contains('\n'));
        n.last_status_code = None;
        assert!(subject(&n).ends_with("(no response)"));
    }

    #[test]
    fn debug_output_hides_the_smtp_password() {
        let config = NotifyConfig {
            smtp_url: Some("smtps://mailer:s3cret@smtp.example.com:465".into()),
            ..NotifyConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("mailer"), "{shown}");
    }

    #[test]
    fn unusable_settings_are_refused_up_front() {
        assert!(matches!(
            EmailSender::new("imap://mail.example.com", DEFAULT_FROM, None),
            Err(NotifyError::SmtpUrl { .. })
        ));
        assert!(matches!(
            EmailSender::new("smtp://127.0.0.1:2525", "not an address", None),
            Err(NotifyError::Address {
                flag: "--smtp-from",
                ..
            })
        ));
        assert!(matches!(
            WebhookSender::new("ftp://ops.example.com/"),
            Err(NotifyError::WebhookUrl { .. })
        ));
        assert!(EmailSender::new("smtps://u:p@smtp.example.com", DEFAULT_FROM, None).is_ok());
        assert!(
            EmailSender::new("smtp://smtp.example.com?tls=required", DEFAULT_FROM, None).is_ok()
        );
    }

    #[tokio::test]
    async fn a_mail_goes_to_the_shop_with_the_operator_in_blind_copy() {
        let (url, mut mails) = smtp_sink().await;
        let sender =
            EmailSender::new(&url, "hookflow@example.com", Some("ops@example.com")).unwrap();
        sender
            .send(&notice(NoticeKind::CallFailed, Some("shop@example.com")))
            .await
            .unwrap();
        let mails = mails.wait_for(|m| !m.is_empty()).await.unwrap().clone();
        let mail = &mails[0];
        assert_eq!(mail.from, "<hookflow@example.com>");
        assert_eq!(
            mail.to,
            vec![
                "<shop@example.com>".to_owned(),
                "<ops@example.com>".to_owned()
            ]
        );
        assert!(mail.data.contains("To: shop@example.com"), "{}", mail.data);
        assert!(
            !mail.data.contains("ops@example.com"),
            "the blind copy shows: {}",
            mail.data
        );
        assert!(mail
            .data
            .contains("Subject: [hookflow] Webhook call failed: Orders to ERP (HTTP 500)"));
        let text = unquote(&mail.data);
        assert!(
            text.contains("https://erp.example.com/hooks/orders"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn without_a_shop_address_the_operator_gets_the_mail_and_without_either_nobody() {
        let (url, mut mails) = smtp_sink().await;
        let to_operator = EmailSender::new(&url, DEFAULT_FROM, Some("ops@example.com")).unwrap();
        to_operator
            .send(&notice(NoticeKind::ActionDeactivated, None))
            .await
            .unwrap();
        let got = mails.wait_for(|m| !m.is_empty()).await.unwrap().clone();
        assert_eq!(got[0].to, vec!["<ops@example.com>".to_owned()]);
        assert!(got[0].data.contains("To: ops@example.com"));

        let to_nobody = EmailSender::new(&url, DEFAULT_FROM, None).unwrap();
        assert!(to_nobody
            .message(&notice(NoticeKind::CallFailed, Some("not an address")))
            .unwrap()
            .is_none());
    }

    /// Accepts one HTTP request, answers `status`, and hands over the request's body.
    async fn one_shot_http(status: u16) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notices", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await.unwrap();
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            reader.get_mut().write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(body).unwrap()
        });
        (url, task)
    }

    #[tokio::test]
    async fn the_operator_webhook_gets_the_notice_as_json() {
        let (url, request) = one_shot_http(204).await;
        let sender = WebhookSender::new(&url).unwrap();
        sender
            .send(&notice(NoticeKind::CallFailed, Some("shop@example.com")))
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&request.await.unwrap()).unwrap();
        assert_eq!(body["kind"], "callFailed");
        assert_eq!(body["triggerName"], "Orders to ERP");
        assert_eq!(body["url"], "https://erp.example.com/hooks/orders");
        assert_eq!(body["lastStatusCode"], 500);
        assert_eq!(body["shopEmail"], "shop@example.com");
        assert_eq!(body["callId"], 42);

        let (url, request) = one_shot_http(500).await;
        let refused = WebhookSender::new(&url)
            .unwrap()
            .send(&notice(NoticeKind::CallFailed, None))
            .await;
        assert!(
            matches!(refused, Err(SendError::Status(500))),
            "{refused:?}"
        );
        request.await.unwrap();
    }

    /// Records notices; each send waits for a permit, so a test can hold it up.
    struct Held {
        started: mpsc::UnboundedSender<i32>,
        permits: Arc<Semaphore>,
        sent: Arc<Mutex<Vec<i32>>>,
    }

    #[async_trait]
    impl Sender for Held {
        fn name(&self) -> &'static str {
            "held"
        }

        async fn send(&self, notice: &Notice) -> Result<(), SendError> {
            let _ = self.started.send(notice.action_index);
            self.permits.acquire().await.unwrap().forget();
            self.sent.lock().unwrap().push(notice.action_index);
            Ok(())
        }
    }

    fn numbered(n: i32) -> Notice {
        Notice {
            action_index: n,
            ..notice(NoticeKind::CallFailed, None)
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_notices_instead_of_waiting() {
        let (started, mut started_rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let queued = Queued::start(
            Held {
                started,
                permits: permits.clone(),
                sent: sent.clone(),
            },
            1,
        );
        queued.notify(&numbered(1)).await;
        // The sender holds notice 1; notice 2 fills the queue; notice 3 finds it full.
        assert_eq!(started_rx.recv().await, Some(1));
        queued.notify(&numbered(2)).await;
        queued.notify(&numbered(3)).await;
        assert_eq!(queued.dropped(), 1);

        permits.add_permits(2);
        assert_eq!(started_rx.recv().await, Some(2));
        drop(queued);
        // The task drains what was queued and ends; nothing else arrives.
        assert_eq!(started_rx.recv().await, None);
        assert_eq!(*sent.lock().unwrap(), vec![1, 2]);
    }

    #[tokio::test]
    async fn a_fan_out_hands_each_notice_to_every_notifier() {
        let mut receivers = Vec::new();
        let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
        for _ in 0..2 {
            let (started, rx) = mpsc::unbounded_channel();
            receivers.push(rx);
            notifiers.push(Arc::new(Queued::start(
                Held {
                    started,
                    permits: Arc::new(Semaphore::new(10)),
                    sent: Arc::default(),
                },
                4,
            )));
        }
        FanOut(notifiers).notify(&numbered(5)).await;
        for rx in &mut receivers {
            assert_eq!(rx.recv().await, Some(5));
        }
    }

    #[tokio::test]
    async fn nothing_configured_means_no_notifier() {
        assert!(build(&NotifyConfig::default()).unwrap().is_none());
        let both = NotifyConfig {
            smtp_url: Some("smtp://127.0.0.1:1".into()),
            webhook_url: Some("http://127.0.0.1:1/".into()),
            ..NotifyConfig::default()
        };
        assert!(build(&both).unwrap().is_some());
    }
}

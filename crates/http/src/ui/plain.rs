//! What a call did, said for people: a delivery error in plain words (the raw one stays
//! beside it), an answer's status with its reason, and a call as a `curl` command.
//!
//! The attempt log keeps errors as the HTTP client reported them (a chain of causes on one
//! line); these functions recognise the causes an admin meets most and say them the way
//! they would say them to a colleague.

/// An attempt's error in plain words, or `None` when there is nothing plainer to say than
/// the raw text. `url` is the call's, `duration_ms` how long the attempt took.
pub(crate) fn plain_error(error: &str, url: &str, duration_ms: Option<i64>) -> Option<String> {
    let lower = error.to_ascii_lowercase();
    let target = target(url);
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| target.clone());
    let plain = if lower.starts_with("interrupted:") {
        "hookflow stopped while this attempt was on the wire; it is sent again".to_owned()
    } else if lower.contains("connection refused") {
        format!("connection refused by {target}")
    } else if lower.contains("timed out") || lower.contains("timeout") {
        match duration_ms {
            // Whole seconds, rounded down: an attempt stopped by a 10 s timeout takes a little
            // more than 10 s, never less.
            Some(ms) if ms >= 1000 => format!("timed out after {} s", ms / 1000),
            Some(ms) => format!("timed out after {ms} ms"),
            None => "timed out".to_owned(),
        }
    } else if lower.contains("certificaterequired") {
        "TLS: the receiver asked for a client certificate".to_owned()
    } else if lower.contains("unknownissuer") {
        "TLS: the receiver's certificate is not signed by an authority hookflow trusts".to_owned()
    } else if lower.contains("notvalidforname") {
        format!("TLS: the receiver's certificate is not valid for {host}")
    } else if lower.contains("invalid peer certificate: expired") {
        "TLS: the receiver's certificate has expired".to_owned()
    } else if lower.contains("handshakefailure") || lower.contains("handshake failure") {
        "TLS: the handshake with the receiver failed".to_owned()
    } else if lower.contains("client certificate unusable") {
        "TLS: the action's client certificate could not be used".to_owned()
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        format!("the name {host} could not be resolved")
    } else if lower.contains("and not allowed") {
        // The SSRF guard's own message is already plain.
        return error.split(": ").last().map(str::to_owned);
    } else if lower.contains("connection reset")
        || lower.contains("connection closed before message completed")
        || lower.contains("broken pipe")
    {
        format!("{target} closed the connection before answering")
    } else if lower.contains("invalid url") {
        "the URL is not valid".to_owned()
    } else if lower.contains("could not be rendered") {
        "the payload could not be built from the template; nothing was sent".to_owned()
    } else {
        return None;
    };
    Some(plain)
}

/// `host:port` of a URL (the port its scheme implies when it names none).
fn target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

/// An answer's status with its reason: `503 Service Unavailable`.
pub(crate) fn status_text(status: i32) -> String {
    let reason = u16::try_from(status)
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// Headers `curl` sets itself, or that are credentials: left out of a copied command.
const NOT_COPIED: &[&str] = &["host", "content-length", "authorization"];

/// The call as a `curl` command, without credentials: `authorization` and any header whose
/// value the page masks are left out (the caller passes the masked view). The body goes in
/// as `--data-binary` so its bytes are sent exactly as they are.
pub(crate) fn curl(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> String {
    let mut out = format!("curl -X {method} {}", quote(url));
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if NOT_COPIED.contains(&lower.as_str())
            || value.contains(hookflow_engine::transport::MASKED)
        {
            continue;
        }
        out.push_str(" \\\n  -H ");
        out.push_str(&quote(&format!("{name}: {value}")));
    }
    if let Some(body) = body {
        out.push_str(" \\\n  --data-binary ");
        out.push_str(&quote(body));
    }
    out
}

/// A POSIX shell single-quoted word: `'` becomes `'\''`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_delivery_errors_are_said_in_plain_words() {
        let url = "http://127.0.0.1:9999/hook";
        assert_eq!(
            plain_error(
                "error sending request for url (http://127.0.0.1:9999/hook): client error (Connect): tcp connect error: Connection refused (os error 111)",
                url,
                Some(2)
            )
            .as_deref(),
            Some("connection refused by 127.0.0.1:9999")
        );
        assert_eq!(
            plain_error(
                "error sending request for url (http://127.0.0.1:9999/hook): operation timed out",
                url,
                Some(10_012)
            )
            .as_deref(),
            Some("timed out after 10 s")
        );
        assert_eq!(
            plain_error(
                "error sending request for url (https://erp.example.com/): client error (SendRequest): connection error: received fatal alert: CertificateRequired",
                "https://erp.example.com/",
                Some(40)
            )
            .as_deref(),
            Some("TLS: the receiver asked for a client certificate")
        );
        assert_eq!(
            plain_error(
                "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer",
                "https://erp.example.com/",
                None
            )
            .as_deref(),
            Some("TLS: the receiver's certificate is not signed by an authority hookflow trusts")
        );
        assert_eq!(
            plain_error("something nobody foresaw", url, None),
            None,
            "the raw error alone, rather than a guess"
        );
    }

    #[test]
    fn the_default_port_is_named_when_the_url_has_none() {
        assert_eq!(
            plain_error(
                "tcp connect error: Connection refused",
                "https://erp.example.com/h",
                None
            )
            .as_deref(),
            Some("connection refused by erp.example.com:443")
        );
    }

    #[test]
    fn statuses_carry_their_reason() {
        assert_eq!(status_text(503), "503 Service Unavailable");
        assert_eq!(status_text(299), "299");
    }

    #[test]
    fn curl_leaves_out_credentials_and_quotes_the_body_exactly() {
        let headers = vec![
            ("host".to_owned(), "127.0.0.1:9".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), "Basic ••••••".to_owned()),
            ("x-api-key".to_owned(), "abcd•••••• (masked)".to_owned()),
            ("webhook-id".to_owned(), "msg_1".to_owned()),
        ];
        let command = curl(
            "POST",
            "http://127.0.0.1:9/h",
            &headers,
            Some("{\"name\": \"O'Brien\"}\n"),
        );
        assert_eq!(
            command,
            "curl -X POST 'http://127.0.0.1:9/h' \\\n  -H 'content-type: application/json' \\\n  -H 'webhook-id: msg_1' \\\n  --data-binary '{\"name\": \"O'\\''Brien\"}\n'"
        );
    }
}

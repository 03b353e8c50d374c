//! Signatures receivers can verify.
//!
//! - Standard Webhooks (default): `webhook-signature: v1,<base64>` over `{id}.{timestamp}.{body}`
//!   with HMAC-SHA256 keyed by the base64-decoded part of the `whsec_` secret; during a rotation
//!   both signatures are sent, space-separated, as the specification allows.
//! - Hub (`X-Hub-Signature-256: sha256=<hex>`): HMAC-SHA256 of the raw body keyed with the secret
//!   string's UTF-8 bytes, for receivers built for GitHub-style webhooks; the current secret only,
//!   since such receivers compare one value.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use hookflow_engine::model::{SignatureScheme, Timestamp};
use hookflow_engine::security::Signing;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The signature headers for one attempt.
pub fn signature_headers(
    signing: &Signing,
    webhook_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    now: Timestamp,
) -> Vec<(&'static str, String)> {
    match signing.scheme {
        SignatureScheme::StandardWebhooks => {
            let signatures: Vec<String> = signing
                .active_secrets(now)
                .filter_map(|secret| standard_signature(secret, webhook_id, timestamp_secs, body))
                .collect();
            if signatures.is_empty() {
                Vec::new()
            } else {
                vec![("webhook-signature", signatures.join(" "))]
            }
        }
        SignatureScheme::HubSha256 => {
            vec![(
                "x-hub-signature-256",
                hub_signature(signing.current.expose(), body),
            )]
        }
    }
}

/// `v1,<base64>` per the Standard Webhooks specification; `None` if the secret does not decode
/// (secrets are checked when saved, so only a corrupted database gets here).
pub fn standard_signature(
    secret: &str,
    webhook_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// `sha256=<hex>` of the body keyed with the secret string.
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookflow_engine::model::Secret;

    /// The example from the Standard Webhooks specification and its reference libraries.
    #[test]
    fn standard_signature_matches_the_spec_vector() {
        let sig = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    /// GitHub's documented example for X-Hub-Signature-256.
    #[test]
    fn hub_signature_matches_githubs_example() {
        assert_eq!(
            hub_signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn rotation_sends_both_signatures() {
        let signing = Signing {
            scheme: SignatureScheme::StandardWebhooks,
            current: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            previous: Some((
                Secret::new("whsec_dGhpcyBpcyB0aGUgb2xkIHNlY3JldCBrZXkh"),
                10_000,
            )),
        };
        let headers = signature_headers(&signing, "msg_1", 5, b"{}", Timestamp(5_000));
        assert_eq!(headers[0].1.split(' ').count(), 2);
        let later = signature_headers(&signing, "msg_1", 5, b"{}", Timestamp(20_000));
        assert_eq!(later[0].1.split(' ').count(), 1);
    }
}

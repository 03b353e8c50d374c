//! The credentials of each action, resolved for sending: basic auth, signing keys and TLS
//! identity. They are looked up by (trigger, action) when a call is sent and never copied into
//! the queue, so the queue, its API and the attempt log cannot leak them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{
    Action, ActionRef, HmacSecret, Secret, SignatureScheme, Timestamp, Trigger, TriggerId,
};
use crate::policy::ActionPolicy;
use crate::retry::RetryPolicy;
use crate::store::AttemptBudget;

/// What a transport needs to authenticate one action's calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ActionSecurity {
    /// Username and password.
    pub basic_auth: Option<(String, Secret)>,
    pub signing: Option<Signing>,
    /// Client certificate chain and key (PEM), for mTLS.
    pub identity: Option<(String, Secret)>,
    /// CA certificates (PEM) to trust instead of the public roots.
    pub ca_pem: Option<String>,
}

/// Signing keys of an action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signing {
    pub scheme: SignatureScheme,
    /// The current `whsec_…` secret.
    pub current: Secret,
    /// The secret before the last rotation, with the time (ms) until which it is still used.
    pub previous: Option<(Secret, i64)>,
}

impl Signing {
    /// The secrets to sign with at `now`: the current one, and the previous one while valid.
    pub fn active_secrets(&self, now: Timestamp) -> impl Iterator<Item = &str> {
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| *until > now.0)
            .map(|(s, _)| s.expose());
        std::iter::once(self.current.expose()).chain(previous)
    }
}

impl ActionSecurity {
    pub fn is_empty(&self) -> bool {
        self == &ActionSecurity::default()
    }
}

/// What sending needs to know about every action, by (trigger, action index): its
/// credentials and its queue policy. Disabled triggers are included: their queued calls are
/// still sent.
#[derive(Debug)]
pub struct ActionIndex {
    by_action: HashMap<(TriggerId, i32), Arc<ActionSecurity>>,
    policies: HashMap<(TriggerId, i32), Arc<ActionPolicy>>,
    /// For calls whose trigger is gone.
    default_policy: Arc<ActionPolicy>,
    /// The longest per-attempt timeout of any action (leases must outlast it).
    longest_timeout: Option<std::time::Duration>,
}

impl ActionIndex {
    pub fn build(triggers: &[Trigger], defaults: RetryPolicy) -> ActionIndex {
        let mut by_action = HashMap::new();
        let mut policies = HashMap::new();
        for trigger in triggers {
            for (index, action) in trigger.draft.actions.iter().enumerate() {
                let Action::CallWebhook(call) = action;
                policies.insert(
                    (trigger.id, index as i32),
                    Arc::new(ActionPolicy::resolve(call.retry_policy.as_ref(), defaults)),
                );
                let signing = match &call.hmac_secret {
                    Some(HmacSecret::Keys(keys)) => Some(Signing {
                        scheme: call.signature_scheme,
                        current: keys.current.clone(),
                        previous: keys.previous.clone().zip(keys.previous_valid_until),
                    }),
                    _ => None,
                };
                let security = ActionSecurity {
                    // A saved action's password and key are resolved (`resolve_credentials`).
                    basic_auth: call.basic_auth.as_ref().and_then(|b| {
                        b.password
                            .clone()
                            .map(|password| (b.username.clone(), password))
                    }),
                    signing,
                    identity: call
                        .client_certificate
                        .as_ref()
                        .and_then(|c| c.key_pem.clone().map(|key| (c.cert_pem.clone(), key))),
                    ca_pem: call.ca_pem.clone(),
                };
                if !security.is_empty() {
                    by_action.insert((trigger.id, index as i32), Arc::new(security));
                }
            }
        }
        let longest_timeout = policies.values().filter_map(|p| p.timeout).max();
        ActionIndex {
            by_action,
            policies,
            default_policy: Arc::new(ActionPolicy::server(defaults)),
            longest_timeout,
        }
    }

    /// The longest per-attempt timeout an action sets (`None`: none sets one), so that a
    /// lease can always outlast the attempt it covers.
    pub fn longest_timeout(&self) -> Option<std::time::Duration> {
        self.longest_timeout
    }

    /// The queue policy of an action (the server's for a deleted trigger).
    pub fn policy(&self, trigger: TriggerId, action_index: i32) -> Arc<ActionPolicy> {
        self.policies
            .get(&(trigger, action_index))
            .cloned()
            .unwrap_or_else(|| self.default_policy.clone())
    }

    /// The fresh budget a resent call gets under its action's policy, for the calls of
    /// `only` (`None`: every trigger's).
    pub fn attempt_budget(&self, only: Option<TriggerId>) -> AttemptBudget {
        let default = self.default_policy.retry.max_attempts();
        let mut by_action: Vec<_> = self
            .policies
            .iter()
            .filter(|((trigger, _), _)| only.is_none_or(|t| t == *trigger))
            .map(|(&(trigger, index), policy)| {
                // Keys are positions in a trigger's action list: never negative.
                let action = ActionRef::new(trigger, index as u16);
                (action, policy.retry.max_attempts())
            })
            .filter(|(_, attempts)| *attempts != default)
            .collect();
        by_action.sort_unstable_by_key(|(action, _)| *action);
        AttemptBudget { default, by_action }
    }

    pub fn get(&self, trigger: TriggerId, action_index: i32) -> Option<Arc<ActionSecurity>> {
        self.by_action.get(&(trigger, action_index)).cloned()
    }
}

// ---- resolving credentials when a trigger is saved ----

use base64::Engine as _;
use rand::RngCore;

use crate::model::{CallWebhook, SigningKeys, TriggerDraft};
use crate::service::{Engine, EngineError};

/// How long the previous secret keeps being used after a rotation.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// A fresh Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
pub fn generate_secret() -> Secret {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    Secret::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// Checks a pasted `whsec_…` secret: the Standard Webhooks spec makes it base64 of 24 to 64
/// random bytes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return Err(
            "must start with whsec_ (a Standard Webhooks secret; a receiver's own secret of \
             another form signs with \"signatureScheme\": \"hubSha256\"); send \"generate\" \
             to get one"
                .into(),
        );
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("the part after whsec_ is not valid base64: {e}"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "decodes to {} bytes; a secret has 24 to 64",
            key.len()
        ));
    }
    Ok(())
}

/// Checks a secret for the scheme it signs with: Standard Webhooks secrets follow that
/// specification ([`check_secret`]); a hub receiver's secret is whatever string the receiver
/// holds (GitHub-style receivers hash the body with it as it is), so any non-empty one.
pub fn check_secret_for(scheme: SignatureScheme, secret: &str) -> Result<(), String> {
    match scheme {
        SignatureScheme::StandardWebhooks => check_secret(secret),
        SignatureScheme::HubSha256 if secret.is_empty() => Err("must not be empty".into()),
        SignatureScheme::HubSha256 => Ok(()),
    }
}

/// Checks a basic-auth username; a missing password is kept from the stored action.
fn keep_basic_auth_password(
    call: &mut CallWebhook,
    before: Option<&CallWebhook>,
    field: &impl Fn(&str) -> String,
) -> Result<(), EngineError> {
    let Some(auth) = &mut call.basic_auth else {
        return Ok(());
    };
    if auth.username.is_empty() || auth.username.contains(':') {
        return Err(invalid(
            field("basicAuth.username"),
            "must be non-empty and contain no colon",
        ));
    }
    let stored = before
        .and_then(|b| b.basic_auth.as_ref())
        .and_then(|b| b.password.as_ref());
    keep_stored(&mut auth.password, stored, field, "basicAuth.password")
}

/// A write-only field the editor left out keeps its stored value; with none stored, it is
/// required.
fn keep_stored(
    value: &mut Option<Secret>,
    stored: Option<&Secret>,
    field: &impl Fn(&str) -> String,
    name: &str,
) -> Result<(), EngineError> {
    if value.is_none() {
        *value = stored.cloned();
        if value.is_none() {
            return Err(invalid(field(name), "is required"));
        }
    }
    Ok(())
}

/// The HMAC secret to store for what a draft asks: nothing keeps the stored one (if it suits
/// the scheme), `Remove` removes it, `Generate` or a new one rotates, and keys given whole (a
/// saved trigger's, as the platform APIs pass them back) are checked.
fn resolve_hmac_secret(
    scheme: SignatureScheme,
    sent: Option<HmacSecret>,
    before: Option<&CallWebhook>,
    now: Timestamp,
    field: &impl Fn(&str) -> String,
) -> Result<Option<HmacSecret>, EngineError> {
    let previous_keys = before.and_then(|b| match &b.hmac_secret {
        Some(HmacSecret::Keys(k)) => Some(k.clone()),
        _ => None,
    });
    let check = |secret: &str, name: &str| {
        check_secret_for(scheme, secret).map_err(|m| invalid(field(name), m))
    };
    Ok(match sent {
        None => match previous_keys {
            Some(keys) => Some(kept_keys(scheme, keys, field)?),
            None => None,
        },
        Some(HmacSecret::Remove) => None,
        Some(HmacSecret::Generate) => Some(rotate(scheme, previous_keys, generate_secret(), now)),
        Some(HmacSecret::Set(secret)) => {
            check(secret.expose(), "hmacSecret")?;
            Some(rotate(scheme, previous_keys, secret, now))
        }
        Some(HmacSecret::Keys(keys)) => {
            check(keys.current.expose(), "hmacSecret.current")?;
            if let Some(previous) = &keys.previous {
                check(previous.expose(), "hmacSecret.previous")?;
            }
            Some(HmacSecret::Keys(for_scheme(scheme, keys)))
        }
    })
}

/// The stored keys, kept as they are: they must suit the scheme the action now signs with.
fn kept_keys(
    scheme: SignatureScheme,
    keys: SigningKeys,
    field: &impl Fn(&str) -> String,
) -> Result<HmacSecret, EngineError> {
    check_secret_for(scheme, keys.current.expose()).map_err(|m| {
        invalid(
            field("hmacSecret"),
            format!("the stored secret {m}; generate or enter a new one for this scheme"),
        )
    })?;
    Ok(HmacSecret::Keys(for_scheme(scheme, keys)))
}

fn invalid(field: String, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field,
        message: message.into(),
    }
}

impl Engine {
    /// Turns the write-only credential fields of a trigger as the API sent it into what is
    /// stored: missing secrets are kept from `existing`, `"generate"` makes a new HMAC secret,
    /// a changed secret keeps the old one for [`ROTATION_OVERLAP_MS`], and certificates are
    /// checked and described.
    pub(crate) fn resolve_credentials(
        &self,
        draft: &mut TriggerDraft,
        existing: Option<&Trigger>,
    ) -> Result<(), EngineError> {
        let now = Timestamp::now();
        for (i, action) in draft.actions.iter_mut().enumerate() {
            let Action::CallWebhook(call) = action;
            let before: Option<&CallWebhook> =
                existing.and_then(|t| t.draft.actions.get(i)).map(|a| {
                    let Action::CallWebhook(c) = a;
                    c
                });
            let field = |name: &str| format!("actions[{i}].{name}");
            self.transport
                .check_url(&call.url)
                .map_err(|m| invalid(field("url"), m))?;

            keep_basic_auth_password(call, before, &field)?;
            call.hmac_secret = resolve_hmac_secret(
                call.signature_scheme,
                call.hmac_secret.take(),
                before,
                now,
                &field,
            )?;
            self.describe_client_certificate(call, before, &field)?;
            if let Some(ca) = &call.ca_pem {
                self.transport
                    .check_ca(ca)
                    .map_err(|m| invalid(field("caPem"), m))?;
            }
        }
        Ok(())
    }

    /// Checks a client certificate and describes it (subject, issuer, expiry); a missing key
    /// is kept from the stored action.
    fn describe_client_certificate(
        &self,
        call: &mut CallWebhook,
        before: Option<&CallWebhook>,
        field: &impl Fn(&str) -> String,
    ) -> Result<(), EngineError> {
        let Some(cert) = &mut call.client_certificate else {
            return Ok(());
        };
        let stored = before
            .and_then(|b| b.client_certificate.as_ref())
            .and_then(|c| c.key_pem.as_ref());
        keep_stored(&mut cert.key_pem, stored, field, "clientCertificate.keyPem")?;
        let key = cert
            .key_pem
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default();
        let info = self
            .transport
            .inspect_identity(&cert.cert_pem, key)
            .map_err(|m| invalid(field("clientCertificate"), m))?;
        cert.subject = Some(info.subject);
        cert.issuer = Some(info.issuer);
        cert.not_after = Some(info.not_after);
        Ok(())
    }

    /// The current HMAC secret of an action, for an admin who needs to configure a receiver.
    pub async fn reveal_secret(
        &self,
        trigger: TriggerId,
        action_index: usize,
    ) -> Result<Secret, EngineError> {
        let trigger = self.get_trigger(trigger).await?;
        let Some(Action::CallWebhook(call)) = trigger.draft.actions.get(action_index) else {
            return Err(EngineError::NotFound(format!(
                "trigger {} has no action {action_index}",
                trigger.id
            )));
        };
        match &call.hmac_secret {
            Some(HmacSecret::Keys(keys)) => Ok(keys.current.clone()),
            _ => Err(EngineError::NotFound(format!(
                "action {action_index} of trigger {} is not signed",
                trigger.id
            ))),
        }
    }
}

/// Makes `secret` current. Under Standard Webhooks the previous current key stays valid for a
/// day (both signatures are sent, and receivers accept either); a hub receiver compares one
/// signature, so there the new secret replaces the old one at once.
fn rotate(
    scheme: SignatureScheme,
    previous: Option<SigningKeys>,
    secret: Secret,
    now: Timestamp,
) -> HmacSecret {
    let keys = match previous {
        Some(keys) if keys.current == secret => keys,
        Some(keys) => SigningKeys {
            current: secret,
            previous: Some(keys.current),
            previous_valid_until: Some(now.0 + ROTATION_OVERLAP_MS),
        },
        None => SigningKeys {
            current: secret,
            previous: None,
            previous_valid_until: None,
        },
    };
    HmacSecret::Keys(for_scheme(scheme, keys))
}

/// Keys as `scheme` uses them: a hub signature is made with the current secret only, so no
/// previous one is kept (and none is shown as still valid).
fn for_scheme(scheme: SignatureScheme, keys: SigningKeys) -> SigningKeys {
    match scheme {
        SignatureScheme::StandardWebhooks => keys,
        SignatureScheme::HubSha256 => SigningKeys {
            previous: None,
            previous_valid_until: None,
            ..keys
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_valid_and_pasted_ones_are_checked() {
        let s = generate_secret();
        assert!(check_secret(s.expose()).is_ok());
        assert!(check_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(check_secret("secret").is_err());
        assert!(check_secret("whsec_!!!").is_err());
        assert!(check_secret("whsec_AAAA").is_err());
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_a_day() {
        let old = generate_secret();
        let new = generate_secret();
        let keys = SigningKeys {
            current: old.clone(),
            previous: None,
            previous_valid_until: None,
        };
        let HmacSecret::Keys(rotated) = rotate(
            SignatureScheme::StandardWebhooks,
            Some(keys.clone()),
            new.clone(),
            Timestamp(1000),
        ) else {
            panic!()
        };
        assert_eq!(rotated.current, new);
        assert_eq!(rotated.previous, Some(old.clone()));
        let signing = Signing {
            scheme: SignatureScheme::StandardWebhooks,
            current: rotated.current.clone(),
            previous: rotated.previous.clone().zip(rotated.previous_valid_until),
        };
        assert_eq!(signing.active_secrets(Timestamp(2000)).count(), 2);
        assert_eq!(
            signing
                .active_secrets(Timestamp(1000 + ROTATION_OVERLAP_MS))
                .count(),
            1
        );
        // Re-saving the same secret is not a rotation.
        assert_eq!(
            rotate(
                SignatureScheme::StandardWebhooks,
                Some(keys.clone()),
                old,
                Timestamp(5)
            ),
            HmacSecret::Keys(keys)
        );
    }

    #[test]
    fn a_hub_secret_is_any_non_empty_string_and_a_standard_one_a_whsec_secret() {
        let hub = SignatureScheme::HubSha256;
        assert!(check_secret_for(hub, "It's a Secret to Everybody").is_ok());
        assert!(check_secret_for(hub, "").is_err());
        let standard = SignatureScheme::StandardWebhooks;
        assert!(check_secret_for(standard, "It's a Secret to Everybody").is_err());
        assert!(check_secret_for(standard, generate_secret().expose()).is_ok());
    }

    #[test]
    fn a_hub_rotation_switches_at_once() {
        let keys = SigningKeys {
            current: Secret::new("old receiver secret"),
            previous: None,
            previous_valid_until: None,
        };
        let HmacSecret::Keys(rotated) = rotate(
            SignatureScheme::HubSha256,
            Some(keys),
            Secret::new("new receiver secret"),
            Timestamp(1000),
        ) else {
            panic!()
        };
        assert_eq!(rotated.current.expose(), "new receiver secret");
        assert_eq!(rotated.previous, None);
        assert_eq!(rotated.previous_valid_until, None);
    }
}

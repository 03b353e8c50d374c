//! How a trigger's actions are stored: a JSON array in the `triggers.actions` column, in a
//! shape of storage's own. The API's shape may change (a field renamed, a default moved)
//! without changing a stored byte, and the fields that hold credentials are [`Sealed`]: a
//! value of that type is only made by sealing a [`Secret`] and only read by opening it.
//!
//! The format is the one hookflow has written since actions were first stored (camelCase
//! names, defaults left out); `stored_rows_of_the_first_format_read_back` keeps it readable.

use std::collections::BTreeMap;

use hookflow_engine::model::{
    Action, BasicAuth, CallWebhook, ClientCertificate, CustomRetry, HmacSecret, Method,
    PayloadTemplate, RetryPolicySpec, RetryPreset, Secret, SignatureScheme, SigningKeys,
};
use hookflow_engine::store::StoreError;
use hookflow_templating::MimeType;
use serde::{Deserialize, Serialize};

use crate::secrets::SecretBox;

/// One stored action.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum StoredAction {
    CallWebhook(StoredCallWebhook),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredCallWebhook {
    url: String,
    #[serde(default)]
    method: StoredMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<StoredPayload>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    basic_auth: Option<StoredBasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hmac_secret: Option<StoredKeys>,
    #[serde(default, skip_serializing_if = "StoredScheme::is_default")]
    signature_scheme: StoredScheme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_certificate: Option<StoredCertificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unique_queue_items: bool,
    /// Stored only when `false`: actions saved before the setting existed keep calls in order.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    ordered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_policy: Option<StoredRetryPolicy>,
}

/// A credential at rest: `enc:v1:…` sealed with the server's key (see [`SecretBox`]). Rows
/// written before sealing existed hold the plain value, which is opened as it is.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct Sealed(String);

#[derive(Debug, Default, Serialize, Deserialize)]
enum StoredMethod {
    #[default]
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "GET")]
    Get,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPayload {
    mime_type: MimeType,
    body: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredBasicAuth {
    username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<Sealed>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKeys {
    current: Sealed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<Sealed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_valid_until: Option<i64>,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum StoredScheme {
    #[default]
    StandardWebhooks,
    HubSha256,
}

impl StoredScheme {
    fn is_default(&self) -> bool {
        *self == StoredScheme::StandardWebhooks
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCertificate {
    cert_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_pem: Option<Sealed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredRetryPolicy {
    Preset(StoredPreset),
    Custom(StoredCustomRetry),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredPreset {
    Shopctrl,
    Skladon,
    Flowretail,
    Frontsystems,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCustomRetry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preset: Option<StoredPreset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial_delay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_delay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_on: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "retryOn4xx")]
    retry_on_4xx: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deactivate_after_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<f64>,
}

fn yes() -> bool {
    true
}

/// Seals and opens the credential fields of actions; without a key nothing can be stored
/// sealed, and a sealed value cannot be read.
#[derive(Clone, Copy)]
pub(crate) struct Sealer<'a>(pub(crate) Option<&'a SecretBox>);

impl Sealer<'_> {
    fn seal(&self, secret: &Secret) -> Result<Sealed, StoreError> {
        let secrets = self.0.ok_or_else(|| {
            StoreError::new("no secret key is configured; cannot store credentials")
        })?;
        Ok(Sealed(secrets.seal(secret.expose())))
    }

    fn open(&self, sealed: Sealed) -> Result<Secret, StoreError> {
        if !SecretBox::is_sealed(&sealed.0) {
            return Ok(Secret::new(sealed.0));
        }
        let secrets = self.0.ok_or_else(|| {
            StoreError::new("stored credentials are sealed but no secret key is configured")
        })?;
        secrets.open(&sealed.0).map(Secret::new)
    }

    /// The actions as stored.
    pub(crate) fn seal_actions(&self, actions: &[Action]) -> Result<Vec<StoredAction>, StoreError> {
        actions
            .iter()
            .map(|Action::CallWebhook(call)| Ok(StoredAction::CallWebhook(self.seal_call(call)?)))
            .collect()
    }

    /// The stored actions, opened.
    pub(crate) fn open_actions(
        &self,
        stored: Vec<StoredAction>,
    ) -> Result<Vec<Action>, StoreError> {
        stored
            .into_iter()
            .map(|StoredAction::CallWebhook(call)| Ok(Action::CallWebhook(self.open_call(call)?)))
            .collect()
    }

    fn seal_call(&self, call: &CallWebhook) -> Result<StoredCallWebhook, StoreError> {
        let seal_opt = |s: &Option<Secret>| s.as_ref().map(|s| self.seal(s)).transpose();
        let hmac_secret = match &call.hmac_secret {
            None => None,
            Some(HmacSecret::Keys(keys)) => Some(StoredKeys {
                current: self.seal(&keys.current)?,
                previous: seal_opt(&keys.previous)?,
                previous_valid_until: keys.previous_valid_until,
            }),
            // The engine resolves a draft's request before saving (`resolve_credentials`).
            Some(HmacSecret::Generate | HmacSecret::Set(_) | HmacSecret::Remove) => {
                return Err(StoreError::new(
                    "an action's HMAC secret must be resolved to keys before it is stored",
                ))
            }
        };
        Ok(StoredCallWebhook {
            url: call.url.clone(),
            method: match call.method {
                Method::Post => StoredMethod::Post,
                Method::Get => StoredMethod::Get,
            },
            payload: call.payload.as_ref().map(|p| StoredPayload {
                mime_type: p.mime_type,
                body: p.body.clone(),
            }),
            headers: call.headers.clone(),
            basic_auth: match &call.basic_auth {
                Some(auth) => Some(StoredBasicAuth {
                    username: auth.username.clone(),
                    password: seal_opt(&auth.password)?,
                }),
                None => None,
            },
            hmac_secret,
            signature_scheme: match call.signature_scheme {
                SignatureScheme::StandardWebhooks => StoredScheme::StandardWebhooks,
                SignatureScheme::HubSha256 => StoredScheme::HubSha256,
            },
            client_certificate: match &call.client_certificate {
                Some(cert) => Some(StoredCertificate {
                    cert_pem: cert.cert_pem.clone(),
                    key_pem: seal_opt(&cert.key_pem)?,
                    subject: cert.subject.clone(),
                    issuer: cert.issuer.clone(),
                    not_after: cert.not_after.clone(),
                }),
                None => None,
            },
            ca_pem: call.ca_pem.clone(),
            unique_queue_items: call.unique_queue_items,
            ordered: call.ordered,
            retry_policy: call.retry_policy.as_ref().map(StoredRetryPolicy::from),
        })
    }

    fn open_call(&self, call: StoredCallWebhook) -> Result<CallWebhook, StoreError> {
        let open_opt = |s: Option<Sealed>| s.map(|s| self.open(s)).transpose();
        Ok(CallWebhook {
            url: call.url,
            method: match call.method {
                StoredMethod::Post => Method::Post,
                StoredMethod::Get => Method::Get,
            },
            payload: call.payload.map(|p| PayloadTemplate {
                mime_type: p.mime_type,
                body: p.body,
            }),
            headers: call.headers,
            basic_auth: match call.basic_auth {
                Some(auth) => Some(BasicAuth {
                    username: auth.username,
                    password: open_opt(auth.password)?,
                }),
                None => None,
            },
            hmac_secret: match call.hmac_secret {
                Some(keys) => Some(HmacSecret::Keys(SigningKeys {
                    current: self.open(keys.current)?,
                    previous: open_opt(keys.previous)?,
                    previous_valid_until: keys.previous_valid_until,
                })),
                None => None,
            },
            signature_scheme: match call.signature_scheme {
                StoredScheme::StandardWebhooks => SignatureScheme::StandardWebhooks,
                StoredScheme::HubSha256 => SignatureScheme::HubSha256,
            },
            client_certificate: match call.client_certificate {
                Some(cert) => Some(ClientCertificate {
                    cert_pem: cert.cert_pem,
                    key_pem: open_opt(cert.key_pem)?,
                    subject: cert.subject,
                    issuer: cert.issuer,
                    not_after: cert.not_after,
                }),
                None => None,
            },
            ca_pem: call.ca_pem,
            unique_queue_items: call.unique_queue_items,
            ordered: call.ordered,
            retry_policy: call.retry_policy.map(RetryPolicySpec::from),
        })
    }
}

impl From<RetryPreset> for StoredPreset {
    fn from(preset: RetryPreset) -> StoredPreset {
        match preset {
            RetryPreset::Shopctrl => StoredPreset::Shopctrl,
            RetryPreset::Skladon => StoredPreset::Skladon,
            RetryPreset::Flowretail => StoredPreset::Flowretail,
            RetryPreset::Frontsystems => StoredPreset::Frontsystems,
        }
    }
}

impl From<StoredPreset> for RetryPreset {
    fn from(preset: StoredPreset) -> RetryPreset {
        match preset {
            StoredPreset::Shopctrl => RetryPreset::Shopctrl,
            StoredPreset::Skladon => RetryPreset::Skladon,
            StoredPreset::Flowretail => RetryPreset::Flowretail,
            StoredPreset::Frontsystems => RetryPreset::Frontsystems,
        }
    }
}

impl From<&RetryPolicySpec> for StoredRetryPolicy {
    fn from(spec: &RetryPolicySpec) -> StoredRetryPolicy {
        match spec {
            RetryPolicySpec::Preset(preset) => StoredRetryPolicy::Preset((*preset).into()),
            RetryPolicySpec::Custom(c) => StoredRetryPolicy::Custom(StoredCustomRetry {
                preset: c.preset.map(Into::into),
                max_retries: c.max_retries,
                initial_delay: c.initial_delay,
                max_delay: c.max_delay,
                timeout: c.timeout,
                retry_on: c.retry_on.clone(),
                retry_on_4xx: c.retry_on_4xx.clone(),
                deactivate_after_failures: c.deactivate_after_failures,
                max_age: c.max_age,
            }),
        }
    }
}

impl From<StoredRetryPolicy> for RetryPolicySpec {
    fn from(stored: StoredRetryPolicy) -> RetryPolicySpec {
        match stored {
            StoredRetryPolicy::Preset(preset) => RetryPolicySpec::Preset(preset.into()),
            StoredRetryPolicy::Custom(c) => RetryPolicySpec::Custom(CustomRetry {
                preset: c.preset.map(Into::into),
                max_retries: c.max_retries,
                initial_delay: c.initial_delay,
                max_delay: c.max_delay,
                timeout: c.timeout,
                retry_on: c.retry_on,
                retry_on_4xx: c.retry_on_4xx,
                deactivate_after_failures: c.deactivate_after_failures,
                max_age: c.max_age,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Rows as hookflow wrote them before storage had a shape of its own: the API's shape,
    /// with credentials sealed in place (and, from before sealing, in the clear).
    #[test]
    fn stored_rows_of_the_first_format_read_back() {
        let key = SecretBox::new([7u8; 32]);
        let sealer = Sealer(Some(&key));
        let row = json!([
            {"type": "callWebhook", "url": "https://erp.example.com/h/{{ entity.OrderCode }}",
             "method": "GET", "headers": {"X-Shop": "{{ shop.name }}"},
             "payload": {"mimeType": "application/xml", "body": "<o/>"},
             "basicAuth": {"username": "erp", "password": key.seal("s3cret")},
             "hmacSecret": {"current": key.seal("whsec_new"), "previous": key.seal("whsec_old"),
                            "previousValidUntil": 1234},
             "signatureScheme": "hubSha256",
             "clientCertificate": {"certPem": "CERT", "keyPem": key.seal("KEY"),
                                   "subject": "CN=a", "issuer": "CN=b",
                                   "notAfter": "2030-01-01T00:00:00Z"},
             "caPem": "CA", "uniqueQueueItems": true, "ordered": false,
             "retryPolicy": {"preset": "skladon", "maxRetries": 3, "retryOn4xx": [409]}},
            {"type": "callWebhook", "url": "https://legacy.example.com/",
             "method": "POST", "basicAuth": {"username": "old", "password": "plain"},
             "retryPolicy": "flowretail"}
        ]);
        let stored: Vec<StoredAction> = serde_json::from_value(row.clone()).unwrap();
        let actions = sealer.open_actions(stored).unwrap();
        let Action::CallWebhook(call) = &actions[0];
        assert_eq!(call.method, Method::Get);
        assert_eq!(
            call.basic_auth.as_ref().unwrap().password,
            Some(Secret::new("s3cret"))
        );
        let Some(HmacSecret::Keys(keys)) = &call.hmac_secret else {
            panic!("keys: {:?}", call.hmac_secret)
        };
        assert_eq!(keys.current, Secret::new("whsec_new"));
        assert_eq!(keys.previous, Some(Secret::new("whsec_old")));
        assert_eq!(keys.previous_valid_until, Some(1234));
        assert_eq!(call.signature_scheme, SignatureScheme::HubSha256);
        let cert = call.client_certificate.as_ref().unwrap();
        assert_eq!(cert.key_pem, Some(Secret::new("KEY")));
        assert_eq!(cert.subject.as_deref(), Some("CN=a"));
        assert!(call.unique_queue_items && !call.ordered);
        let Some(RetryPolicySpec::Custom(custom)) = &call.retry_policy else {
            panic!("custom retry: {:?}", call.retry_policy)
        };
        assert_eq!(custom.preset, Some(RetryPreset::Skladon));
        assert_eq!(custom.retry_on_4xx, vec![409]);
        let Action::CallWebhook(legacy) = &actions[1];
        assert_eq!(
            legacy.basic_auth.as_ref().unwrap().password,
            Some(Secret::new("plain"))
        );
        assert!(legacy.ordered);
        assert_eq!(
            legacy.retry_policy,
            Some(RetryPolicySpec::Preset(RetryPreset::Flowretail))
        );

        // Written again, the row has the same shape, with every credential sealed anew.
        let again = serde_json::to_value(sealer.seal_actions(&actions).unwrap()).unwrap();
        let mut expected = row;
        let mut written = again.clone();
        for (e, w) in [
            ("/0/basicAuth/password", "/0/basicAuth/password"),
            ("/0/hmacSecret/current", "/0/hmacSecret/current"),
            ("/0/hmacSecret/previous", "/0/hmacSecret/previous"),
            ("/0/clientCertificate/keyPem", "/0/clientCertificate/keyPem"),
            ("/1/basicAuth/password", "/1/basicAuth/password"),
        ] {
            let sealed = written.pointer_mut(w).unwrap().take();
            assert!(
                SecretBox::is_sealed(sealed.as_str().unwrap()),
                "{w}: {sealed}"
            );
            *expected.pointer_mut(e).unwrap() = json!(null);
            *written.pointer_mut(w).unwrap() = json!(null);
        }
        assert_eq!(written, expected);
    }

    #[test]
    fn stored_actions_show_no_credential_in_the_clear() {
        let key = SecretBox::new([7u8; 32]);
        let mut call = CallWebhook::to("https://x/");
        call.basic_auth = Some(BasicAuth {
            username: "erp".into(),
            password: Some(Secret::new("s3cret")),
        });
        call.hmac_secret = Some(HmacSecret::Keys(SigningKeys {
            current: Secret::new("whsec_abc"),
            previous: Some(Secret::new("whsec_old")),
            previous_valid_until: Some(1),
        }));
        call.client_certificate = Some(ClientCertificate {
            cert_pem: "CERT".into(),
            key_pem: Some(Secret::new("KEY")),
            subject: None,
            issuer: None,
            not_after: None,
        });
        let actions = vec![Action::CallWebhook(call)];
        let stored = Sealer(Some(&key)).seal_actions(&actions).unwrap();
        let text = serde_json::to_string(&stored).unwrap();
        for secret in ["s3cret", "whsec_abc", "whsec_old", "KEY"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("erp") && text.contains("CERT"));
        let back: Vec<StoredAction> = serde_json::from_str(&text).unwrap();
        assert_eq!(Sealer(Some(&key)).open_actions(back).unwrap(), actions);
        // Another key cannot open them, and without a key nothing is stored.
        let back: Vec<StoredAction> = serde_json::from_str(&text).unwrap();
        let other = SecretBox::new([8u8; 32]);
        assert!(Sealer(Some(&other)).open_actions(back).is_err());
        assert!(Sealer(None).seal_actions(&actions).is_err());
    }

    #[test]
    fn an_unresolved_secret_request_is_never_stored() {
        let key = SecretBox::new([7u8; 32]);
        let mut call = CallWebhook::to("https://x/");
        call.hmac_secret = Some(HmacSecret::Generate);
        assert!(Sealer(Some(&key))
            .seal_actions(&[Action::CallWebhook(call)])
            .is_err());
    }
}

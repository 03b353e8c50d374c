//! The trigger editor in a real Chromium, as an admin and a viewer use it: triggers made over
//! the API with every field set survive opening and saving unchanged; secrets are generated in
//! the page (so Send test signs with the one the save stores), shown once after the save,
//! revealed and copied later; the hub scheme takes the receiver's own secret; the
//! Authentication tab, client certificate, unique items and Save and close; reactivating a
//! deactivated action from the editor and from its alert; a viewer's read-only editor; and
//! notices that only the server decides.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use super::add_user;
use super::driver::Browser;
use crate::common::{
    event, id, spawn_app, spawn_binary, wait_until, Backend, Receiver, Recorded, Reply,
};
use crate::common::{TestApp, WAIT};
use crate::security::{MtlsServer, Pki};

/// A CA (PEM) and a client certificate and key it issued.
fn client_certificate(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "editor test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    // A text field holds lines ending in LF (browsers drop the CR of CRLF).
    let lf = |pem: String| pem.replace("\r\n", "\n");
    (lf(ca.pem()), lf(cert.pem()), lf(key.serialize_pem()))
}

/// Whether a Standard Webhooks `webhook-signature` of the call verifies with `secret`.
fn standard_signature_verifies(secret: &str, request: &Recorded) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("the secret is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(request.webhook_id().as_bytes());
    mac.update(b".");
    mac.update(
        request
            .header("webhook-timestamp")
            .unwrap_or_default()
            .as_bytes(),
    );
    mac.update(b".");
    mac.update(&request.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    request
        .header("webhook-signature")
        .unwrap_or_default()
        .split(' ')
        .any(|s| s == expected)
}

/// `sha256=<hex>` of the body keyed with the secret string, as a GitHub-style receiver checks.
fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Log text without its colours (ANSI escape sequences).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... m
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn reveal(app: &TestApp, trigger: i64, action: usize) -> String {
    let (status, body) = app
        .post_json(
            &format!("/api/v1/triggers/{trigger}/actions/{action}/reveal-secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hmacSecret"].as_str().unwrap().to_owned()
}

async fn get_trigger(app: &TestApp, trigger: i64) -> Value {
    let (status, mut body) = app.get_json(&format!("/api/v1/triggers/{trigger}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_object_mut().unwrap().remove("updatedAt");
    body
}

/// Makes `window.__copied` record what the page's Copy buttons put on the clipboard.
async fn record_clipboard(browser: &Browser) {
    browser
        .run(
            "window.__copied = [];
             navigator.clipboard.writeText = (text) => { window.__copied.push(text); return Promise.resolve(); };
             return null",
        )
        .await;
}

async fn copied(browser: &Browser) -> Value {
    browser.run("return window.__copied").await
}

/// Triggers in every shape the API takes: each retry preset and a custom policy with every
/// field, every kind of credential, a template of each mime type, unique items, priority,
/// condition, headers, order, GET, a trigger for every shop, two actions.
fn every_shape(shop: i64, url: &str) -> Vec<Value> {
    let (ca, cert, key) = client_certificate("erp-client");
    vec![
        json!({
            "name": "Every field, ShopCtrl preset", "eventType": "OrderChanged", "shopId": shop,
            "enabled": false, "priority": 9,
            "condition": "entity.Status == \"Shipped\" and entity.Total > 100",
            "actions": [{
                "type": "callWebhook", "url": format!("{url}/orders/{{{{ entityId }}}}"),
                "method": "POST", "uniqueQueueItems": true, "ordered": false,
                "headers": {"X-Order": "{{ entity.OrderCode }}", "X-Shop": "{{ shop.name }}"},
                "basicAuth": {"username": "erp", "password": "s3cret-pw"},
                "hmacSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "retryPolicy": "shopctrl",
                "payload": {"mimeType": "application/json",
                            "body": "\n{\"order\": {{ entity.OrderCode }},\n \"shop\": {{ shop.name }}}\n"}
            }]
        }),
        json!({
            "name": "Hub secret, client certificate, Skladon preset", "eventType": "OrderChanged",
            "shopId": shop, "priority": 3,
            "actions": [{
                "type": "callWebhook", "url": format!("{url}/xml"),
                "hmacSecret": "It's a Secret to Everybody", "signatureScheme": "hubSha256",
                "clientCertificate": {"certPem": cert, "keyPem": key}, "caPem": ca,
                "retryPolicy": "skladon",
                "payload": {"mimeType": "application/xml",
                            "body": "<order code=\"{{ entity.OrderCode }}\">{{ shop.name }}</order>"}
            }]
        }),
        json!({
            "name": "Every shop, Flow Retail preset, text", "eventType": "OrderChanged",
            "shopId": null, "priority": 1,
            "actions": [{
                "type": "callWebhook", "url": format!("{url}/text"), "retryPolicy": "flowretail",
                "payload": {"mimeType": "text/plain",
                            "body": "Order {{ entity.OrderCode }}\nShop {{ shop.name }}"}
            }]
        }),
        json!({
            "name": "Custom policy with every field, two actions", "eventType": "OrderChanged",
            "shopId": shop,
            "actions": [{
                "type": "callWebhook", "url": format!("{url}/custom"),
                "retryPolicy": {"maxRetries": 3, "initialDelay": 1.5, "maxDelay": 60.0,
                                "timeout": 5.0, "retryOn4xx": [409, 423],
                                "deactivateAfterFailures": 4, "maxAge": 3600.0}
            }, {
                "type": "callWebhook", "url": format!("{url}/get"), "method": "GET",
                "retryPolicy": "frontsystems"
            }]
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_made_over_the_api_with_every_field_set_survives_opening_and_saving_in_the_editor(
) {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let shop = app.create_shop("Main shop").await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;

    for shape in every_shape(shop, &receiver.url("/erp")) {
        let name = shape["name"].as_str().unwrap().to_owned();
        let trigger = id(&app.create_trigger(shape).await);
        let before = get_trigger(&app, trigger).await;
        let secret = match before["actions"][0].get("hmacSecret") {
            Some(_) => Some(reveal(&app, trigger, 0).await),
            None => None,
        };
        browser.goto(&format!("/triggers/{trigger}")).await;
        browser.wait_for_text("h1", &name).await;
        // Priority is the trigger's: asked once, beside the event and the shop.
        assert_eq!(
            browser
                .run(
                    "return document.querySelectorAll('#trigger-form [data-path=priority]').length"
                )
                .await,
            1
        );
        if name.starts_with("Custom") {
            browser.screenshots("editor-round-trip-custom-policy").await;
        }
        browser.click("#save").await;
        browser.wait_for_text(".notice", "Saved.").await;
        let after = get_trigger(&app, trigger).await;
        assert_eq!(after, before, "{name}: the editor changed the trigger");
        if let Some(secret) = secret {
            assert_eq!(
                reveal(&app, trigger, 0).await,
                secret,
                "{name}: the secret is kept"
            );
        }
    }

    // The list's switch confirms on the page it returns to.
    browser.goto("/triggers").await;
    browser
        .click("button[aria-label='Custom policy with every field, two actions enabled']")
        .await;
    browser
        .wait_for_text(
            ".notice",
            "Custom policy with every field, two actions disabled",
        )
        .await;
    browser.screenshots("triggers-switched-off").await;
    let (_, list) = app.get_json("/api/v1/triggers").await;
    let switched = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Custom policy with every field, two actions")
        .unwrap();
    assert_eq!(switched["enabled"], false);
    // The notice was shown once: the next visit has none.
    browser.goto("/triggers").await;
    browser.find("table.triggers").await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('.notice').length")
            .await,
        0
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_secret_signs_the_send_test_is_shown_once_after_saving_and_can_be_revealed_later(
) {
    // It reads the server's log: a process of its own.
    let app = spawn_binary(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let shop = app.create_shop("Main shop").await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;

    browser.goto("/triggers/new").await;
    browser.fill("#t-name", "Signed orders").await;
    browser.select("#t-event", "OrderChanged").await;
    browser.select("#t-shop", &shop.to_string()).await;
    browser.click("#add-action").await;
    browser.fill("#a0-url", &receiver.url("/signed")).await;
    // Generate: the secret is made in the page, shown with a copy button.
    browser.select("#a0-hmac-mode", "generate").await;
    let secret = browser
        .run("return document.getElementById('a0-hmac').value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    record_clipboard(&browser).await;
    browser.click("#a0-general [data-copy='a0-hmac']").await;
    browser
        .wait_for_text("#a0-general [data-copy='a0-hmac']", "Copied")
        .await;
    assert_eq!(copied(&browser).await, json!([secret]));
    // Send test signs with that very secret.
    browser.click("#a0-tab-payload").await;
    browser.click("#a0-payload [data-send-test]").await;
    browser.find("#a0-payload [data-test-status='200']").await;
    let tested = receiver.requests();
    assert_eq!(tested.len(), 1);
    assert!(
        standard_signature_verifies(&secret, &tested[0]),
        "the send test is signed with the secret shown"
    );
    browser.screenshots("editor-secret-generated").await;

    // The Authentication tab; it is still open after the save.
    browser.click("#a0-tab-auth").await;
    browser.fill("#a0-user", "erp").await;
    browser.fill("#a0-pass", "pw-12345").await;
    browser.click("#save").await;
    // Saved: the secret is shown once, with a copy button, before the page goes on.
    browser.wait_for_text("#secret-list", &secret).await;
    browser.click("#secret-list [data-copy]").await;
    browser
        .wait_for_text("#secret-list [data-copy]", "Copied")
        .await;
    assert_eq!(copied(&browser).await, json!([secret, secret]));
    browser.screenshots("editor-secret-shown-once").await;
    browser.click("#secret-continue").await;
    browser.wait_for_path("/triggers/1").await;
    browser.wait_for_text(".notice", "Saved.").await;
    assert_eq!(
        browser
            .find("#a0-tab-auth")
            .await
            .attr("aria-selected")
            .await
            .unwrap()
            .as_deref(),
        Some("true"),
        "the tab that was open is open again"
    );
    assert!(browser.find("#a0-user").await.is_displayed().await.unwrap());
    assert_eq!(
        reveal(&app, 1, 0).await,
        secret,
        "the save stored the secret tested"
    );
    let trigger = get_trigger(&app, 1).await;
    assert_eq!(
        trigger["actions"][0]["basicAuth"],
        json!({"username": "erp", "password": {"set": true}})
    );

    // Later: reveal and copy the stored secret; the reveal is logged without the value.
    browser.click("#a0-tab-general").await;
    record_clipboard(&browser).await;
    browser.click("#a0-reveal").await;
    browser.wait_for_text("#a0-revealed", &secret).await;
    browser.click("#a0-general [data-copy='a0-revealed']").await;
    browser
        .wait_for_text("#a0-general [data-copy='a0-revealed']", "Copied")
        .await;
    assert_eq!(copied(&browser).await, json!([secret]));
    browser.screenshots("editor-secret-revealed").await;
    let revealed = || {
        plain(&app.log())
            .lines()
            .find(|l| l.contains("HMAC secret revealed") && l.contains("admin@example.com"))
            .map(str::to_owned)
    };
    wait_until(WAIT, "the reveal is logged", async || revealed().is_some()).await;
    let line = revealed().unwrap();
    assert!(
        line.contains("trigger_id=1") && line.contains("action=0"),
        "{line}"
    );
    assert!(
        !app.log().contains(&secret),
        "the secret never reaches the log"
    );

    // The hub scheme: the receiver's own secret, as it is; a new one applies at once.
    browser.select("#a0-hmac-scheme", "hubSha256").await;
    assert!(browser
        .find("#a0-general [data-rotation='hubSha256']")
        .await
        .is_displayed()
        .await
        .unwrap());
    assert!(!browser
        .find("#a0-general [data-rotation='standardWebhooks']")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.select("#a0-hmac-mode", "set").await;
    browser.fill("#a0-hmac", "It's a Secret to Everybody").await;
    browser.screenshots("editor-hub-secret").await;
    browser.click("#save").await;
    browser
        .wait_for_text(
            "#a0-hmac-mode option[value='keep']",
            "Keep the stored secret",
        )
        .await;
    browser.wait_for_text(".notice", "Saved.").await;
    let trigger = get_trigger(&app, 1).await;
    assert_eq!(trigger["actions"][0]["signatureScheme"], "hubSha256");
    assert_eq!(
        trigger["actions"][0]["hmacSecret"],
        json!({"set": true}),
        "no rotation window: a hub receiver checks one signature"
    );
    let keep = browser
        .find("#a0-hmac-mode option[value='keep']")
        .await
        .text()
        .await
        .unwrap();
    assert!(!keep.contains("previous"), "{keep}");
    app.post_event(event("OrderChanged", shop, 7, json!({"OrderId": 7})))
        .await;
    let got = receiver
        .wait_for_requests(2, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(
        got[1].header("x-hub-signature-256"),
        Some(hub_signature("It's a Secret to Everybody", &got[1].body).as_str())
    );
    assert_eq!(
        got[1].header("authorization"),
        Some("Basic ZXJwOnB3LTEyMzQ1")
    );

    // No signature: the secret is dropped.
    browser.select("#a0-hmac-mode", "none").await;
    browser.click("#save").await;
    wait_until(WAIT, "the secret is dropped", async || {
        get_trigger(&app, 1).await["actions"][0]
            .get("hmacSecret")
            .is_none()
    })
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authentication_tab_client_certificate_and_unique_items_save_and_close_from_the_editor()
{
    let app = spawn_app(Backend::Sqlite).await;
    let pki = Pki::new();
    // A receiver that refuses any caller without a certificate of this CA.
    let server = MtlsServer::start(&pki).await;
    let shop = app.create_shop("Main shop").await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    let (cert, key) = pki.client("erp-client");
    let lf = |pem: String| pem.replace("\r\n", "\n");
    let (ca, cert, key) = (lf(pki.ca_pem()), lf(cert), lf(key));

    browser.goto("/triggers/new").await;
    browser.fill("#t-name", "Secure ERP").await;
    browser.select("#t-event", "OrderChanged").await;
    browser.select("#t-shop", &shop.to_string()).await;
    browser.fill("#t-priority", "8").await;
    browser.click("#add-action").await;
    browser.fill("#a0-url", &server.url("/secure")).await;
    browser.click("#a0-unique").await;
    browser.click("#a0-general details.sub summary").await;
    for (field, pem) in [("a0-cert", &cert), ("a0-key", &key), ("a0-ca", &ca)] {
        browser
            .run(&format!(
                "document.getElementById('{field}').value = {}; return null",
                json!(pem)
            ))
            .await;
    }
    browser.click("#a0-tab-auth").await;
    browser.fill("#a0-user", "erp").await;
    browser.fill("#a0-pass", "pw-12345").await;
    browser.screenshots("editor-authentication-tab").await;
    // Send test presents the certificate: the receiver lets it in.
    browser.click("#a0-tab-payload").await;
    browser.click("#a0-payload [data-send-test]").await;
    browser.find("#a0-payload [data-test-status='200']").await;
    assert_eq!(server.requests(), vec!["/secure".to_owned()]);
    browser.click("#save-close").await;
    browser.wait_for_path("/triggers?").await;
    browser.wait_for_text(".notice", "Saved.").await;
    let trigger = get_trigger(&app, 1).await;
    let action = &trigger["actions"][0];
    assert_eq!(trigger["priority"], 8);
    assert_eq!(action["uniqueQueueItems"], true);
    assert_eq!(
        action["basicAuth"],
        json!({"username": "erp", "password": {"set": true}})
    );
    assert_eq!(action["clientCertificate"]["certPem"], cert.as_str());
    assert_eq!(action["clientCertificate"]["keyPem"], json!({"set": true}));
    assert!(action["clientCertificate"]["subject"]
        .as_str()
        .unwrap()
        .contains("erp-client"));
    assert_eq!(action["caPem"], ca.as_str());

    // Reopened, the certificate is described; queued calls present it too.
    browser.goto("/triggers/1").await;
    browser
        .wait_for_text("#a0-general details.sub summary", "erp-client")
        .await;
    browser.screenshots("editor-client-certificate").await;
    app.post_event(event("OrderChanged", shop, 5, json!({"OrderId": 5})))
        .await;
    wait_until(
        WAIT,
        "the event's call passed the certificate check",
        async || server.requests().len() == 2,
    )
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_action_is_reactivated_from_the_editor_and_from_its_alert() {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = Receiver::always(Reply::status(500)).await;
    let shop = app.create_shop("Main shop").await;
    let trigger = id(&app
        .create_trigger(json!({
            "name": "Fragile ERP", "eventType": "OrderChanged", "shopId": shop,
            "actions": [{"type": "callWebhook", "url": receiver.url("/erp"),
                         "retryPolicy": {"maxRetries": 0, "deactivateAfterFailures": 1}}]
        }))
        .await);
    let active = async || get_trigger(&app, trigger).await["actions"][0]["active"] == true;
    let down = async |app: &TestApp| {
        wait_until(WAIT, "the action is deactivated", async || {
            get_trigger(app, trigger).await["actions"][0]["active"] == false
        })
        .await;
    };
    app.post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1})))
        .await;
    down(&app).await;
    // While down, an event's call is skipped.
    app.post_event(event("OrderChanged", shop, 2, json!({"OrderId": 2})))
        .await;
    app.wait_for_queue_count("status=skipped", 1).await;
    receiver.set_default(Reply::status(200));

    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    browser.goto(&format!("/triggers/{trigger}")).await;
    browser
        .wait_for_text("[data-deactivated]", "deactivated")
        .await;
    browser.screenshots("editor-action-deactivated").await;
    // Reactivate, resending what failed or was skipped (checked by default).
    browser.click("#a0-reactivate").await;
    browser.wait_for_text(".notice", "reactivated").await;
    browser.wait_for_text(".notice", "queued again").await;
    assert!(active().await);
    assert_eq!(
        browser
            .run("return document.querySelectorAll('[data-deactivated]').length")
            .await,
        0
    );
    wait_until(WAIT, "the skipped call is delivered", async || {
        receiver
            .requests()
            .iter()
            .any(|r| r.json()["entityData"]["OrderId"] == 2)
    })
    .await;

    // Down again; this time from its alert, without resending.
    receiver.set_default(Reply::status(500));
    app.post_event(event("OrderChanged", shop, 3, json!({"OrderId": 3})))
        .await;
    down(&app).await;
    let before = receiver.count();
    browser.goto("/alerts").await;
    browser.find("form[data-reactivate]").await;
    browser.screenshots("alerts-action-deactivated").await;
    browser
        .click("form[data-reactivate] input[name=requeue_failed]")
        .await;
    browser.click("form[data-reactivate] button").await;
    browser.wait_for_path("/alerts").await;
    let notice = browser
        .wait_for_text(".notice", "reactivated")
        .await
        .text()
        .await
        .unwrap();
    assert!(!notice.contains("queued again"), "{notice}");
    assert!(active().await);
    assert_eq!(receiver.count(), before, "nothing was resent");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_a_read_only_editor_and_no_page_echoes_a_notice_from_the_link() {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let shop = app.create_shop("Main shop").await;
    let trigger = id(&app
        .create_trigger(json!({
            "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": shop,
            "actions": [{"type": "callWebhook", "url": receiver.url("/erp"),
                         "basicAuth": {"username": "erp", "password": "pw-12345"},
                         "hmacSecret": "generate",
                         "retryPolicy": {"maxRetries": 2, "retryOn4xx": [409]},
                         "payload": {"mimeType": "application/json", "body": "{\"id\": {{ entityId }}}"}}]
        }))
        .await);
    let password = add_user(&app, "viewer@example.com", "viewer", &[shop]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("viewer@example.com", &password).await;

    browser.goto(&format!("/triggers/{trigger}")).await;
    browser.wait_for_text("h1", "Orders to ERP").await;
    let editable = browser
        .run(
            "return [...document.querySelectorAll('#trigger-form input, #trigger-form select, #trigger-form textarea')]
                .filter((e) => !e.disabled).map((e) => e.id || e.name)",
        )
        .await;
    assert_eq!(editable, json!([]), "every input is read-only");
    assert_eq!(
        browser
            .run(
                "return document.querySelectorAll('#save, #save-close, #add-action, \
                 [data-remove-action], [data-send-test], [data-reveal]').length"
            )
            .await,
        0,
        "no buttons that change anything"
    );
    // The tabs still show every setting.
    browser.click("#a0-tab-auth").await;
    assert!(browser.find("#a0-user").await.is_displayed().await.unwrap());
    browser.screenshots("editor-viewer").await;

    // A notice in the link is not shown, nor is a flash cookie the server did not sign.
    for page in ["/queue", "/alerts", "/triggers"] {
        browser
            .goto(&format!(
                "{page}?notice=Your%20account%20is%20locked%3A%20call%20%2B1%20555%200100"
            ))
            .await;
        browser.find("h1").await;
        assert_eq!(
            browser
                .run("return document.querySelectorAll('.notice').length")
                .await,
            0,
            "{page} echoed the notice"
        );
        assert!(!browser.body_text().await.contains("account is locked"));
    }
    browser
        .run(&format!(
            "document.cookie = 'hookflow_flash={}.Forged+notice; path=/'; return null",
            "0".repeat(64)
        ))
        .await;
    browser.goto("/queue").await;
    browser.find("h1").await;
    assert!(!browser.body_text().await.contains("Forged"));
    browser.screenshots("queue-notice-not-echoed").await;
    // A known code is its fixed message.
    browser.goto("/queue?notice=saved").await;
    browser.wait_for_text(".notice", "Saved.").await;
    browser.close().await;
}

both_backends! {
    async fn a_generated_secret_is_answered_once_and_a_send_test_never_signs_with_a_throwaway(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main shop").await;
        let draft = |secret: Value, scheme: &str| json!({
            "name": "Signed", "eventType": "OrderChanged", "shopId": shop,
            "actions": [{"type": "callWebhook", "url": "https://erp.example.com/hook",
                         "hmacSecret": secret, "signatureScheme": scheme}]
        });
        // The save that generates it answers the secret, once.
        let (status, created) = app.post_json("/api/v1/triggers", draft(json!("generate"), "standardWebhooks")).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["actions"][0]["hmacSecret"]["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(reveal(&app, id(&created), 0).await, secret);
        assert_eq!(get_trigger(&app, id(&created)).await["actions"][0]["hmacSecret"], json!({"set": true}));
        // A send test cannot sign with a secret that does not exist yet.
        let answer = app.post_json("/api/v1/triggers/send-test",
            json!({"trigger": draft(json!("generate"), "standardWebhooks")})).await;
        let message = crate::common::assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.1["error"]["field"], "actions[0].hmacSecret");
        assert!(message.contains("will be saved"), "{message}");

        // A hub receiver's secret is taken as it is; an empty one, or a stored one that is not
        // a Standard Webhooks secret when switching to that scheme, is refused by name.
        let hub = app.create_trigger(draft(json!("It's a Secret to Everybody"), "hubSha256")).await;
        assert_eq!(reveal(&app, id(&hub), 0).await, "It's a Secret to Everybody");
        let mut switch = draft(json!({"set": true}), "standardWebhooks");
        switch["actions"][0].as_object_mut().unwrap().remove("hmacSecret");
        let answer = app.put_json(&format!("/api/v1/triggers/{}", id(&hub)), switch).await;
        let message = crate::common::assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.1["error"]["field"], "actions[0].hmacSecret");
        assert!(message.contains("stored secret"), "{message}");
        let rotated = draft(json!("a new receiver secret"), "hubSha256");
        let (status, answer) = app.put_json(&format!("/api/v1/triggers/{}", id(&hub)), rotated).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["actions"][0]["hmacSecret"], json!({"set": true}), "a hub rotation has no window");

        // Only callers who may write see a secret.
        let (_, token) = app.user_with_token("viewer@example.com", "viewer", &[shop]).await;
        let answer = app.request_as(Some(&token), reqwest::Method::POST,
            &format!("/api/v1/triggers/{}/actions/0/reveal-secret", id(&created)),
            Some(crate::common::RequestBody::Json(json!({})))).await;
        assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    }
}

//! Payload templates end to end: XML and text bodies delivered with their Content-Type and
//! surviving hostile values, save-time checks with line and column, merge fields, the default
//! payload's schema, previews, and URL and header templates.

use hookflow_templating::render::check_output;
use hookflow_templating::{MimeType, TemplateKind};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// Values that break documents whose templates escape naively.
const HOSTILE: &str =
    "q\"uo'te </x> ]]> <![CDATA[ & &amp; back\\slash\nnew line 🎉 ☃ ctl\u{1}\u{1b}";

/// What an XML document can carry of [`HOSTILE`]: forbidden control characters become U+FFFD.
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// The decoded text of the first `<tag>...</tag>` of a (checked, well-formed) document.
fn xml_text(doc: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = doc
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {doc}"))
        + open.len();
    let end = start + doc[start..].find(&format!("</{tag}>")).unwrap();
    let raw = &doc[start..end];
    let mut out = String::new();
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';').unwrap() + amp;
        let entity = &rest[amp + 1..semi];
        match entity {
            "amp" => out.push('&'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            num => {
                let code = match num.strip_prefix("#x") {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                    None => num[1..].parse().unwrap(),
                };
                out.push(char::from_u32(code).unwrap());
            }
        }
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    out
}

fn templated(url: &str, mime: &str, body: &str) -> Value {
    webhook_trigger("OrderChanged", url).with(json!({"actions": [{
        "type": "callWebhook", "url": url,
        "payload": {"mimeType": mime, "body": body}
    }]}))
}

both_backends! {
    async fn xml_and_text_payloads_are_delivered_with_their_content_type(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main <&> \"shop\"").await;
        app.create_trigger(templated(
            &receiver.url("/xml"),
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<order id=\"{{ entity.OrderId }}\" code=\"{{ entity.OrderCode }}\">\n  <code>{{ entity.OrderCode }}</code>\n  <shop>{{ shop.name }}</shop>\n  <missing>{{ entity.Nope }}{{ entity.Null }}</missing>\n  {% for line in entity.Lines %}<sku>{{ line.Sku }}</sku>{% endfor %}\n</order>\n",
        ))
        .await;
        app.create_trigger(templated(
            &receiver.url("/text"),
            "text/plain",
            "Order {{ entity.OrderCode }} in {{ shop.name }} [{{ entity.Nope }}{{ entity.Null }}]",
        ))
        .await;
        app.create_trigger(templated(
            &receiver.url("/json"),
            "application/json",
            "{\"code\": {{ entity.OrderCode }}, \"raw\": {{ entity.OrderCode | tojson }}, \"missing\": {{ entity.Nope }}, \"null\": {{ entity.Null }}, \"sku\": {{ entity.Lines[0].Sku }}}",
        ))
        .await;

        app.post_event(event("OrderChanged", shop, 7, json!({
            "OrderId": 7, "OrderCode": HOSTILE, "Null": null, "Lines": [{"Sku": "<a&b>"}]
        })))
        .await;
        let requests = receiver.wait_for_requests(3, WAIT).await;
        let by_path = |path: &str| requests.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("no request to {path}"));

        let xml = by_path("/xml");
        assert_eq!(xml.header("content-type"), Some("application/xml; charset=utf-8"));
        let doc = xml.text();
        check_output(TemplateKind::Payload(MimeType::Xml), &doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        assert_eq!(xml_text(&doc, "code"), xml_safe(HOSTILE));
        assert_eq!(xml_text(&doc, "shop"), "Main <&> \"shop\"");
        assert_eq!(xml_text(&doc, "missing"), "");
        assert_eq!(xml_text(&doc, "sku"), "<a&b>");

        let text = by_path("/text");
        assert_eq!(text.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(text.text(), format!("Order {HOSTILE} in Main <&> \"shop\" []"));

        let json = by_path("/json");
        assert_eq!(json.header("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(
            json.json(),
            json!({"code": HOSTILE, "raw": HOSTILE, "missing": null, "null": null, "sku": "<a&b>"})
        );
    }

    async fn broken_templates_are_refused_at_save_with_line_and_column(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = "http://127.0.0.1:9/hook";

        let answer = app
            .post_json("/api/v1/triggers", templated(url, "application/xml", "<order>\n  <code>{{ entity.OrderCode }}</cod>\n</order>"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("actions[0].payload.body: renders invalid application/xml"), "{message}");
        assert!(message.contains("line 2, column"), "{message}");
        assert!(message.contains("not well-formed XML"), "{message}");

        let answer = app
            .post_json("/api/v1/triggers", templated(url, "application/xml", "<a/>\n<b/>"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("line 2, column 1") && message.contains("second root"), "{message}");

        let answer = app
            .post_json("/api/v1/triggers", templated(url, "application/xml", "<a>\n  {% if entity.X %}\n</a>"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("does not compile") && message.contains("line "), "{message}");

        let answer = app
            .post_json("/api/v1/triggers", templated(url, "application/json", "{\n  \"a\": \"{{ entity.OrderCode }}\"\n}"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("line 2, column"), "{message}");
        assert!(message.contains("quotes included"), "{message}");

        let answer = app
            .post_json("/api/v1/triggers", templated(url, "application/json", "{\"a\": {{ entity.OrderId | nosuchfilter }}}"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("line 1, column") && message.contains("nosuchfilter"), "{message}");

        let answer = app
            .post_json(
                "/api/v1/triggers",
                webhook_trigger("OrderChanged", url).with(json!({"condition": "entity.OrderId is nosuchtest"})),
            )
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("condition:") && message.contains("line 1"), "{message}");

        // A runaway template is stopped while saving, too.
        let answer = app
            .post_json(
                "/api/v1/triggers",
                templated(url, "text/plain", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
            )
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("loops ran more than 100000 times"), "{message}");

        for (headers, expected) in [
            (json!({"Webhook-Signature": "x"}), "cannot be overridden"),
            (json!({"content-type": "text/csv"}), "cannot be overridden"),
            (json!({"Authorization": "Bearer {{ shop.id }}"}), "cannot be overridden"),
            (json!({"Bad Name": "x"}), "not a valid header name"),
            (json!({"X-Ok": "café"}), "visible ASCII"),
            (json!({"X-Ok": "{{ entity.OrderCode "}), "does not compile"),
        ] {
            let trigger = webhook_trigger("OrderChanged", url).with(json!({"actions": [{
                "type": "callWebhook", "url": url, "headers": headers
            }]}));
            let answer = app.post_json("/api/v1/triggers", trigger).await;
            let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(message.starts_with("actions[0].headers."), "{message}");
            assert!(message.contains(expected), "{headers}: {message}");
        }

        let answer = app
            .post_json("/api/v1/triggers", webhook_trigger("OrderChanged", "https://{{ entity.Host }}/hook"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("actions[0].url:") && message.contains("after the host"), "{message}");

        let (_, list) = app.get_json("/api/v1/triggers").await;
        assert_eq!(list["items"], json!([]), "nothing refused was stored");
    }

    async fn a_payload_invalid_for_real_data_fails_the_call_naming_the_line(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        // Valid for the sample (no Raw field), not for an entity whose Raw is not JSON.
        app.create_trigger(templated(
            &receiver.url("/hook"),
            "application/json",
            "{\n  \"raw\": {{ entity.Raw | default(\"1\") | safe }}\n}",
        ))
        .await;
        app.post_event(event("OrderChanged", shop, 1, json!({"Raw": "not json"}))).await;
        let item = app.only_item("status=failed").await;
        let error = item["lastError"].as_str().unwrap();
        assert!(error.contains("not valid JSON"), "{error}");
        assert!(error.contains("line 2, column"), "{error}");
        assert_eq!(item["body"], Value::Null);
        assert_eq!(receiver.count(), 0, "an invalid payload is never sent");
    }

    async fn merge_fields_are_listed_for_a_type_and_for_a_real_entity(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main").await;

        let (status, body) = app.get_json("/api/v1/event-types/ShipmentShipped/merge-fields").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["eventType"], "ShipmentShipped");
        let fields = body["fields"].as_array().unwrap();
        let field = |path: &str| fields.iter().find(|f| f["path"] == path).cloned().unwrap_or_else(|| panic!("no {path} in {body}"));
        assert_eq!(field("entity.TrackingCode")["type"], "string");
        assert!(field("entity.ParcelId")["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(field("entityData.OrderId")["type"], "integer");
        for path in ["event.id", "event.type", "event.occurredAt", "event.entityId", "entityId", "shop.id", "shop.name"] {
            field(path);
        }
        assert!(fields.iter().all(|f| f.get("value").is_none()));

        app.post_event(event("OrderChanged", shop, "ORD-9", json!({
            "OrderId": 9, "OrderCode": "ORD-9",
            "Lines": [{"Sku": "A-1", "Qty": 2}, {"Sku": "B-2", "Tags": ["x"]}],
            "Customer": {"Name": "Zoë"}
        })))
        .await;
        let path = format!("/api/v1/event-types/OrderChanged/merge-fields?shopId={shop}&entityId=ORD-9");
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["entityId"], "ORD-9");
        let fields = body["fields"].as_array().unwrap();
        let value = |path: &str| fields.iter().find(|f| f["path"] == path).map(|f| f["value"].clone()).unwrap_or_else(|| panic!("no {path} in {body}"));
        assert_eq!(value("entity.Lines[0].Sku"), "A-1");
        assert_eq!(value("entity.Lines[0].Qty"), 2);
        assert_eq!(value("entity.Lines[1].Tags[0]"), "x");
        assert_eq!(value("entity.Customer.Name"), "Zoë");
        assert_eq!(value("entityData.OrderId"), 9);
        assert_eq!(value("shop.name"), "Main");
        assert_eq!(value("entityId"), "ORD-9");
        assert!(value("event.id").is_i64());

        let answer = app
            .get_json(&format!("/api/v1/event-types/OrderChanged/merge-fields?shopId={shop}&entityId=nope"))
            .await;
        let message = assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
        assert!(message.contains("nope"), "{message}");
        let answer = app.get_json("/api/v1/event-types/OrderTeleported/merge-fields").await;
        let message = assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
        assert!(message.contains("OrderTeleported"), "{message}");
        let answer = app.get_json("/api/v1/event-types/OrderChanged/merge-fields?entityId=1").await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    }

    async fn the_schema_describes_the_default_payload(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let (status, schema) = app.get_json("/api/v1/event-types/ShipmentShipped/schema").await;
        assert_eq!(status, StatusCode::OK, "{schema}");
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert!(schema["$id"].as_str().is_some_and(|id| id.contains("ShipmentShipped")));
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], json!(["eventId", "eventType", "shopId", "occurredAt", "entityData"]));
        assert_eq!(schema["properties"]["eventType"]["const"], "ShipmentShipped");
        let data = &schema["properties"]["entityData"];
        assert_eq!(data["additionalProperties"], false);
        assert_eq!(data["properties"]["ParcelId"]["type"], json!(["integer", "null"]));
        assert_eq!(data["properties"]["TrackingCode"]["type"], json!(["string", "null"]));

        // A real default payload fits it: same keys, each value of its declared types.
        app.create_trigger(webhook_trigger("ShipmentShipped", &receiver.url("/hook"))).await;
        app.post_event(event("ShipmentShipped", shop, 5, json!({"ParcelId": "5", "TrackingCode": 123, "Extra": {"x": 1}}))).await;
        let payload = receiver.wait_for_requests(1, WAIT).await[0].json();
        let top: Vec<&String> = payload.as_object().unwrap().keys().collect();
        let mut expected: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        expected.sort();
        let mut top = top;
        top.sort();
        assert_eq!(top, expected);
        let props = data["properties"].as_object().unwrap();
        let entity_data = payload["entityData"].as_object().unwrap();
        assert_eq!(entity_data.len(), props.len(), "{payload}");
        for (name, value) in entity_data {
            let types = props[name]["type"].as_array().unwrap();
            let kind = match value {
                Value::Null => "null",
                Value::Number(n) if n.is_i64() => "integer",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                _ => "other",
            };
            assert!(types.iter().any(|t| t == kind), "{name}: {value} is not {types:?}");
        }
        assert_eq!(payload["entityData"]["ParcelId"], 5);
        assert_eq!(payload["entityData"]["TrackingCode"], "123");

        let answer = app.get_json("/api/v1/event-types/Nope/schema").await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
    }

    async fn previews_render_against_the_sample_a_given_or_a_stored_entity(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main").await;
        let app = &app;
        let preview = |body: Value| async move {
            app.post_json("/api/v1/payloads/preview", body).await
        };
        let xml = "<o code=\"{{ entity.OrderCode }}\">{{ shop.name }}</o>";

        let (status, body) = preview(json!({"eventType": "OrderChanged", "mimeType": "application/xml", "body": xml})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({
            "mimeType": "application/xml",
            "contentType": "application/xml; charset=utf-8",
            "body": "<o code=\"OrderCode-1001\">Sample shop</o>"
        }));

        let (status, body) = preview(json!({
            "eventType": "OrderChanged", "mimeType": "application/json",
            "body": "{\"c\": {{ entity.OrderCode }}, \"n\": {{ entity.Lines | length }}}",
            "entity": {"OrderCode": "A\"B", "Lines": [1, 2, 3]}
        })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["body"], "{\"c\": \"A\\\"B\", \"n\": 3}");
        assert_eq!(body["contentType"], "application/json; charset=utf-8");

        app.post_event(event("OrderChanged", shop, 31, json!({"OrderCode": "<stored>"}))).await;
        let (status, body) = preview(json!({
            "eventType": "OrderChanged", "mimeType": "application/xml", "body": xml,
            "shopId": shop, "entityId": 31
        })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["body"], "<o code=\"&lt;stored&gt;\">Main</o>");

        let (status, body) = preview(json!({
            "eventType": "OrderChanged", "mimeType": "text/plain", "body": "{{ entityId }} {{ event.id }}",
            "shopId": shop, "entityId": "32"
        })).await;
        let message = assert_error(&(status, body), StatusCode::NOT_FOUND, "not_found");
        assert!(message.contains("32"), "{message}");

        let answer = preview(json!({
            "eventType": "OrderChanged", "mimeType": "application/xml", "body": "<a>\n<b></a>"
        })).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("body: line 2, column"), "{message}");

        let answer = preview(json!({"eventType": "Nope", "mimeType": "text/plain", "body": ""})).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type");
        let answer = preview(json!({"eventType": "OrderChanged", "mimeType": "image/png", "body": ""})).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    }

    async fn urls_and_headers_take_merge_fields(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let base = receiver.url("");
        app.create_trigger(webhook_trigger("OrderChanged", &base).with(json!({"actions": [{
            "type": "callWebhook",
            "url": format!("{base}/shops/{{{{ shop.id }}}}/orders/{{{{ entity.OrderCode }}}}?q={{{{ entity.Query }}}}"),
            "headers": {"X-Order": "{{ entity.OrderCode }}", "X-Note": "note: {{ entity.Note }}", "X-Static": "v1"}
        }]}))).await;
        app.create_trigger(webhook_trigger("OrderChanged", &format!("{base}/plain")).with(json!({"actions": [{
            "type": "callWebhook", "url": format!("{base}/plain"), "method": "GET"
        }]}))).await;
        app.create_trigger(webhook_trigger("OrderChanged", &base).with(json!({"actions": [{
            "type": "callWebhook", "url": format!("{base}/get/{{{{ entityId }}}}/detail"), "method": "GET"
        }]}))).await;

        app.post_event(event("OrderChanged", shop, "7/8", json!({
            "OrderCode": "A B/C", "Query": "x&y=z", "Note": "multi\r\nX-Injected: 1 é"
        }))).await;
        let requests = receiver.wait_for_requests(3, WAIT).await;
        let find = |prefix: &str| requests.iter().find(|r| r.path.starts_with(prefix)).unwrap_or_else(|| panic!("no request to {prefix}: {requests:?}"));

        let templated = find("/shops/");
        assert_eq!(templated.path, format!("/shops/{shop}/orders/A%20B%2FC?q=x%26y%3Dz"));
        assert_eq!(templated.header("x-order"), Some("A B/C"));
        assert_eq!(templated.header("x-note"), Some("note: multi  X-Injected: 1 %C3%A9"));
        assert_eq!(templated.header("x-static"), Some("v1"));
        assert!(templated.header("x-injected").is_none());
        assert!(templated.header("webhook-id").is_some());

        assert_eq!(find("/plain").path, "/plain/7%2F8");
        assert_eq!(find("/plain").method, "GET");
        assert_eq!(find("/get/").path, "/get/7%2F8/detail");

        // The trigger reads back with its headers.
        let (_, list) = app.get_json("/api/v1/triggers").await;
        let with_headers = list["items"].as_array().unwrap().iter().find(|t| t["actions"][0]["headers"].is_object()).cloned().unwrap();
        assert_eq!(with_headers["actions"][0]["headers"]["X-Static"], "v1");
    }
}

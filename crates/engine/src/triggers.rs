//! Compiled triggers: the in-memory form of every enabled trigger, and the [`Planner`] that
//! turns an event into the calls to queue.
//!
//! The set is rebuilt from storage whenever a trigger changes and swapped in whole, so the hot
//! ingest path reads it without locks held across awaits and without compiling anything.

use std::collections::HashMap;
use std::sync::Arc;

use hookflow_templating::render::{EventFields, ShopFields};
use hookflow_templating::ContextValue as CtxValue;
use hookflow_templating::{
    default_payload, entity_data, Catalog, MimeType, RenderContext, TemplateError, TemplateSet,
};
use tracing::warn;

use crate::model::{Action, CallStatus, Method, NewCall, ShopId, Trigger, TriggerId};
use crate::store::{PlannedEvent, Planner};

/// A Call Webhook action, ready to render.
struct CompiledAction {
    index: i32,
    method: Method,
    url: String,
    /// Mime type of the template, if the action has one (kept in the set under `key`).
    template: Option<MimeType>,
    key: String,
}

struct CompiledTrigger {
    id: TriggerId,
    /// `None` = every shop.
    shop_id: Option<ShopId>,
    priority: i32,
    condition_key: Option<String>,
    actions: Vec<CompiledAction>,
}

/// Every enabled trigger, compiled and indexed by event type.
pub struct CompiledTriggers {
    templates: TemplateSet,
    by_type: HashMap<String, Vec<CompiledTrigger>>,
    catalog: Arc<Catalog>,
    max_attempts: i32,
}

impl CompiledTriggers {
    /// Compiles the enabled triggers. A trigger that no longer compiles (it was validated when
    /// saved, so only a changed engine could cause this) is logged and left out.
    pub fn build(
        triggers: &[Trigger],
        catalog: Arc<Catalog>,
        max_attempts: i32,
    ) -> CompiledTriggers {
        let mut templates = TemplateSet::new();
        let mut by_type: HashMap<String, Vec<CompiledTrigger>> = HashMap::new();
        for trigger in triggers.iter().filter(|t| t.draft.enabled) {
            match compile(&mut templates, trigger) {
                Ok(compiled) => by_type
                    .entry(trigger.draft.event_type.clone())
                    .or_default()
                    .push(compiled),
                Err(err) => {
                    warn!(trigger_id = %trigger.id, error = %err, "trigger does not compile; skipped")
                }
            }
        }
        // Highest priority first, so calls are queued in the order they should run.
        for list in by_type.values_mut() {
            list.sort_by_key(|t| (-t.priority, t.id));
        }
        CompiledTriggers {
            templates,
            by_type,
            catalog,
            max_attempts,
        }
    }

    pub fn templates(&self) -> &TemplateSet {
        &self.templates
    }
}

fn compile(
    templates: &mut TemplateSet,
    trigger: &Trigger,
) -> Result<CompiledTrigger, TemplateError> {
    let condition_key = match trigger.draft.condition.as_deref().map(str::trim) {
        Some(cond) if !cond.is_empty() => {
            let key = format!("t{}", trigger.id);
            templates.add_condition(&key, cond)?;
            Some(key)
        }
        _ => None,
    };
    let mut actions = Vec::with_capacity(trigger.draft.actions.len());
    for (index, action) in trigger.draft.actions.iter().enumerate() {
        let Action::CallWebhook(call) = action;
        let key = format!("t{}a{index}", trigger.id);
        let template = match &call.payload {
            Some(p) if call.method == Method::Post => {
                templates.add_payload(&key, p.mime_type, &p.body)?;
                Some(p.mime_type)
            }
            _ => None,
        };
        actions.push(CompiledAction {
            index: index as i32,
            method: call.method,
            url: call.url.clone(),
            template,
            key,
        });
    }
    Ok(CompiledTrigger {
        id: trigger.id,
        shop_id: trigger.draft.shop_id,
        priority: trigger.draft.priority,
        condition_key,
        actions,
    })
}

impl Planner for CompiledTriggers {
    fn plan(&self, planned: &PlannedEvent<'_>, out: &mut Vec<NewCall>) {
        let event = planned.event;
        let Some(candidates) = self.by_type.get(&event.event_type) else {
            return;
        };
        let Some(event_type) = self.catalog.get(&event.event_type) else {
            return;
        };
        let occurred_at = event.occurred_at.to_rfc3339();
        // The merge-field context is built at most once per event, and only if needed.
        let mut ctx: Option<CtxValue> = None;
        let context = |ctx: &mut Option<CtxValue>| -> CtxValue {
            ctx.get_or_insert_with(|| {
                let entity = serde_json::Value::Object(event.entity.clone());
                let data = entity_data(event_type, &event.entity);
                RenderContext {
                    event: EventFields {
                        id: planned.id.0,
                        event_type: &event.event_type,
                        occurred_at: &occurred_at,
                        entity_id: &event.entity_id,
                    },
                    shop: ShopFields {
                        id: planned.shop.id.0,
                        name: &planned.shop.name,
                    },
                    entity: &entity,
                    entity_data: &data,
                    entity_id: &event.entity_id,
                }
                .to_value()
            })
            .clone()
        };
        let mut default_body: Option<String> = None;
        for trigger in candidates {
            if trigger.shop_id.is_some_and(|s| s != event.shop_id) {
                continue;
            }
            if let Some(key) = &trigger.condition_key {
                match self.templates.condition_holds(key, &context(&mut ctx)) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(err) => {
                        warn!(trigger_id = %trigger.id, event_id = %planned.id, error = %err, "condition failed to evaluate; trigger not fired");
                        continue;
                    }
                }
            }
            for action in &trigger.actions {
                let mut call = NewCall {
                    webhook_id: new_webhook_id(),
                    event_id: planned.id,
                    trigger_id: trigger.id,
                    action_index: action.index,
                    shop_id: event.shop_id,
                    event_type: event.event_type.clone(),
                    entity_id: event.entity_id.clone(),
                    method: action.method,
                    url: action.url.clone(),
                    headers: Vec::new(),
                    body: None,
                    priority: trigger.priority,
                    status: CallStatus::Pending,
                    max_attempts: self.max_attempts,
                    last_error: None,
                };
                match action.method {
                    Method::Get => call.url = get_url(&action.url, &event.entity_id),
                    Method::Post => {
                        let rendered = match action.template {
                            Some(mime) => self
                                .templates
                                .render_payload(&action.key, mime, &context(&mut ctx))
                                .map(|body| (mime, body)),
                            None => Ok((
                                MimeType::Json,
                                default_body
                                    .get_or_insert_with(|| {
                                        default_payload(
                                            planned.id.0,
                                            event_type,
                                            event.shop_id.0,
                                            &occurred_at,
                                            &event.entity,
                                        )
                                    })
                                    .clone(),
                            )),
                        };
                        match rendered {
                            Ok((mime, body)) => {
                                call.headers
                                    .push(("content-type".into(), mime.content_type().into()));
                                call.body = Some(body);
                            }
                            Err(err) => {
                                // Never send a payload that is not what the receiver was promised.
                                call.status = CallStatus::Failed;
                                call.last_error =
                                    Some(format!("payload could not be rendered: {err}"));
                            }
                        }
                    }
                }
                out.push(call);
            }
        }
    }
}

/// A Standard Webhooks message id: stable across the retries of one call.
fn new_webhook_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// The URL of a GET call: the entity id goes where the URL says `{{ entityId }}`, or is
/// appended as a last path segment.
pub fn get_url(url: &str, entity_id: &str) -> String {
    let encoded = encode_segment(entity_id);
    if let Some(replaced) = replace_placeholder(url, &encoded) {
        return replaced;
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if let Ok(mut segments) = parsed.path_segments_mut() {
                segments.pop_if_empty().push(entity_id);
            }
            parsed.to_string()
        }
        Err(_) => format!("{}/{encoded}", url.trim_end_matches('/')),
    }
}

fn replace_placeholder(url: &str, value: &str) -> Option<String> {
    let mut out = String::with_capacity(url.len() + value.len());
    let mut rest = url;
    let mut found = false;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        if inner == "entityId" {
            out.push_str(value);
            found = true;
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    found.then_some(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        CallWebhook, EventId, NewEvent, PayloadTemplate, Shop, Timestamp, TriggerDraft,
    };
    use serde_json::json;

    fn trigger(
        id: i64,
        shop: Option<i64>,
        condition: Option<&str>,
        action: CallWebhook,
    ) -> Trigger {
        Trigger {
            id: TriggerId(id),
            draft: TriggerDraft {
                name: format!("t{id}"),
                event_type: "OrderChanged".into(),
                shop_id: shop.map(ShopId),
                enabled: true,
                priority: id as i32,
                condition: condition.map(Into::into),
                actions: vec![Action::CallWebhook(action)],
            },
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn post(url: &str) -> CallWebhook {
        CallWebhook {
            url: url.into(),
            method: Method::Post,
            payload: None,
        }
    }

    fn plan(triggers: &[Trigger], entity: serde_json::Value) -> Vec<NewCall> {
        let catalog = Arc::new(Catalog::builtin().unwrap());
        let set = CompiledTriggers::build(triggers, catalog, 11);
        let event = NewEvent {
            event_type: "OrderChanged".into(),
            shop_id: ShopId(1),
            entity_id: "77".into(),
            entity: entity.as_object().unwrap().clone(),
            occurred_at: Timestamp(0),
            idempotency_key: None,
        };
        let shop = Shop {
            id: ShopId(1),
            name: "Main".into(),
            created_at: Timestamp(0),
        };
        let mut out = Vec::new();
        set.plan(
            &PlannedEvent {
                id: EventId(9),
                event: &event,
                shop: &shop,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn matching_respects_shop_condition_and_priority() {
        let triggers = [
            trigger(1, Some(1), None, post("http://a/")),
            trigger(2, Some(2), None, post("http://b/")),
            trigger(
                3,
                None,
                Some("entity.Status == 'Shipped'"),
                post("http://c/"),
            ),
            trigger(4, None, Some("entity.Total > 100"), post("http://d/")),
        ];
        let calls = plan(
            &triggers,
            json!({"OrderId": 77, "Status": "Shipped", "Total": 5}),
        );
        let urls: Vec<_> = calls.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(urls, ["http://c/", "http://a/"]);
        assert_eq!(calls[0].priority, 3);
        assert_ne!(calls[0].webhook_id, calls[1].webhook_id);
        assert!(calls[0].webhook_id.starts_with("msg_"));
    }

    #[test]
    fn default_and_templated_payloads_are_rendered() {
        let mut templated = post("http://t/");
        templated.payload = Some(PayloadTemplate {
            mime_type: MimeType::Json,
            body: r#"{"order": {{ entity.OrderCode }}, "shop": {{ shop.name }}, "event": {{ event.id }}}"#.into(),
        });
        let calls = plan(
            &[
                trigger(1, None, None, post("http://d/")),
                trigger(2, None, None, templated),
            ],
            json!({"OrderId": 77, "OrderCode": "O-77"}),
        );
        let templated: serde_json::Value =
            serde_json::from_str(calls[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(
            templated,
            json!({"order": "O-77", "shop": "Main", "event": 9})
        );
        let default: serde_json::Value =
            serde_json::from_str(calls[1].body.as_deref().unwrap()).unwrap();
        assert_eq!(
            default["entityData"],
            json!({"OrderId": 77, "OrderCode": "O-77"})
        );
        assert_eq!(
            calls[1].headers,
            [(
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string()
            )]
        );
    }

    #[test]
    fn a_payload_that_renders_invalid_fails_the_call_instead_of_sending_it() {
        let mut broken = post("http://t/");
        broken.payload = Some(PayloadTemplate {
            mime_type: MimeType::Json,
            body: "{\"a\": {{ entity.A | safe }}}".into(),
        });
        let calls = plan(&[trigger(1, None, None, broken)], json!({"A": "not json"}));
        assert_eq!(calls[0].status, CallStatus::Failed);
        assert!(calls[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("not valid JSON"));
        assert!(calls[0].body.is_none());
    }

    #[test]
    fn get_calls_carry_the_entity_id_in_the_url() {
        assert_eq!(get_url("http://h/orders", "7 a"), "http://h/orders/7%20a");
        assert_eq!(get_url("http://h/orders/", "7"), "http://h/orders/7");
        assert_eq!(get_url("http://h/orders?x=1", "7"), "http://h/orders/7?x=1");
        assert_eq!(
            get_url("http://h/o/{{ entityId }}/detail", "a/b"),
            "http://h/o/a%2Fb/detail"
        );
        let get = CallWebhook {
            url: "http://g/items".into(),
            method: Method::Get,
            payload: None,
        };
        let calls = plan(&[trigger(1, None, None, get)], json!({}));
        assert_eq!(calls[0].url, "http://g/items/77");
        assert!(calls[0].body.is_none());
    }
}

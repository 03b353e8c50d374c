//! Compiled triggers: the in-memory form of every enabled trigger, and the [`Planner`] that
//! turns an event into the calls to queue.
//!
//! The set is rebuilt from storage whenever a trigger changes and swapped in whole, so the hot
//! ingest path reads it without locks held across awaits and without compiling anything: every
//! condition and template (payload body, URL, header values) is compiled once per trigger
//! version, here. An action's URL and header values are templates only when they hold template
//! tags; plain ones are used as they are.
//!
//! [`check_action`] is the save-time twin of [`compile`]: it checks everything about an action
//! that can be checked before an event arrives, against the event type's sample context.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hookflow_templating::rules::{CompiledRule, Subject, TraceStep};
use hookflow_templating::{
    default_payload, Catalog, ConditionId, ContextValue, EventType, MimeType, RenderContext,
    TemplateError, TemplateErrorKind, TemplateId, TemplateKind, TemplateSet,
};
use tracing::warn;

use crate::model::Timestamp;
use crate::model::{
    Action, ActionRef, CallStatus, CallWebhook, Method, NewCall, ShopId, Trigger, TriggerId,
};
use crate::policy::ActionPolicy;
use crate::retry::RetryPolicy;
use crate::service::check_url;
use crate::store::{Evaluation, PlannedEvent, Planner};

/// Headers an action may not set: hookflow's own (message id, timestamp, signatures), the
/// payload's type, credentials (set through the action's authentication settings) and HTTP
/// framing.
pub const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
    "content-type",
    "authorization",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
];
/// Most custom headers one action may send.
pub const MAX_HEADERS: usize = 20;

/// A URL or header value: as written, or a template to render per event.
enum Text {
    Literal(String),
    Template(TemplateId),
}

/// A Call Webhook action, ready to render.
struct CompiledAction {
    index: u16,
    method: Method,
    url: Text,
    /// The URL as written, kept on a call whose URL could not be rendered.
    url_source: String,
    /// The payload template of a POST with one (otherwise the default payload is sent).
    body: Option<TemplateId>,
    /// Lower-case names.
    headers: Vec<(String, Text)>,
    unique: bool,
    ordered: bool,
    /// `host:port` when the URL is not a template (it is the same for every call).
    host: Option<String>,
    /// From the action's retry policy.
    max_attempts: i32,
    /// Deactivated (by its policy or an admin): its calls are recorded as skipped.
    deactivated: bool,
}

impl CompiledAction {
    fn needs_context(&self) -> bool {
        matches!(self.url, Text::Template(_))
            || self.body.is_some()
            || self
                .headers
                .iter()
                .any(|(_, v)| matches!(v, Text::Template(_)))
    }
}

struct CompiledTrigger {
    id: TriggerId,
    /// `None` = every shop.
    shop_id: Option<ShopId>,
    priority: i32,
    condition: Option<ConditionId>,
    /// Checked against the event type and compiled when the set is built.
    rule: Option<CompiledRule>,
    actions: Vec<CompiledAction>,
}

/// The enabled triggers of one event type.
struct TypeTriggers {
    event_type: Arc<EventType>,
    triggers: Vec<CompiledTrigger>,
}

/// Every enabled trigger, compiled and indexed by event type.
pub struct CompiledTriggers {
    templates: TemplateSet,
    by_type: HashMap<String, TypeTriggers>,
    /// The trigger generation these were loaded at (`None`: not from the store).
    generation: Option<i64>,
    /// Whether planning reports each trigger's evaluation (its activity).
    record_activity: bool,
    /// What decided an evaluation by a condition, shared by every such evaluation.
    condition_label: Arc<str>,
}

impl CompiledTriggers {
    /// Compiles the enabled triggers. A trigger that no longer compiles (it was validated when
    /// saved, so only a changed engine could cause this) is logged and left out.
    pub fn build(
        triggers: &[Trigger],
        catalog: Arc<Catalog>,
        retry_defaults: RetryPolicy,
        deactivated: &[(ActionRef, Timestamp)],
    ) -> CompiledTriggers {
        let deactivated: HashSet<ActionRef> = deactivated.iter().map(|(a, _)| *a).collect();
        let mut templates = TemplateSet::new();
        let mut by_type: HashMap<String, TypeTriggers> = HashMap::new();
        for trigger in triggers.iter().filter(|t| t.draft.enabled) {
            let Some(event_type) = catalog.shared(&trigger.draft.event_type) else {
                warn!(trigger_id = %trigger.id, event_type = %trigger.draft.event_type, "trigger for an event type the catalog no longer has; skipped");
                continue;
            };
            match compile(
                &mut templates,
                trigger,
                retry_defaults,
                &deactivated,
                &event_type,
            ) {
                Ok(compiled) => by_type
                    .entry(trigger.draft.event_type.clone())
                    .or_insert_with(|| TypeTriggers {
                        event_type,
                        triggers: Vec::new(),
                    })
                    .triggers
                    .push(compiled),
                Err(err) => {
                    warn!(trigger_id = %trigger.id, error = %err, "trigger does not compile; skipped")
                }
            }
        }
        // Highest priority first, so calls are queued in the order they should run.
        for list in by_type.values_mut() {
            list.triggers.sort_by_key(|t| (-t.priority, t.id));
        }
        CompiledTriggers {
            templates,
            by_type,
            generation: None,
            record_activity: true,
            condition_label: Arc::from("condition"),
        }
    }

    /// Whether planning reports evaluations (on by default).
    pub fn recording_activity(mut self, record: bool) -> CompiledTriggers {
        self.record_activity = record;
        self
    }

    /// Marks these as loaded at `generation`: ingest then commits only while it is current.
    pub fn at_generation(mut self, generation: i64) -> CompiledTriggers {
        self.generation = Some(generation);
        self
    }

    pub fn generation(&self) -> Option<i64> {
        self.generation
    }

    pub fn templates(&self) -> &TemplateSet {
        &self.templates
    }
}

/// Whether `text` holds template tags (`{{ }}`, `{% %}` or `{# #}`).
pub fn has_tags(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

fn compile_text(
    templates: &mut TemplateSet,
    key: &str,
    kind: TemplateKind,
    source: &str,
) -> Result<Text, TemplateError> {
    if has_tags(source) {
        Ok(Text::Template(templates.add(key, kind, source)?))
    } else {
        Ok(Text::Literal(source.to_owned()))
    }
}

fn compile(
    templates: &mut TemplateSet,
    trigger: &Trigger,
    retry_defaults: RetryPolicy,
    deactivated: &HashSet<ActionRef>,
    event_type: &EventType,
) -> Result<CompiledTrigger, String> {
    let default_template = event_type.payload_template.as_deref();
    let condition = match trigger.draft.condition.as_deref().map(str::trim) {
        Some(cond) if !cond.is_empty() => Some(
            templates
                .add_condition(&format!("t{}", trigger.id), cond)
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    let rule = match &trigger.draft.rules {
        Some(rule) => Some(rule.check(event_type, "rules").map_err(|e| e.to_string())?),
        None => None,
    };
    compile_actions(
        templates,
        trigger,
        retry_defaults,
        deactivated,
        default_template,
    )
    .map_err(|e| e.to_string())
    .map(|actions| CompiledTrigger {
        id: trigger.id,
        shop_id: trigger.draft.shop_id,
        priority: trigger.draft.priority,
        condition,
        rule,
        actions,
    })
}

fn compile_actions(
    templates: &mut TemplateSet,
    trigger: &Trigger,
    retry_defaults: RetryPolicy,
    deactivated: &HashSet<ActionRef>,
    default_template: Option<&str>,
) -> Result<Vec<CompiledAction>, TemplateError> {
    let mut actions = Vec::with_capacity(trigger.draft.actions.len());
    for (index, action) in trigger.draft.actions.iter().enumerate() {
        let Action::CallWebhook(call) = action;
        let key = format!("t{}a{index}", trigger.id);
        let body = match &call.payload {
            Some(p) if call.method == Method::Post => {
                Some(templates.add(&key, TemplateKind::Payload(p.mime_type), &p.body)?)
            }
            // A custom event type's default payload template stands in for the built-in one.
            None if call.method == Method::Post => match default_template {
                Some(body) => Some(templates.add(
                    &format!("{key}d"),
                    TemplateKind::Payload(MimeType::Json),
                    body,
                )?),
                None => None,
            },
            _ => None,
        };
        let url = compile_text(templates, &format!("{key}u"), TemplateKind::Url, &call.url)?;
        let host = match &url {
            Text::Literal(literal) => Some(target_host(literal)),
            Text::Template(_) => None,
        };
        let mut headers = Vec::with_capacity(call.headers.len());
        for (i, (name, value)) in call.headers.iter().enumerate() {
            let value = compile_text(
                templates,
                &format!("{key}h{i}"),
                TemplateKind::Header,
                value,
            )?;
            headers.push((name.to_ascii_lowercase(), value));
        }
        actions.push(CompiledAction {
            // A position in a list of at most 20 actions.
            index: index as u16,
            method: call.method,
            url,
            url_source: call.url.clone(),
            host,
            body,
            headers,
            unique: call.unique_queue_items,
            ordered: call.ordered,
            max_attempts: ActionPolicy::resolve(call.retry_policy.as_ref(), retry_defaults)
                .retry
                .max_attempts(),
            deactivated: deactivated.contains(&ActionRef::new(trigger.id, index as u16)),
        });
    }
    Ok(actions)
}

impl Planner for CompiledTriggers {
    fn generation(&self) -> Option<i64> {
        self.generation
    }

    fn plan(
        &self,
        planned: &PlannedEvent<'_>,
        out: &mut Vec<NewCall>,
        evaluations: &mut Vec<Evaluation>,
    ) {
        let Some(TypeTriggers {
            event_type,
            triggers: candidates,
        }) = self.by_type.get(&planned.event.event_type)
        else {
            return;
        };
        let mut shared = EventRender::new(planned, event_type);
        for trigger in candidates {
            // A trigger for another shop is not evaluated for this event.
            if trigger.shop_id.is_some_and(|s| s != planned.event.shop_id) {
                continue;
            }
            let (matched, decided_by) = self.evaluate(trigger, &mut shared);
            if self.record_activity {
                evaluations.push(Evaluation {
                    event_id: planned.id,
                    trigger_id: trigger.id,
                    matched,
                    decided_by,
                });
            }
            if matched {
                for action in &trigger.actions {
                    out.push(self.plan_call(trigger, action, &mut shared));
                }
            }
        }
    }
}

/// What the calls planned for one event share, each part made at most once per event and only
/// when a condition or a template needs it.
struct EventRender<'a> {
    planned: &'a PlannedEvent<'a>,
    event_type: &'a Arc<EventType>,
    /// When the event occurred, in RFC 3339 as templates and the default payload show it.
    occurred_at: String,
    /// The merge-field context. It is lazy: entity fields convert only when a template reads
    /// them.
    context: Option<ContextValue>,
    /// The catalog's default payload, for actions without a body template of their own.
    default_body: Option<String>,
}

impl<'a> EventRender<'a> {
    fn new(planned: &'a PlannedEvent<'a>, event_type: &'a Arc<EventType>) -> Self {
        EventRender {
            planned,
            event_type,
            occurred_at: planned.event.occurred_at.to_rfc3339(),
            context: None,
            default_body: None,
        }
    }

    fn context(&mut self) -> ContextValue {
        let (planned, event) = (self.planned, self.planned.event);
        self.context
            .get_or_insert_with(|| {
                RenderContext {
                    event_id: planned.id.0,
                    event_type: self.event_type.clone(),
                    occurred_at: self.occurred_at.clone(),
                    entity_id: event.entity_id.clone(),
                    shop_id: planned.shop.id.0,
                    shop_name: planned.shop.name.clone(),
                    entity: Arc::new(event.entity.clone()),
                    previous: event.previous.clone().map(Arc::new),
                }
                .into_value()
            })
            .clone()
    }

    /// What a rule reads: the event as it came, nothing converted.
    fn subject(&self) -> Subject<'_> {
        let (planned, event) = (self.planned, self.planned.event);
        Subject {
            entity: &event.entity,
            previous: event.previous.as_ref(),
            event_id: planned.id.0,
            event_type: &event.event_type,
            occurred_at: &self.occurred_at,
            entity_id: &event.entity_id,
            shop_id: planned.shop.id.0,
            shop_name: &planned.shop.name,
        }
    }

    fn default_body(&mut self) -> String {
        let (planned, event) = (self.planned, self.planned.event);
        self.default_body
            .get_or_insert_with(|| {
                default_payload(
                    planned.id.0,
                    self.event_type,
                    event.shop_id.0,
                    &self.occurred_at,
                    &event.entity,
                )
            })
            .clone()
    }
}

impl CompiledTriggers {
    /// Whether a trigger of the event's shop fires for the event (its rule or condition
    /// holds), and what decided. A condition that fails to evaluate does not fire.
    fn evaluate(
        &self,
        trigger: &CompiledTrigger,
        shared: &mut EventRender<'_>,
    ) -> (bool, Option<Arc<str>>) {
        if let Some(rule) = &trigger.rule {
            let (matched, decided) = rule.matches_decided(&shared.subject());
            return (matched, rule.decided_by(decided));
        }
        let Some(condition) = &trigger.condition else {
            return (true, None);
        };
        let holds = match self.templates.condition_holds(condition, &shared.context()) {
            Ok(holds) => holds,
            Err(err) => {
                warn!(trigger_id = %trigger.id, event_id = %shared.planned.id, error = %err, "condition failed to evaluate; trigger not fired");
                false
            }
        };
        (holds, Some(self.condition_label.clone()))
    }

    /// How `trigger`'s rule or condition (its source: `condition`) came to its verdict for
    /// the event, with the compiled rule or condition ingest uses: every rule clause with the
    /// value it saw, or one step for the expression. Empty for a trigger without either, or
    /// not among these.
    pub fn trace(
        &self,
        trigger: TriggerId,
        planned: &PlannedEvent<'_>,
        condition: Option<&str>,
    ) -> Vec<TraceStep> {
        let Some(TypeTriggers {
            event_type,
            triggers,
        }) = self.by_type.get(&planned.event.event_type)
        else {
            return Vec::new();
        };
        let Some(compiled) = triggers.iter().find(|t| t.id == trigger) else {
            return Vec::new();
        };
        let mut shared = EventRender::new(planned, event_type);
        if let Some(rule) = &compiled.rule {
            return rule.trace(&shared.subject()).1;
        }
        let (Some(id), Some(source)) = (&compiled.condition, condition) else {
            return Vec::new();
        };
        let (result, note) = match self.templates.condition_holds(id, &shared.context()) {
            Ok(holds) => (holds, None),
            Err(err) => (
                false,
                Some(format!(
                    "the condition could not be evaluated ({err}), so it does not fire"
                )),
            ),
        };
        vec![TraceStep {
            path: "condition".into(),
            field: String::new(),
            op: "expression",
            expected: Some(serde_json::Value::from(source)),
            actual: serde_json::Value::Null,
            previous: None,
            result,
            note,
        }]
    }

    /// One action's call for the event: rendered, or failed with the reason when it could not
    /// be, or skipped when the action is deactivated.
    fn plan_call(
        &self,
        trigger: &CompiledTrigger,
        action: &CompiledAction,
        shared: &mut EventRender<'_>,
    ) -> NewCall {
        let planned = shared.planned;
        let event = planned.event;
        let mut call = NewCall {
            webhook_id: new_webhook_id(),
            event_id: planned.id,
            action: ActionRef::new(trigger.id, action.index),
            shop_id: event.shop_id,
            event_type: event.event_type.clone(),
            entity_id: event.entity_id.clone(),
            method: action.method,
            url: String::new(),
            headers: Vec::new(),
            body: None,
            priority: trigger.priority,
            status: CallStatus::Pending,
            max_attempts: action.max_attempts,
            last_error: None,
            unique: action.unique,
            ordered: action.ordered,
            target_host: String::new(),
            coalesced: 0,
        };
        let ctx = if action.needs_context() {
            Some(shared.context())
        } else {
            None
        };
        let rendered =
            self.render_action(action, ctx.as_ref(), &mut call, || shared.default_body());
        if let Err(problem) = rendered {
            // Never send a request that is not what the receiver was promised.
            call.status = CallStatus::Failed;
            call.last_error = Some(problem);
            call.body = None;
            if call.url.is_empty() {
                call.url = action.url_source.clone();
            }
        } else if action.deactivated {
            call.status = CallStatus::Skipped;
            call.last_error = Some("not sent: the action is deactivated".into());
        }
        call.target_host = match &action.host {
            Some(host) => host.clone(),
            None => target_host(&call.url),
        };
        call
    }

    /// Fills in the call's URL, headers and body; the error says which part failed and why.
    fn render_action(
        &self,
        action: &CompiledAction,
        ctx: Option<&ContextValue>,
        call: &mut NewCall,
        default_body: impl FnOnce() -> String,
    ) -> Result<(), String> {
        let render = |id: &TemplateId| -> Result<String, TemplateError> {
            match ctx {
                Some(ctx) => self.templates.render(id, ctx),
                // `needs_context` holds whenever a template exists.
                None => Err(TemplateError {
                    kind: TemplateErrorKind::Render,
                    message: "no merge fields to render with".into(),
                    line: None,
                    column: None,
                }),
            }
        };
        call.url = match (&action.url, action.method) {
            (Text::Literal(url), Method::Get) => append_segment(url, &call.entity_id),
            (Text::Literal(url), Method::Post) => url.clone(),
            (Text::Template(id), _) => {
                let url = render(id).map_err(|e| format!("the URL could not be rendered: {e}"))?;
                check_url(&url).map_err(|e| format!("the rendered URL {url:?} {e}"))?;
                url
            }
        };
        if action.method == Method::Post {
            let (mime, body) = match &action.body {
                Some(id) => {
                    let TemplateKind::Payload(mime) = id.kind() else {
                        return Err("the payload template is not a payload".into());
                    };
                    let body =
                        render(id).map_err(|e| format!("payload could not be rendered: {e}"))?;
                    (mime, body)
                }
                None => (MimeType::Json, default_body()),
            };
            call.headers
                .push(("content-type".into(), mime.content_type().into()));
            call.body = Some(body);
        }
        for (name, value) in &action.headers {
            let value = match value {
                Text::Literal(value) => value.clone(),
                Text::Template(id) => {
                    render(id).map_err(|e| format!("header {name} could not be rendered: {e}"))?
                }
            };
            call.headers.push((name.clone(), value));
        }
        Ok(())
    }
}

/// A Standard Webhooks message id: stable across the retries of one call.
/// `host:port` of a URL, the unit of the per-endpoint concurrency limit.
pub fn target_host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => String::new(),
    }
}

/// A Standard Webhooks message id: `msg_` and 128 random bits. The thread's RNG (seeded from
/// the OS once) is used instead of a `getrandom` system call per call.
fn new_webhook_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(36);
    id.push_str("msg_");
    for b in bytes {
        id.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble is a hex digit"));
        id.push(char::from_digit(u32::from(b & 15), 16).expect("a nibble is a hex digit"));
    }
    id
}

/// The URL of a GET call whose URL has no placeholder: the entity id appended as a last path
/// segment (percent-encoded).
pub fn append_segment(url: &str, entity_id: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if let Ok(mut segments) = parsed.path_segments_mut() {
                segments.pop_if_empty().push(entity_id);
            }
            parsed.to_string()
        }
        Err(_) => {
            let mut encoded = String::with_capacity(entity_id.len());
            for b in entity_id.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    encoded.push(b as char);
                } else {
                    encoded.push_str(&format!("%{b:02X}"));
                }
            }
            format!("{}/{encoded}", url.trim_end_matches('/'))
        }
    }
}

/// Something about an action that cannot be saved: the field at fault, relative to the action
/// (`url`, `payload.body`, `headers.X-Name`), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionProblem {
    pub field: String,
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> ActionProblem {
    ActionProblem {
        field: field.into(),
        message: message.into(),
    }
}

/// Describes a template or condition that failed its save-time check.
pub(crate) fn template_problem(err: &TemplateError, what: &str, event_type: &EventType) -> String {
    match err.kind {
        TemplateErrorKind::Compile => format!("does not compile: {err}"),
        TemplateErrorKind::Output => {
            format!(
                "renders invalid {what} for a sample {}: {err}",
                event_type.name
            )
        }
        TemplateErrorKind::Render | TemplateErrorKind::Data => {
            format!("fails to render for a sample {}: {err}", event_type.name)
        }
    }
}

/// Checks what can be checked about an action before an event arrives: its URL (with merge
/// fields only after the host), its payload and header templates compile and render valid
/// output for `sample` (the event type's sample context), its header names are valid and not
/// hookflow's own.
pub fn check_action(
    checker: &TemplateSet,
    call: &CallWebhook,
    event_type: &EventType,
    sample: &ContextValue,
) -> Result<(), ActionProblem> {
    if has_tags(&call.url) {
        check_url_placeholders(&call.url).map_err(|m| problem("url", m))?;
        checker
            .check(TemplateKind::Url, &call.url, sample)
            .map_err(|e| problem("url", template_problem(&e, "URL", event_type)))?;
        // A render the sample cannot judge was forgiven above; otherwise the URL must be usable.
        if let Ok(rendered) = checker.render_once(TemplateKind::Url, &call.url, sample) {
            check_url(&rendered).map_err(|m| {
                problem(
                    "url",
                    format!(
                        "renders {rendered:?} for a sample {}, which {m}",
                        event_type.name
                    ),
                )
            })?;
        }
    } else {
        check_url(&call.url).map_err(|m| problem("url", m))?;
    }
    if let Some(payload) = &call.payload {
        if call.method == Method::Get {
            return Err(problem(
                "payload",
                "GET calls send no body; remove the payload or use POST",
            ));
        }
        checker
            .check(
                TemplateKind::Payload(payload.mime_type),
                &payload.body,
                sample,
            )
            .map_err(|e| {
                problem(
                    "payload.body",
                    template_problem(&e, payload.mime_type.as_str(), event_type),
                )
            })?;
    }
    if call.headers.len() > MAX_HEADERS {
        return Err(problem(
            "headers",
            format!("at most {MAX_HEADERS} headers per action"),
        ));
    }
    let mut seen: Vec<String> = Vec::with_capacity(call.headers.len());
    for (name, value) in &call.headers {
        let field = format!("headers.{name}");
        check_header_name(name).map_err(|m| problem(&field, m))?;
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(problem(&field, "is given twice (header names ignore case)"));
        }
        seen.push(lower);
        checker
            .check(TemplateKind::Header, value, sample)
            .map_err(|e| problem(&field, template_problem(&e, "header value", event_type)))?;
    }
    Ok(())
}

/// Header names are RFC 9110 tokens, and not one hookflow sets itself.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err("is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)".into());
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "is set by hookflow and cannot be overridden (reserved: {})",
            RESERVED_HEADERS.join(", ")
        ));
    }
    Ok(())
}

/// Merge fields may go in a URL's path, query and fragment, not in its scheme or host: a
/// value from an event must not decide where the event's data is sent.
fn check_url_placeholders(url: &str) -> Result<(), String> {
    let Some(first_tag) = ["{{", "{%", "{#"].iter().filter_map(|t| url.find(t)).min() else {
        return Ok(());
    };
    let before = &url[..first_tag];
    let authority_ends = before.find("://").is_some_and(|scheme_end| {
        let rest = &before[scheme_end + 3..];
        rest.find(['/', '?', '#']).is_some_and(|i| i > 0)
    });
    if authority_ends {
        Ok(())
    } else {
        Err(
            "may use merge fields only after the host (in the path, query or fragment): \
             write the scheme and host out, e.g. https://erp.example.com/orders/{{ entityId }}"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{EventId, NewEvent, PayloadTemplate, Shop, Timestamp, TriggerDraft};
    use crate::service::{sample_context, sample_entity};
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
                rules: None,
                actions: vec![Action::CallWebhook(action)],
            },
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn post(url: &str) -> CallWebhook {
        CallWebhook::to(url)
    }

    fn with_payload(url: &str, mime: MimeType, body: &str) -> CallWebhook {
        let mut call = post(url);
        call.payload = Some(PayloadTemplate {
            mime_type: mime,
            body: body.into(),
        });
        call
    }

    fn plan(triggers: &[Trigger], entity: serde_json::Value) -> Vec<NewCall> {
        let catalog = Arc::new(Catalog::builtin().unwrap());
        let set = CompiledTriggers::build(triggers, catalog, RetryPolicy::default(), &[]);
        let event = NewEvent {
            event_type: "OrderChanged".into(),
            shop_id: ShopId(1),
            entity_id: "77".into(),
            entity: entity.as_object().unwrap().clone(),
            previous: None,
            occurred_at: Timestamp(0),
            idempotency_key: None,
        };
        let shop = Shop {
            id: ShopId(1),
            name: "Main".into(),
            notification_email: None,
            created_at: Timestamp(0),
            catalog: "shopctrl".into(),
            api_key: Default::default(),
        };
        let mut out = Vec::new();
        set.plan(
            &PlannedEvent {
                id: EventId(9),
                event: &event,
                shop: &shop,
            },
            &mut out,
            &mut Vec::new(),
        );
        out
    }

    fn header<'a>(call: &'a NewCall, name: &str) -> Option<&'a str> {
        call.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
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
        let templated = with_payload(
            "http://t/",
            MimeType::Json,
            r#"{"order": {{ entity.OrderCode }}, "shop": {{ shop.name }}, "event": {{ event.id }}}"#,
        );
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
    fn xml_and_text_payloads_carry_their_content_type() {
        let calls = plan(
            &[
                trigger(
                    2,
                    None,
                    None,
                    with_payload("http://x/", MimeType::Xml, "<o>{{ entity.OrderCode }}</o>"),
                ),
                trigger(
                    1,
                    None,
                    None,
                    with_payload("http://t/", MimeType::Text, "{{ entity.OrderCode }}"),
                ),
            ],
            json!({"OrderCode": "<&>"}),
        );
        assert_eq!(calls[0].body.as_deref(), Some("<o>&lt;&amp;&gt;</o>"));
        assert_eq!(
            header(&calls[0], "content-type"),
            Some("application/xml; charset=utf-8")
        );
        assert_eq!(calls[1].body.as_deref(), Some("<&>"));
        assert_eq!(
            header(&calls[1], "content-type"),
            Some("text/plain; charset=utf-8")
        );
    }

    #[test]
    fn a_payload_that_renders_invalid_fails_the_call_instead_of_sending_it() {
        let broken = with_payload(
            "http://t/",
            MimeType::Json,
            "{\n\"a\": {{ entity.A | safe }}\n}",
        );
        let calls = plan(&[trigger(1, None, None, broken)], json!({"A": "not json"}));
        assert_eq!(calls[0].status, CallStatus::Failed);
        let error = calls[0].last_error.as_deref().unwrap();
        assert!(error.contains("not valid JSON"), "{error}");
        assert!(error.contains("line 2, column"), "{error}");
        assert!(calls[0].body.is_none());

        let broken = with_payload("http://t/", MimeType::Xml, "<a>{{ entity.A | safe }}</a>");
        let calls = plan(&[trigger(1, None, None, broken)], json!({"A": "<b>"}));
        assert_eq!(calls[0].status, CallStatus::Failed);
        let error = calls[0].last_error.as_deref().unwrap();
        assert!(error.contains("not well-formed XML"), "{error}");
    }

    #[test]
    fn get_calls_carry_the_entity_id_in_the_url() {
        assert_eq!(
            append_segment("http://h/orders", "7 a"),
            "http://h/orders/7%20a"
        );
        assert_eq!(append_segment("http://h/orders/", "7"), "http://h/orders/7");
        assert_eq!(
            append_segment("http://h/orders?x=1", "7"),
            "http://h/orders/7?x=1"
        );
        let get = |url: &str| CallWebhook {
            method: Method::Get,
            ..CallWebhook::to(url)
        };
        let calls = plan(
            &[
                trigger(2, None, None, get("http://g/items")),
                trigger(
                    1,
                    None,
                    None,
                    get("http://h/o/{{ entityId }}/detail?c={{ entity.Code }}"),
                ),
            ],
            json!({"Code": "a/b &c"}),
        );
        assert_eq!(calls[0].url, "http://g/items/77");
        assert!(calls[0].body.is_none());
        assert_eq!(calls[1].url, "http://h/o/77/detail?c=a%2Fb%20%26c");
        assert!(calls[1].headers.is_empty());
    }

    #[test]
    fn url_and_header_templates_are_rendered_per_event() {
        let mut call = post("https://h/orders/{{ entity.OrderCode }}");
        call.headers = BTreeMap::from([
            ("X-Order".to_owned(), "{{ entity.OrderCode }}".to_owned()),
            ("X-Static".to_owned(), "v1".to_owned()),
            ("X-Note".to_owned(), "n={{ entity.Note }}".to_owned()),
        ]);
        let calls = plan(
            &[trigger(1, None, None, call)],
            json!({"OrderCode": "O 1/2", "Note": "a\r\nInjected: yes"}),
        );
        assert_eq!(
            calls[0].status,
            CallStatus::Pending,
            "{:?}",
            calls[0].last_error
        );
        assert_eq!(calls[0].url, "https://h/orders/O%201%2F2");
        assert_eq!(header(&calls[0], "x-order"), Some("O 1/2"));
        assert_eq!(header(&calls[0], "x-static"), Some("v1"));
        assert_eq!(header(&calls[0], "x-note"), Some("n=a  Injected: yes"));
        assert!(header(&calls[0], "injected").is_none());
    }

    fn check(call: CallWebhook) -> Result<(), ActionProblem> {
        let catalog = Catalog::builtin().unwrap();
        let ty = catalog.shared("OrderChanged").unwrap();
        let sample = sample_context(&ty, Arc::new(sample_entity(&ty)));
        check_action(&TemplateSet::new(), &call, &ty, &sample)
    }

    #[test]
    fn actions_are_checked_before_they_are_saved() {
        assert_eq!(
            check(post("https://h/o/{{ entity.OrderCode }}?s={{ shop.id }}")),
            Ok(())
        );
        let err = check(post("https://{{ entity.Host }}/x")).unwrap_err();
        assert_eq!(err.field, "url");
        assert!(err.message.contains("after the host"), "{err:?}");
        assert_eq!(
            check(post("https://h{{ entityId }}/x")).unwrap_err().field,
            "url"
        );
        assert_eq!(check(post("{{ entity.Url }}")).unwrap_err().field, "url");
        let err = check(post("https://h/{{ entity.OrderCode ")).unwrap_err();
        assert!(
            err.message.starts_with("does not compile: line 1, column"),
            "{err:?}"
        );

        let xml = |body: &str| with_payload("https://h/", MimeType::Xml, body);
        assert_eq!(check(xml("<o>{{ entity.OrderCode }}</o>")), Ok(()));
        let err = check(xml("<o>\n  <c>{{ entity.OrderCode }}</x>\n</o>")).unwrap_err();
        assert_eq!(err.field, "payload.body");
        assert!(
            err.message.starts_with(
                "renders invalid application/xml for a sample OrderChanged: line 2, column"
            ),
            "{err:?}"
        );

        let with_headers = |pairs: &[(&str, &str)]| {
            let mut call = post("https://h/");
            call.headers = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            call
        };
        assert_eq!(
            check(with_headers(&[("X-Order", "{{ entity.OrderCode }}")])),
            Ok(())
        );
        for reserved in [
            "Webhook-Signature",
            "content-type",
            "Authorization",
            "webhook-id",
        ] {
            let err = check(with_headers(&[(reserved, "x")])).unwrap_err();
            assert_eq!(err.field, format!("headers.{reserved}"));
            assert!(err.message.contains("cannot be overridden"), "{err:?}");
        }
        let err = check(with_headers(&[("Bad Name", "x")])).unwrap_err();
        assert!(err.message.contains("not a valid header name"), "{err:?}");
        let err = check(with_headers(&[("X-A", "x"), ("x-a", "y")])).unwrap_err();
        assert!(err.message.contains("twice"), "{err:?}");
        let err = check(with_headers(&[("X-A", "café")])).unwrap_err();
        assert!(err.message.contains("visible ASCII"), "{err:?}");
        let err = check(with_headers(&[("X-A", "{{ entity.OrderCode ")])).unwrap_err();
        assert!(err.message.starts_with("does not compile"), "{err:?}");
    }
}

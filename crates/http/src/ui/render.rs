//! The template environment of the web UI: every template under `templates/ui/` and every
//! static file under `web/` is compiled into the binary, so `hookflow serve` needs no files
//! beside it and no front-end build.
//!
//! The environment is built once, on first use, and shared: templates are parsed once, not
//! per request.

use std::sync::{Arc, LazyLock};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use hookflow_templating::catalog::{Catalog, EventType};
use minijinja::value::Object;
use minijinja::{context, Environment, HtmlEscape, State, Value};

use crate::auth::Session;
use crate::ui::UiError;

/// Every page template, by name (`{% extends "base.html" %}` finds them here).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../../../templates/ui/base.html"),
    ),
    (
        "macros.html",
        include_str!("../../../../templates/ui/macros.html"),
    ),
    (
        "login.html",
        include_str!("../../../../templates/ui/login.html"),
    ),
    (
        "error.html",
        include_str!("../../../../templates/ui/error.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../../../templates/ui/dashboard.html"),
    ),
    (
        "triggers.html",
        include_str!("../../../../templates/ui/triggers.html"),
    ),
    (
        "trigger_edit.html",
        include_str!("../../../../templates/ui/trigger_edit.html"),
    ),
    (
        "queue.html",
        include_str!("../../../../templates/ui/queue.html"),
    ),
    (
        "queue_item.html",
        include_str!("../../../../templates/ui/queue_item.html"),
    ),
    (
        "events.html",
        include_str!("../../../../templates/ui/events.html"),
    ),
    (
        "event.html",
        include_str!("../../../../templates/ui/event.html"),
    ),
    (
        "alerts.html",
        include_str!("../../../../templates/ui/alerts.html"),
    ),
    (
        "users.html",
        include_str!("../../../../templates/ui/users.html"),
    ),
    (
        "shops.html",
        include_str!("../../../../templates/ui/shops.html"),
    ),
    (
        "account.html",
        include_str!("../../../../templates/ui/account.html"),
    ),
    (
        "tokens.html",
        include_str!("../../../../templates/ui/tokens.html"),
    ),
    (
        "event_types.html",
        include_str!("../../../../templates/ui/event_types.html"),
    ),
    (
        "event_type.html",
        include_str!("../../../../templates/ui/event_type.html"),
    ),
];

/// Static files served under `/static/`: name, content type, bytes. Every script and
/// stylesheet of a page is one of these: the Content-Security-Policy (`security_headers`)
/// refuses inline ones.
pub(crate) const STATIC_FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../../../web/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/app.js"),
    ),
    (
        "editor.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/editor.js"),
    ),
    (
        "rules.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/rules.js"),
    ),
    // The `/docs` page's (`reference`).
    (
        "docs.css",
        "text/css; charset=utf-8",
        include_str!("../../../../web/docs.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../../../web/favicon.svg"),
    ),
];

/// A digest of the static files, appended to their URLs (`?v=`): browsers may cache them for
/// good, and a new build changes the URL.
pub(crate) static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, _, content) in STATIC_FILES {
        for byte in content.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:012x}", hash & 0xffff_ffff_ffff)
});

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env.add_filter("when", when);
    env.add_filter("truncate", truncate);
    env.add_filter("urlencode", urlencode);
    env.add_filter("event_name", event_name);
    env.add_filter("event_label", event_label);
    env.add_global("asset_v", ASSET_VERSION.as_str());
    env
});

/// An RFC 3339 time as `2026-12-01 13:20:11` (UTC), the way every page shows times.
fn when(value: Option<String>) -> String {
    let Some(text) = value else {
        return String::new();
    };
    let mut short: String = text.chars().take(19).collect();
    if short.len() == 19 {
        short.replace_range(10..11, " ");
        short
    } else {
        text
    }
}

/// At most `length` characters, with `…` when cut.
fn truncate(text: String, length: Option<usize>) -> String {
    let length = length.unwrap_or(255);
    match text.char_indices().nth(length) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A query-string value, percent-encoded.
fn urlencode(text: String) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The longest description shown as an event type's name; longer ones (Front Systems' and
/// Skladon's types are described in sentences) would crowd every list they appear in.
const EVENT_NAME_MAX: usize = 40;

/// The words people know an event type by ("Order changed" for `OrderChanged`): its
/// description when that is a short name, or the phrase a sentence opens with before a colon
/// ("Order is settled" of Flow Retail's "Order is settled: triggered when …") when that is a
/// name of two words or more. `None` means the id alone is shown.
pub(crate) fn short_name(ty: &EventType) -> Option<&str> {
    let is_name = |words: &str| {
        !words.is_empty()
            && words.chars().count() <= EVENT_NAME_MAX
            && !words.contains('.')
            && words != ty.name
    };
    let whole = ty.description.trim();
    if is_name(whole) && !whole.contains(':') {
        return Some(whole);
    }
    let (lead, _) = whole.split_once(':')?;
    let lead = lead.trim();
    (is_name(lead) && lead.split_whitespace().count() >= 2).then_some(lead)
}

/// The engine's catalog as the `event_names` value of a page's context, read by the
/// `event_name` and `event_label` filters: a page that shows event types puts it in its context
/// (`event_names => render::event_names(state.engine.catalog())`).
pub(crate) fn event_names(catalog: Arc<Catalog>) -> Value {
    Value::from_object(EventNames(catalog))
}

#[derive(Debug)]
struct EventNames(Arc<Catalog>);

impl Object for EventNames {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let ty = self.0.get(key.as_str()?)?;
        short_name(ty).map(Value::from)
    }
}

/// The words for an event type id, from the page's `event_names` (empty when it has none).
fn words_for(state: &State, id: &str) -> Option<String> {
    let names = state.lookup("event_names")?;
    let words = names.get_attr(id).ok()?;
    words.as_str().map(str::to_owned)
}

/// An event type in words beside its id, as HTML: `Order changed · <code>OrderChanged</code>`.
fn event_name(state: &State, id: String) -> Value {
    let code = format!("<code class=\"event-id muted\">{}</code>", HtmlEscape(&id));
    let html = match words_for(state, &id) {
        Some(words) => format!(
            "<span class=\"event-name\">{}</span> · {code}",
            HtmlEscape(&words)
        ),
        None => code,
    };
    Value::from_safe_string(html)
}

/// An event type in words beside its id, as text (for an `<option>`): `Order changed ·
/// OrderChanged`.
fn event_label(state: &State, id: String) -> String {
    match words_for(state, &id) {
        Some(words) => format!("{words} · {id}"),
        None => id,
    }
}

/// Renders a template with the page's own values.
pub(crate) fn render(name: &str, ctx: Value) -> Result<String, UiError> {
    ENV.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| UiError::Template(format!("{e:#}")))
}

/// Renders a page of a signed-in user: the layout gets who they are, what they may do and
/// the CSRF token for forms and scripts.
pub(crate) fn page(
    session: &Session,
    name: &str,
    nav: &str,
    ctx: Value,
) -> Result<Response, UiError> {
    let p = &session.principal;
    let base = context! {
        user => context! { email => p.email.clone(), role => p.role.as_str() },
        csrf => session.csrf.clone(),
        is_admin => p.is_admin(),
        can_write => p.can_write(),
        nav => nav,
    };
    let html = render(name, merge(base, ctx))?;
    Ok(html_response(StatusCode::OK, html))
}

/// Two contexts as one; the second's keys win.
pub(crate) fn merge(base: Value, extra: Value) -> Value {
    minijinja::value::merge_maps([extra, base])
}

pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    // Pages hold per-user data: never from a shared cache, and not from history after sign-out.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use hookflow_templating::catalog::EventType;

    use super::short_name;

    fn ty(name: &str, description: &str) -> EventType {
        let mut ty: EventType = serde_json::from_value(serde_json::json!({
            "name": name, "description": description,
        }))
        .expect("an event type from its two required fields");
        ty.catalog = "test".into();
        ty
    }

    #[test]
    fn a_short_description_is_the_name_and_a_sentence_is_not() {
        assert_eq!(
            short_name(&ty("OrderChanged", "Order changed")),
            Some("Order changed")
        );
        assert_eq!(
            short_name(&ty(
                "ORDER_SETTLED",
                "Order is settled: triggered when an order is fully paid."
            )),
            Some("Order is settled")
        );
        assert_eq!(
            short_name(&ty(
                "SaleCompleted",
                "Trigger: When a sales transaction is completed in the POS."
            )),
            None,
            "one word before the colon is no name"
        );
        assert_eq!(
            short_name(&ty("X", "Sent when a thing happens. Rarely.")),
            None
        );
        assert_eq!(short_name(&ty("X", "")), None);
        assert_eq!(short_name(&ty("X", &"long ".repeat(10))), None);
    }
}

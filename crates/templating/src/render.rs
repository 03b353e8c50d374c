//! Conditions and payload templates: compiled once when a trigger is saved or loaded,
//! rendered for every matching event.
//!
//! One [`TemplateSet`] holds every compiled template of the enabled triggers. A condition is
//! parsed as a minijinja expression (so it cannot smuggle in template syntax) and then kept as
//! a tiny `{% if %}` template, which lets the set own it without borrowing tricks.

use std::fmt;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::payload::MimeType;

/// A template or condition that does not compile, or output that is not valid for its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// What is wrong, for people.
    pub message: String,
    /// 1-based line in the source, when known.
    pub line: Option<usize>,
    /// 1-based column in the source, when known.
    pub column: Option<usize>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl TemplateError {
    fn from_minijinja(err: &minijinja::Error, source: &str) -> TemplateError {
        let message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        let (line, column) = match err.range() {
            Some(range) => {
                let (line, column) = line_col(source, range.start);
                (Some(line), Some(column))
            }
            None => (err.line(), None),
        };
        TemplateError {
            message,
            line,
            column,
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The merge fields a template sees.
#[derive(Debug, Serialize)]
pub struct RenderContext<'a> {
    pub event: EventFields<'a>,
    pub shop: ShopFields<'a>,
    /// The entity as the backend sent it, any depth.
    pub entity: &'a serde_json::Value,
    /// The default payload's fields (catalog fields, `null` when missing).
    #[serde(rename = "entityData")]
    pub entity_data: &'a serde_json::Value,
    #[serde(rename = "entityId")]
    pub entity_id: &'a str,
}

#[derive(Debug, Serialize)]
pub struct EventFields<'a> {
    pub id: i64,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    #[serde(rename = "occurredAt")]
    pub occurred_at: &'a str,
    #[serde(rename = "entityId")]
    pub entity_id: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ShopFields<'a> {
    pub id: i64,
    pub name: &'a str,
}

impl RenderContext<'_> {
    /// Converts the context once; the result is rendered by every matching trigger.
    pub fn to_value(&self) -> Value {
        Value::from_serialize(self)
    }
}

/// Compiled conditions and payload templates, addressed by a caller-chosen key.
pub struct TemplateSet {
    env: Environment<'static>,
}

impl Default for TemplateSet {
    fn default() -> Self {
        TemplateSet::new()
    }
}

impl TemplateSet {
    pub fn new() -> TemplateSet {
        let mut env = Environment::new();
        // Merge fields are optional data: `entity.Customer.Email` on an entity without a
        // customer renders as nothing instead of failing the whole call.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".json") {
                AutoEscape::Json
            } else if name.ends_with(".xml") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        TemplateSet { env }
    }

    /// Checks that a condition compiles, without keeping it.
    pub fn check_condition(&self, source: &str) -> Result<(), TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError {
                message: "condition is empty".into(),
                line: None,
                column: None,
            });
        }
        self.env
            .compile_expression(source)
            .map(drop)
            .map_err(|e| TemplateError::from_minijinja(&e, source))
    }

    /// Checks that a payload template compiles, without keeping it.
    pub fn check_payload(&self, mime: MimeType, source: &str) -> Result<(), TemplateError> {
        let mut scratch = self.env.clone();
        scratch
            .add_template_owned(template_name("check", mime), source.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e, source))
    }

    /// Compiles and keeps a condition under `key`.
    pub fn add_condition(&mut self, key: &str, source: &str) -> Result<(), TemplateError> {
        self.check_condition(source)?;
        // The expression parsed on its own, so wrapping it cannot change its meaning.
        let wrapped = format!("{{% if ({source}) %}}1{{% endif %}}");
        self.env
            .add_template_owned(format!("{key}.cond"), wrapped)
            .map_err(|e| TemplateError::from_minijinja(&e, source))
    }

    /// Compiles and keeps a payload template under `key`.
    pub fn add_payload(
        &mut self,
        key: &str,
        mime: MimeType,
        source: &str,
    ) -> Result<(), TemplateError> {
        self.env
            .add_template_owned(template_name(key, mime), source.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e, source))
    }

    /// Evaluates the condition kept under `key`.
    pub fn condition_holds(&self, key: &str, ctx: &Value) -> Result<bool, TemplateError> {
        let name = format!("{key}.cond");
        let template = self
            .env
            .get_template(&name)
            .map_err(|e| TemplateError::from_minijinja(&e, ""))?;
        let out = template
            .render(ctx)
            .map_err(|e| TemplateError::from_minijinja(&e, ""))?;
        Ok(out == "1")
    }

    /// Renders the payload kept under `key` and checks the output is valid for `mime`.
    pub fn render_payload(
        &self,
        key: &str,
        mime: MimeType,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(&template_name(key, mime))
            .map_err(|e| TemplateError::from_minijinja(&e, ""))?;
        let out = template
            .render(ctx)
            .map_err(|e| TemplateError::from_minijinja(&e, template.source()))?;
        validate_output(mime, &out)?;
        Ok(out)
    }

    /// Compiles a one-off payload template, renders it and validates the output.
    pub fn render_once(
        &self,
        mime: MimeType,
        source: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let mut scratch = self.env.clone();
        let name = template_name("once", mime);
        scratch
            .add_template_owned(name.clone(), source.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e, source))?;
        let template = scratch
            .get_template(&name)
            .map_err(|e| TemplateError::from_minijinja(&e, source))?;
        let out = template
            .render(ctx)
            .map_err(|e| TemplateError::from_minijinja(&e, source))?;
        validate_output(mime, &out)?;
        Ok(out)
    }
}

fn template_name(key: &str, mime: MimeType) -> String {
    let ext = match mime {
        MimeType::Json => "json",
        MimeType::Xml => "xml",
        MimeType::Text => "txt",
    };
    format!("{key}.{ext}")
}

/// Rendered output must be what its mime type promises; a receiver never gets broken JSON.
fn validate_output(mime: MimeType, out: &str) -> Result<(), TemplateError> {
    match mime {
        MimeType::Json => serde_json::from_str::<serde::de::IgnoredAny>(out)
            .map(drop)
            .map_err(|e| TemplateError {
                message: format!("rendered payload is not valid JSON: {e}"),
                line: Some(e.line()),
                column: Some(e.column()),
            }),
        MimeType::Xml | MimeType::Text => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(entity: &serde_json::Value) -> Value {
        let entity_data = json!({});
        RenderContext {
            event: EventFields {
                id: 1,
                event_type: "OrderChanged",
                occurred_at: "2026-01-01T00:00:00Z",
                entity_id: "9",
            },
            shop: ShopFields {
                id: 2,
                name: "Main \"shop\"",
            },
            entity,
            entity_data: &entity_data,
            entity_id: "9",
        }
        .to_value()
    }

    #[test]
    fn json_templates_escape_merge_fields() {
        let mut set = TemplateSet::new();
        set.add_payload(
            "t",
            MimeType::Json,
            r#"{"code": {{ entity.OrderCode }}, "shop": {{ shop.name }}, "n": {{ entity.Total }}}"#,
        )
        .unwrap();
        let entity = json!({"OrderCode": "A\"B\\C\nD ☃", "Total": 12.5});
        let out = set
            .render_payload("t", MimeType::Json, &ctx(&entity))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["code"], "A\"B\\C\nD ☃");
        assert_eq!(v["shop"], "Main \"shop\"");
        assert_eq!(v["n"], 12.5);
    }

    #[test]
    fn tojson_is_not_escaped_twice() {
        let mut set = TemplateSet::new();
        set.add_payload(
            "t",
            MimeType::Json,
            r#"{"order": {{ entity.OrderCode | tojson }}}"#,
        )
        .unwrap();
        let out = set
            .render_payload("t", MimeType::Json, &ctx(&json!({"OrderCode": "X1"})))
            .unwrap();
        assert_eq!(out, r#"{"order": "X1"}"#);
    }

    #[test]
    fn output_that_is_not_json_is_an_error() {
        let mut set = TemplateSet::new();
        set.add_payload("t", MimeType::Json, r#"{"a": {{ entity.A | safe }}}"#)
            .unwrap();
        let err = set
            .render_payload("t", MimeType::Json, &ctx(&json!({"A": "not json"})))
            .unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn conditions_evaluate_over_entity_and_event() {
        let mut set = TemplateSet::new();
        set.add_condition(
            "c",
            r#"entity.Status == "Shipped" and entity.Total > 100 and event.type == "OrderChanged""#,
        )
        .unwrap();
        assert!(set
            .condition_holds("c", &ctx(&json!({"Status": "Shipped", "Total": 150})))
            .unwrap());
        assert!(!set
            .condition_holds("c", &ctx(&json!({"Status": "Shipped", "Total": 50})))
            .unwrap());
        assert!(!set.condition_holds("c", &ctx(&json!({}))).unwrap());
    }

    #[test]
    fn broken_conditions_and_templates_report_where() {
        let set = TemplateSet::new();
        let err = set.check_condition("entity.Total >").unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.column.is_some());
        assert!(set.check_condition("x %} {% if y").is_err());
        let err = set
            .check_payload(MimeType::Json, "{\n  \"a\": {{ entity.A \n}")
            .unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}

//! The API reference page at `/docs`: HTML rendered on the server from the OpenAPI document,
//! with no script; its stylesheet is `web/docs.css`, served from `/static/` like the UI's
//! (the Content-Security-Policy refuses inline styles). It loads nothing from anywhere else,
//! so it works on a machine without internet, and being rendered from the document it shows
//! exactly what `/api/v1/openapi.json` says. (Swagger UI would need its bundle vendored into the binary;
//! a generated page keeps the binary small and has nothing to download or update.)

use std::fmt::Write;

use serde_json::Value;

/// The page for `document` (the OpenAPI document as JSON).
pub(crate) fn render(document: &Value) -> String {
    let mut page = String::with_capacity(256 * 1024);
    let title = text(&document["info"]["title"]);
    let version = text(&document["info"]["version"]);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"/static/favicon.svg?v={v}\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/static/docs.css?v={v}\">\
         <title>{} API reference</title></head><body>",
        esc(&title),
        v = crate::ui::render::ASSET_VERSION.as_str(),
    );
    let operations = operations(document);
    let tags = tags(document, &operations);
    let schemas = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();

    render_contents(&mut page, &title, &tags, &operations, &schemas);
    let _ = write!(
        page,
        "<h1>{} <small>{}</small></h1>{}\
         <p>The OpenAPI {} document this page shows: \
         <a href=\"/api/v1/openapi.json\"><code>/api/v1/openapi.json</code></a>.</p>",
        esc(&title),
        esc(&version),
        prose(&text(&document["info"]["description"])),
        esc(&text(&document["openapi"]))
    );

    for (tag, description) in &tags {
        let _ = write!(
            page,
            "<section class=\"tag\"><h2>{}</h2>{}",
            esc(tag),
            prose(description)
        );
        for op in operations.iter().filter(|o| &o.tag == tag) {
            render_operation(&mut page, op);
        }
        page.push_str("</section>");
    }

    page.push_str("<section class=\"tag\"><h2>Schemas</h2>");
    for (name, schema) in &schemas {
        let _ = write!(
            page,
            "<div class=\"schema\" id=\"schema-{n}\"><h3>{n}</h3>",
            n = esc(name)
        );
        render_schema(&mut page, schema);
        page.push_str("</div>");
    }
    page.push_str("</section></main></body></html>\n");
    page
}

/// The document's tags with their descriptions, in its order; an operation whose tag the
/// document does not list still gets a section.
fn tags(document: &Value, operations: &[Operation<'_>]) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = document["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| (text(&t["name"]), text(&t["description"])))
                .collect()
        })
        .unwrap_or_default();
    for op in operations {
        if !tags.iter().any(|(name, _)| *name == op.tag) {
            tags.push((op.tag.clone(), String::new()));
        }
    }
    tags
}

/// The contents: every operation by tag, then every schema.
fn render_contents(
    page: &mut String,
    title: &str,
    tags: &[(String, String)],
    operations: &[Operation<'_>],
    schemas: &serde_json::Map<String, Value>,
) {
    page.push_str("<nav><p class=\"brand\"><a href=\"#top\">");
    page.push_str(&esc(title));
    page.push_str("</a></p>");
    for (tag, _) in tags {
        let _ = write!(page, "<h4>{}</h4><ul>", esc(tag));
        for op in operations.iter().filter(|o| &o.tag == tag) {
            let label = op.op["summary"].as_str().unwrap_or(&op.path);
            let _ = write!(
                page,
                "<li><a href=\"#{}\" title=\"{}\"><span class=\"m {m}\">{M}</span> {}</a></li>",
                esc(&op.anchor()),
                esc(&op.path),
                esc(label),
                m = op.method,
                M = op.method.to_uppercase()
            );
        }
        page.push_str("</ul>");
    }
    page.push_str("<h4>Schemas</h4><ul>");
    for name in schemas.keys() {
        let _ = write!(
            page,
            "<li><a href=\"#schema-{n}\">{n}</a></li>",
            n = esc(name)
        );
    }
    page.push_str("</ul></nav><main id=\"top\">");
}

/// One operation of the document.
struct Operation<'a> {
    method: &'static str,
    path: String,
    tag: String,
    op: &'a Value,
}

impl Operation<'_> {
    fn anchor(&self) -> String {
        match self.op["operationId"].as_str() {
            Some(id) => format!("op-{id}"),
            None => format!("op-{}-{}", self.method, self.path),
        }
    }
}

fn operations(document: &Value) -> Vec<Operation<'_>> {
    let mut out = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "put", "delete", "patch"] {
                if let Some(op) = item.get(method) {
                    out.push(Operation {
                        method,
                        path: path.clone(),
                        tag: op["tags"][0].as_str().unwrap_or("other").to_owned(),
                        op,
                    });
                }
            }
        }
    }
    out
}

fn render_operation(page: &mut String, op: &Operation<'_>) {
    let o = op.op;
    let _ = write!(
        page,
        "<article class=\"op\" id=\"{}\"><h3><span class=\"m {m}\">{M}</span> <code>{}</code></h3>",
        esc(&op.anchor()),
        esc(&op.path),
        m = op.method,
        M = op.method.to_uppercase()
    );
    if let Some(summary) = o["summary"].as_str() {
        let _ = write!(page, "<p class=\"summary\">{}</p>", inline(summary));
    }
    if let Some(description) = o["description"].as_str() {
        page.push_str(&prose(description));
    }

    render_parameters(page, o);
    let example_body = render_request_body(page, o);
    render_responses(page, o);
    render_curl(page, op, example_body);
    page.push_str("</article>");
}

/// The operation's parameters as a table.
fn render_parameters(page: &mut String, o: &Value) {
    if let Some(params) = o["parameters"].as_array().filter(|p| !p.is_empty()) {
        page.push_str(
            "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th></th></tr>",
        );
        for p in params {
            let required = if p["required"].as_bool() == Some(true) {
                " <span class=\"req\">required</span>"
            } else {
                ""
            };
            let _ = write!(
                page,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&p["name"])),
                esc(&text(&p["in"])),
                type_html(&p["schema"]),
                inline(&text(&p["description"]))
            );
        }
        page.push_str("</table>");
    }
}

/// The operation's request body per content type, with its example; returns the last
/// example as one line of JSON, for the curl command.
fn render_request_body(page: &mut String, o: &Value) -> Option<String> {
    let mut example_body = None;
    if let Some(content) = o["requestBody"]["content"].as_object() {
        page.push_str("<h4>Request body</h4>");
        if let Some(description) = o["requestBody"]["description"].as_str() {
            page.push_str(&prose(description));
        }
        for (mime, media) in content {
            let _ = write!(
                page,
                "<p><code>{}</code>: {}</p>",
                esc(mime),
                type_html(&media["schema"])
            );
            let example = media.get("example").or_else(|| {
                media["examples"]
                    .as_object()
                    .and_then(|e| e.values().next())
                    .map(|e| &e["value"])
            });
            if let Some(example) = example {
                let pretty = serde_json::to_string_pretty(example).unwrap_or_default();
                let _ = write!(page, "<p>Example:</p><pre>{}</pre>", esc(&pretty));
                example_body = Some(serde_json::to_string(example).unwrap_or_default());
            }
        }
    }
    example_body
}

/// The operation's responses as a table.
fn render_responses(page: &mut String, o: &Value) {
    if let Some(responses) = o["responses"].as_object() {
        page.push_str("<h4>Responses</h4><table><tr><th>status</th><th></th><th>body</th></tr>");
        for (status, response) in responses {
            let body = response["content"]
                .as_object()
                .map(|c| {
                    c.values()
                        .map(|m| type_html(&m["schema"]))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let _ = write!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(status),
                inline(&text(&response["description"])),
                body
            );
        }
        page.push_str("</table>");
    }
}

/// A request to copy: the path's parameters stay as `{name}` placeholders.
fn render_curl(page: &mut String, op: &Operation<'_>, example_body: Option<String>) {
    let mut curl = format!(
        "curl -X {} 'http://127.0.0.1:8080{}' -H \"Authorization: Bearer $HOOKFLOW_ADMIN_TOKEN\"",
        op.method.to_uppercase(),
        op.path
    );
    if let Some(body) = example_body {
        let _ = write!(curl, " \\\n  -d '{}'", body.replace('\'', "'\\''"));
    }
    let _ = write!(
        page,
        "<details><summary>curl</summary><pre>{}</pre></details>",
        esc(&curl)
    );
}

fn render_schema(page: &mut String, schema: &Value) {
    if let Some(description) = schema["description"].as_str() {
        page.push_str(&prose(description));
    }
    let mut rows = String::new();
    collect_properties(schema, &mut rows, page);
    if !rows.is_empty() {
        page.push_str("<table><tr><th>field</th><th>type</th><th></th></tr>");
        page.push_str(&rows);
        page.push_str("</table>");
    } else {
        let _ = write!(page, "<p>{}</p>", type_html(schema));
    }
    if let Some(example) = schema.get("example") {
        let pretty = serde_json::to_string_pretty(example).unwrap_or_default();
        let _ = write!(page, "<p>Example:</p><pre>{}</pre>", esc(&pretty));
    }
}

/// The rows of an object's properties, those of the schemas it includes (`allOf`) first.
fn collect_properties(schema: &Value, rows: &mut String, page: &mut String) {
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            if let Some(reference) = part["$ref"].as_str() {
                let _ = write!(
                    page,
                    "<p>Includes every field of {}.</p>",
                    ref_link(reference)
                );
            } else {
                collect_properties(part, rows, page);
            }
        }
    }
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        let mark = if required.contains(&name.as_str()) {
            " <span class=\"req\">required</span>"
        } else {
            ""
        };
        let read_only = if property["readOnly"].as_bool() == Some(true) {
            " <span class=\"ro\">read-only</span>"
        } else {
            ""
        };
        let _ = write!(
            rows,
            "<tr><td><code>{}</code>{mark}{read_only}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            type_html(property),
            inline(&text(&property["description"]))
        );
    }
}

/// A schema's type in a few words, with links to the named schemas it uses.
fn type_html(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return ref_link(reference);
    }
    for (key, joiner) in [("oneOf", " | "), ("anyOf", " | "), ("allOf", " &amp; ")] {
        if let Some(parts) = schema[key].as_array() {
            return parts.iter().map(type_html).collect::<Vec<_>>().join(joiner);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(text).collect(),
        _ => vec![],
    };
    if types.is_empty() {
        return "any".into();
    }
    types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", type_html(&schema["items"])),
            "object" if schema["properties"].is_object() => {
                let names: Vec<String> = schema["properties"]
                    .as_object()
                    .map(|p| p.keys().map(|k| esc(k)).collect())
                    .unwrap_or_default();
                format!("object {{{}}}", names.join(", "))
            }
            "object" if schema["additionalProperties"].is_object() => {
                format!("object of {}", type_html(&schema["additionalProperties"]))
            }
            other => match schema["format"].as_str() {
                Some(format) => format!("{} ({})", esc(other), esc(format)),
                None => esc(other),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn ref_link(reference: &str) -> String {
    let name = reference.rsplit('/').next().unwrap_or(reference);
    format!("<a href=\"#schema-{n}\">{n}</a>", n = esc(name))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with `code` spans (descriptions are written in Markdown's backticks).
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

/// Paragraphs (blank-line separated) of [`inline`] text.
fn prose(text: &str) -> String {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", inline(p.trim())))
        .collect()
}

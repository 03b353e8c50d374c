//! Templates and conditions as saving a trigger and previewing one handle them: compiled,
//! checked against an event type's sample context (`TemplateSet::check`,
//! `check_condition_against`) and rendered once (`render_once`), for every kind.
//!
//! Input: a header line `<kind> <event type>` and the template source after it, e.g.
//! `json OrderChanged\n{"id": {{ entityId }}}`. The kind is `json`, `xml`, `text`, `url`,
//! `header` or `condition` (by its first letter; anything else picks one by its first byte);
//! an unknown event type picks one by its bytes, so every input renders against some sample.
//!
//! Invariants: a rendered JSON payload parses as JSON; output stays under its kind's cap; a
//! header value holds only visible ASCII, spaces and tabs; a template that renders against the
//! sample passes the save-time check.
#![no_main]

use std::sync::LazyLock;

use hookflow_fuzz::{event_type, sample, split_header};
use hookflow_templating::render::{MAX_LINE_BYTES, MAX_PAYLOAD_BYTES};
use hookflow_templating::{MimeType, TemplateKind, TemplateSet};
use libfuzzer_sys::fuzz_target;

/// One environment for every input, as one trigger set shares one at run time.
static SET: LazyLock<TemplateSet> = LazyLock::new(TemplateSet::new);

/// What an input exercises.
enum Target {
    Template(TemplateKind),
    Condition,
}

fn target(selector: &str) -> Target {
    const KINDS: [Target; 6] = [
        Target::Template(TemplateKind::Payload(MimeType::Json)),
        Target::Template(TemplateKind::Payload(MimeType::Xml)),
        Target::Template(TemplateKind::Payload(MimeType::Text)),
        Target::Template(TemplateKind::Url),
        Target::Template(TemplateKind::Header),
        Target::Condition,
    ];
    let first = selector.bytes().next().unwrap_or(0);
    let index = match first.to_ascii_lowercase() {
        b'j' => 0,
        b'x' => 1,
        b't' => 2,
        b'u' => 3,
        b'h' => 4,
        b'c' => 5,
        other => usize::from(other) % KINDS.len(),
    };
    match KINDS[index] {
        Target::Template(kind) => Target::Template(kind),
        Target::Condition => Target::Condition,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (header, source) = split_header(input);
    let (kind, type_name) = header.split_once(' ').unwrap_or((header, ""));
    let ty = event_type(type_name);
    let ctx = sample(&ty);
    let set = &*SET;
    match target(kind) {
        Target::Condition => {
            let _ = set.check_condition(source);
            let _ = set.check_condition_against(source, &ctx);
        }
        Target::Template(kind) => {
            let checked = set.check(kind, source, &ctx);
            let Ok(out) = set.render_once(kind, source, &ctx) else {
                return;
            };
            assert!(
                checked.is_ok(),
                "renders against the sample but fails the save-time check: {checked:?}"
            );
            match kind {
                TemplateKind::Payload(mime) => {
                    assert!(out.len() <= MAX_PAYLOAD_BYTES, "{} bytes", out.len());
                    if mime == MimeType::Json {
                        if let Err(e) = serde_json::from_str::<serde_json::Value>(&out) {
                            panic!("rendered JSON does not parse ({e}): {out:?}");
                        }
                    }
                }
                TemplateKind::Url => assert!(out.len() <= MAX_LINE_BYTES, "{} bytes", out.len()),
                TemplateKind::Header => {
                    assert!(out.len() <= MAX_LINE_BYTES, "{} bytes", out.len());
                    assert!(
                        out.chars().all(|c| c == '\t' || (' '..='~').contains(&c)),
                        "header value {out:?}"
                    );
                }
            }
        }
    }
});

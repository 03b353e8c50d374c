use std::sync::Arc;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::json;

use super::*;
use crate::catalog::Catalog;
use crate::context::RenderContext;

/// Values that break documents whose templates escape naively.
const HOSTILE: &[&str] = &[
    "plain",
    "quote \" and ' apostrophe",
    "back\\slash \\\" \\n",
    "new\nline\r\ntab\t",
    "</x> <y attr=\"1\"> & &amp; ]]> <![CDATA[",
    "emoji 🎉 snow ☃ zero-width \u{200B} rtl \u{202E}",
    "control \u{0} \u{1} \u{8} \u{b} \u{c} \u{1b} \u{7f}",
    "nonchars \u{FFFE} \u{FFFF}",
    "{{ not a template }} {% if %}",
];

fn ctx_for(event_type: &str, entity: serde_json::Value) -> Value {
    let catalog = Catalog::builtin().unwrap();
    RenderContext {
        event_id: 9,
        event_type: catalog.shared(event_type).unwrap(),
        occurred_at: "2026-11-27T10:20:30Z".into(),
        entity_id: "77".into(),
        shop_id: 1,
        shop_name: "Main \"shop\" <&>".into(),
        entity: Arc::new(entity.as_object().unwrap().clone()),
        previous: None,
    }
    .into_value()
}

fn ctx(entity: serde_json::Value) -> Value {
    ctx_for("OrderChanged", entity)
}

fn render(
    kind: TemplateKind,
    source: &str,
    entity: serde_json::Value,
) -> Result<String, TemplateError> {
    TemplateSet::new().render_once(kind, source, &ctx(entity))
}

const JSON: TemplateKind = TemplateKind::Payload(MimeType::Json);
const XML: TemplateKind = TemplateKind::Payload(MimeType::Xml);
const TEXT: TemplateKind = TemplateKind::Payload(MimeType::Text);

/// The text content of every element, in document order, as an XML parser reads it.
fn xml_texts(doc: &str) -> Vec<String> {
    let mut reader = Reader::from_str(doc);
    let mut texts = Vec::new();
    let mut current = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Text(t) => current.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref().unwrap() {
                Some(c) => current.push(c),
                None => current.push_str(match &*r {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("entity {other}"),
                }),
            },
            Event::End(_) => texts.push(std::mem::take(&mut current)),
            Event::Start(_) => current.clear(),
            Event::Eof => return texts,
            _ => {}
        }
    }
}

/// What an XML document can carry of `s`: forbidden characters become U+FFFD.
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if crate::escape::is_xml_char(c) {
                c
            } else {
                '\u{FFFD}'
            }
        })
        .collect()
}

#[test]
fn json_templates_encode_hostile_values() {
    for value in HOSTILE {
        let out = render(
            JSON,
            "{\"code\": {{ entity.OrderCode }}, \"shop\": {{ shop.name }},\n \"list\": [{{ entity.OrderCode }}, {{ entity.Total }}]}",
            json!({"OrderCode": value, "Total": 12.5}),
        )
        .unwrap_or_else(|e| panic!("{value:?}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["code"], *value);
        assert_eq!(v["shop"], "Main \"shop\" <&>");
        assert_eq!(v["list"], json!([value, 12.5]));
    }
}

#[test]
fn xml_templates_escape_hostile_values() {
    for value in HOSTILE {
        let out = render(
            XML,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<order code=\"{{ entity.OrderCode }}\" n='{{ entity.OrderCode }}'>\n  <code>{{ entity.OrderCode }}</code>\n  <shop>{{ shop.name }}</shop>\n</order>\n",
            json!({"OrderCode": value}),
        )
        .unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(
            xml_texts(&out)[..2],
            [xml_safe(value), "Main \"shop\" <&>".to_owned()],
            "{out}"
        );
        let mut reader = Reader::from_str(&out);
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) if e.name().as_ref() == "order" => {
                    for attr in e.attributes() {
                        let attr = attr.unwrap();
                        assert_eq!(
                            attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap(),
                            xml_safe(value)
                        );
                    }
                    break;
                }
                Event::Eof => panic!("no order element"),
                _ => {}
            }
        }
    }
}

#[test]
fn text_templates_insert_values_as_they_are() {
    let out = render(
        TEXT,
        "Order {{ entity.OrderCode }} for {{ shop.name }}: {{ entity.Paid }} {{ entity.Total }}\n",
        json!({"OrderCode": "A\"<&>\n", "Paid": true, "Total": 3}),
    )
    .unwrap();
    assert_eq!(out, "Order A\"<&>\n for Main \"shop\" <&>: true 3\n");
}

#[test]
fn missing_fields_are_null_in_json_and_empty_elsewhere() {
    let entity = json!({"Gone": null});
    let out = render(
        JSON,
        r#"[{{ entity.Missing }}, {{ entity.Gone }}, {{ entity.Missing.Deeper }}, {{ entityData.OrderCode }}, {{ nothing }}]"#,
        entity.clone(),
    )
    .unwrap();
    assert_eq!(out, "[null, null, null, null, null]");
    let out = render(
        XML,
        "<a x=\"{{ entity.Gone }}\">{{ entity.Missing }}{{ entity.Gone }}{{ entityData.OrderCode }}</a>",
        entity.clone(),
    )
    .unwrap();
    assert_eq!(out, "<a x=\"\"></a>");
    let out = render(
        TEXT,
        "[{{ entity.Missing }}{{ entity.Gone }}{{ entityData.OrderCode }}]",
        entity,
    )
    .unwrap();
    assert_eq!(out, "[]");
}

#[test]
fn safe_writes_raw_values_and_invalid_output_names_the_template_line() {
    let out = render(
        JSON,
        "{\"raw\": {{ entity.Raw | safe }}}",
        json!({"Raw": "[1, 2]"}),
    )
    .unwrap();
    assert_eq!(out, "{\"raw\": [1, 2]}");

    let err = render(
        JSON,
        "{\n  \"a\": 1,\n  \"raw\": {{ entity.Raw | safe }}\n}",
        json!({"Raw": "not json"}),
    )
    .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Output);
    assert!(err.message.contains("not valid JSON"), "{err}");
    assert_eq!((err.line, err.column.is_some()), (Some(3), true), "{err}");

    // Template text at fault: the position of that text.
    let err = render(
        JSON,
        "{\n  \"a\": {{ entity.A }}\n  \"b\": 2\n}",
        json!({"A": 1}),
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (Some(3), Some(3)), "{err}");

    // Quoting a value: the hint says why.
    let err = render(JSON, "{\"a\": \"{{ entity.A }}\"}", json!({"A": "x"})).unwrap_err();
    assert_eq!(err.line, Some(1), "{err}");
    assert!(err.message.contains("quotes included"), "{err}");

    // Output that ends too early: the end of the template.
    let err = render(
        JSON,
        "{\"a\": [\n{% for x in [1] %}{{ x }}{% endfor %}\n",
        json!({}),
    )
    .unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
}

#[test]
fn broken_xml_is_refused_with_its_position() {
    let err = render(
        XML,
        "<order>\n  <code>{{ entity.OrderCode }}</cod>\n</order>",
        json!({"OrderCode": "x"}),
    )
    .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Output);
    assert!(err.message.contains("not well-formed XML"), "{err}");
    assert_eq!(err.line, Some(2), "{err}");

    let err = render(XML, "<a/>\n<b/>", json!({})).unwrap_err();
    assert!(err.message.contains("second root"), "{err}");
    assert_eq!(err.line, Some(2), "{err}");

    let err = render(XML, "<a>{{ entity.X | safe }}</a>", json!({"X": "<b>"})).unwrap_err();
    assert!(err.message.contains("not well-formed XML"), "{err}");
    // Where the parser notices: the end tag that no longer matches.
    assert_eq!((err.line, err.column), (Some(1), Some(25)), "{err}");
}

#[test]
fn filters_format_escape_and_default() {
    let entity = json!({"OrderCode": "A&B", "Total": 1234.5, "Created": "2026-11-27T10:20:30+01:00", "Gone": null});
    let out = render(
        JSON,
        r#"{"code": {{ entity.OrderCode | tojson }}, "xml": {{ entity.OrderCode | xml_escape }},
"day": {{ event.occurredAt | datetimeformat("%Y-%m-%d") }}, "local": {{ entity.Created | datetimeformat("%d.%m.%Y %H:%M") }},
"total": {{ entity.Total | numberformat(2) }}, "eu": {{ entity.Total | numberformat(2, ",", ".") }},
"n": {{ entity.Total | numberformat(1) | safe }},
"d1": {{ entity.Gone | default("none given") }}, "d2": {{ entity.Missing | default(0) }},
"entity": {{ entity | tojson }}, "pretty": {{ entity.Gone | tojson(indent=2) }},
"missingDate": {{ entity.Missing | datetimeformat("%Y") }}}"#,
        entity.clone(),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["code"], "A&B");
    assert_eq!(v["xml"], "A&amp;B");
    assert_eq!(v["day"], "2026-11-27");
    assert_eq!(v["local"], "27.11.2026 10:20");
    assert_eq!(v["total"], "1234.50");
    assert_eq!(v["eu"], "1.234,50");
    assert_eq!(v["n"], 1234.5);
    assert_eq!(v["d1"], "none given");
    assert_eq!(v["d2"], 0);
    assert_eq!(v["entity"], entity);
    assert_eq!(v["missingDate"], serde_json::Value::Null);

    let out = render(
        XML,
        "<a j=\"{{ entity | tojson }}\">{{ entity.OrderCode | xml_escape }}{{ entity.OrderCode | e }}</a>",
        json!({"OrderCode": "<&>"}),
    )
    .unwrap();
    assert_eq!(
        out,
        "<a j=\"{&quot;OrderCode&quot;:&quot;&lt;&amp;&gt;&quot;}\">&lt;&amp;&gt;&lt;&amp;&gt;</a>"
    );

    let err = render(
        TEXT,
        "{{ entity.X | datetimeformat }}",
        json!({"X": "soon"}),
    )
    .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Data);
    assert!(err.message.contains("RFC 3339"), "{err}");
}

#[test]
fn runaway_templates_are_stopped() {
    let set = TemplateSet::new();
    let sample = ctx(json!({}));
    let err = set
        .render_once(
            TEXT,
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            &sample,
        )
        .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Render);
    assert!(
        err.message.contains("loops ran more than 100000 times"),
        "{err}"
    );
    assert_eq!(err.line, Some(1));

    let err = set
        .render_once(
            JSON,
            "[{% for i in range(50000) %}{{ \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" }},{% endfor %}1]",
            &sample,
        )
        .unwrap_err();
    assert!(err.message.contains("larger than 1048576 bytes"), "{err}");
    assert_eq!(err.line, Some(1));

    let err = set
        .render_once(
            TEXT,
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            &sample,
        )
        .unwrap_err();
    assert!(err.message.contains("recursion"), "{err}");
}

#[test]
fn templates_cannot_reach_files_the_environment_or_each_other() {
    let mut set = TemplateSet::new();
    set.add("secret", JSON, "{\"token\": \"s3cret\"}").unwrap();
    let sample = ctx(json!({}));
    let err = set
        .render_once(JSON, "{% include \"secret.json\" %}", &sample)
        .unwrap_err();
    assert!(err.message.contains("cannot include"), "{err}");
    let err = set
        .render_once(TEXT, "{% include \"/etc/passwd\" %}", &sample)
        .unwrap_err();
    assert!(err.message.contains("cannot include"), "{err}");
    assert!(set.render_once(TEXT, "{{ debug() }}", &sample).is_err());
    assert_eq!(
        set.render_once(TEXT, "[{{ env }}{{ environ }}{{ config }}]", &sample)
            .unwrap(),
        "[]"
    );
}

#[test]
fn kept_templates_and_conditions_render() {
    let mut set = TemplateSet::new();
    let t = set
        .add(
            "t1a0",
            JSON,
            r#"{"order": {{ entity.OrderCode | tojson }}}"#,
        )
        .unwrap();
    let c = set
        .add_condition(
            "t1",
            r#"entity.Status == "Shipped" and entity.Total > 100 and event.type == "OrderChanged""#,
        )
        .unwrap();
    assert_eq!(
        set.render(&t, &ctx(json!({"OrderCode": "X1"}))).unwrap(),
        r#"{"order": "X1"}"#
    );
    assert!(set
        .condition_holds(&c, &ctx(json!({"Status": "Shipped", "Total": 150})))
        .unwrap());
    assert!(!set
        .condition_holds(&c, &ctx(json!({"Status": "Shipped", "Total": 50})))
        .unwrap());
    assert!(!set.condition_holds(&c, &ctx(json!({}))).unwrap());
}

#[test]
fn checks_forgive_only_what_the_sample_cannot_judge() {
    let set = TemplateSet::new();
    let sample = ctx(json!({"OrderId": 1001, "OrderCode": "OrderCode-1001"}));
    // A field outside the catalog: only real data can tell.
    assert_eq!(
        set.check(JSON, "{\"t\": {{ entity.Total * 100 }}}", &sample),
        Ok(())
    );
    assert_eq!(
        set.check_condition_against("entity.Total * 2 > 100", &sample),
        Ok(())
    );
    // Catalog fields only: the error is real.
    let err = set
        .check(JSON, "{\"t\": {{ entity.OrderCode - 100 }}}", &sample)
        .unwrap_err();
    assert_eq!(err.line, Some(1), "{err}");
    // Unknown filters do not depend on data.
    let err = set
        .check(JSON, "{\"t\": {{ entity.Total | nosuchfilter }}}", &sample)
        .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Render, "{err}");
    let err = set
        .check_condition_against("entity.Total is nosuchtest", &sample)
        .unwrap_err();
    assert_eq!((err.line, err.column.is_some()), (Some(1), true), "{err}");
    // Syntax errors name line and column.
    let err = set
        .check(XML, "<a>\n{{ entity.A </a>", &sample)
        .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Compile);
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.column.is_some(), "{err}");
    let err = set.check_condition("entity.Total >").unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(err.column.is_some());
    assert!(set.check_condition("x %} {% if y").is_err());
    assert!(set.check_condition("  ").is_err());
}

#[test]
fn urls_and_headers_escape_what_would_break_them() {
    let set = TemplateSet::new();
    let sample = ctx(json!({"Code": "a/b c?d#e", "Name": "Zoë\r\nX-Evil: 1"}));
    assert_eq!(
        set.render_once(
            TemplateKind::Url,
            "https://h/o/{{ entity.Code }}?id={{ entityId }}",
            &sample
        )
        .unwrap(),
        "https://h/o/a%2Fb%20c%3Fd%23e?id=77"
    );
    assert_eq!(
        set.render_once(TemplateKind::Header, "Name {{ entity.Name }}", &sample)
            .unwrap(),
        "Name Zo%C3%AB  X-Evil: 1"
    );
    let err = set
        .render_once(TemplateKind::Header, "{{ entity.Name | safe }}", &sample)
        .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Output);
    assert!(err.message.contains("visible ASCII"), "{err}");
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
    assert_eq!(line_col("ab", 0), (1, 1));
    assert_eq!(line_col("é", 1), (1, 1));
}

/// Every shape of template that once made a render allocate gigabytes: each is refused by the
/// render budget, with the line where it went over, before the allocation is made.
#[test]
fn template_bombs_are_stopped_at_their_line() {
    let set = TemplateSet::new();
    let sample = ctx(json!({"Lines": [{"Sku": "A"}, {"Sku": "B"}]}));
    let doubling = format!(
        "{{% set s = \"0123456789abcdef\" %}}\n{}{{{{ s | length }}}}",
        "{% set s = s ~ s %}\n".repeat(28)
    );
    let list_doubling = "{% set ns = namespace(l=[1]) %}\n{% for i in range(64) %}\n\
                         {% set ns.l = ns.l + ns.l %}\n{% endfor %}{{ ns.l | length }}";
    let capture_doubling = "{% set ns = namespace(s=\"ab\") %}\n{% for i in range(40) %}\
                            {% set t %}{{ ns.s }}{{ ns.s }}{% endset %}\n\
                            {% set ns.s = t %}{% endfor %}{{ ns.s | length }}";
    let shared = "{% set s = \"x\" * 5000000 %}\n{{ [s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s] | tojson | length }}";
    let cases: Vec<(&str, &str, usize)> = vec![
        (&doubling, "joining two strings", 23),
        ("{{ (\"x\" * 100000000) | length }}", "repeating a string", 1),
        ("{{ \"x\" * 10000000000 }}", "repeating a string", 1),
        ("{{ [1, 2] * 100000000 }}", "repeating a list", 1),
        (list_doubling, "adding two lists", 3),
        (capture_doubling, "more than 64 MiB", 2),
        (shared, "tojson", 2),
        ("{% set s = \"x\" * 1000000 %}\n{{ ([s] * 100) | join(\",\") | length }}", "join", 2),
        ("{{ (\"x\" * 100000) | replace(\"\", \"y\" * 1000) | length }}", "replace", 1),
        ("{{ (\"a\\n\" * 1000) | indent(100000000) | length }}", "indent", 1),
        ("{{ \"%100000000s\" | format(\"x\") | length }}", "format", 1),
        ("{{ [1] | batch(1000000000, \"x\") | length }}", "batch", 1),
        ("{{ (\"x \" * 5000000) | split(\" \") | length }}", "split", 1),
        ("{% set s = \"x\" * 1000000 %}\n{{ ([s] * 100) | string | length }}", "string", 2),
        ("{% set s = \"x\" * 1000000 %}\n{% set t %}{% for i in range(100) %}{{ s }}{% endfor %}{% endset %}{{ t | length }}", "more than 64 MiB", 2),
        ("{% for i in range(100000) %}{% for l in entity.Lines %}{% endfor %}{% endfor %}", "stopped", 1),
    ];
    for (template, expect, line) in cases {
        for kind in [TEXT, JSON] {
            let started = std::time::Instant::now();
            let err = set.render_once(kind, template, &sample).unwrap_err();
            assert_eq!(err.kind, TemplateErrorKind::Render, "{template}: {err}");
            assert!(err.message.contains(expect), "{template}: {err}");
            assert_eq!(err.line, Some(line), "{template}: {err}");
            assert!(
                started.elapsed() < crate::budget::MAX_RENDER_TIME * 2,
                "{template} took {:?}",
                started.elapsed()
            );
            // Saving it fails the same way, and so does rendering it as a kept template.
            let err = set.check(kind, template, &sample).unwrap_err();
            assert!(err.message.contains(expect), "check {template}: {err}");
        }
    }
}

#[test]
fn the_budget_leaves_real_templates_alone() {
    let set = TemplateSet::new();
    let lines: Vec<_> = (0..2000)
        .map(|i| json!({"Sku": format!("SKU-{i}"), "Qty": i % 7, "Price": 9.5}))
        .collect();
    let sample = ctx(json!({"Lines": lines, "Name": "Ada"}));
    let template = r#"{% set ns = namespace(csv="", total=0) %}{% for l in entity.Lines %}{% set ns.csv = ns.csv ~ l.Sku ~ "," %}{% set ns.total = ns.total + l.Qty * l.Price %}{% endfor %}{"csv": {{ ns.csv[:-1] }}, "total": {{ ns.total }}, "name": {{ entity.Name ~ " " ~ "Lovelace" }}, "n": {{ entity.Lines | length }}, "skus": {{ entity.Lines | map(attribute="Sku") | join("|") }}, "twice": {{ ["a", "b"] * 2 }}, "sum": {{ 1 + 2 }}, "rep": {{ "ab" * 3 }}, "items": [{% for l in entity.Lines[:3] %}{{ l.Sku }}{% if not loop.last %},{% endif %}{% endfor %}]}"#;
    let out = set.render_once(JSON, template, &sample).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 2000);
    assert_eq!(v["sum"], 3);
    assert_eq!(v["rep"], "ababab");
    assert_eq!(v["twice"], json!(["a", "b", "a", "b"]));
    assert_eq!(v["name"], "Ada Lovelace");
    assert_eq!(v["items"], json!(["SKU-0", "SKU-1", "SKU-2"]));
    assert!(v["csv"].as_str().unwrap().starts_with("SKU-0,SKU-1,"));
    assert!(v["skus"].as_str().unwrap().ends_with("|SKU-1999"));
}

#[test]
fn deeply_nested_values_do_not_overflow_the_stack() {
    let set = TemplateSet::new();
    let sample = ctx(json!({}));
    let template = "{% set ns = namespace(x=[]) %}{% for i in range(99999) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | length }}";
    let err = set.render_once(TEXT, template, &sample).unwrap_err();
    assert!(err.message.contains("more than 100 deep"), "{err}");
    assert_eq!(err.line, Some(1));
    // A namespace that holds itself would recurse forever when written.
    let err = set
        .render_once(
            TEXT,
            "{% set ns = namespace(a=1) %}\n{% set ns.me = ns %}{{ ns }}",
            &sample,
        )
        .unwrap_err();
    assert!(err.message.contains("inside itself"), "{err}");
    assert_eq!(err.line, Some(2));
    // Modest nesting is fine.
    let out = set
        .render_once(
            TEXT,
            "{% set a = [[[1]], {\"b\": [2]}] %}{{ a | tojson }}",
            &sample,
        )
        .unwrap();
    assert_eq!(out, "[[[1]],{\"b\":[2]}]");
}

#[test]
fn input_that_panics_minijinja_is_a_compile_error() {
    // Found by the template fuzz target: minijinja 2.24's lexer panics on `}}` in an
    // expression followed by more text.
    let set = TemplateSet::new();
    let err = set.check_condition("entity.OrderCode }} x").unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Compile);
    assert_eq!((err.line, err.column), (Some(1), Some(18)), "{err}");
    assert!(err.message.contains("bare expression"), "{err}");
    // Inside a string it is text.
    set.check_condition("entity.OrderCode == \"}} x\"").unwrap();
    let err = set
        .check_condition_against("entity.OrderCode }} x", &ctx(json!({})))
        .unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Compile);
}

#[test]
fn arithmetic_errors_keep_the_templates_line() {
    let set = TemplateSet::new();
    let err = set
        .render_once(TEXT, "{{ 1 }}\n{{ \"a\" + 1 }}", &ctx(json!({})))
        .unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.message.contains("+"), "{err}");
    let err = set
        .render_once(TEXT, "x\ny\n{{ [1] * \"b\" }}", &ctx(json!({})))
        .unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
}

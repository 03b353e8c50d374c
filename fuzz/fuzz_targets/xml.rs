//! XML: the well-formedness check every XML payload passes before it is sent
//! (`check_output` for XML payloads), and XML escaping of inserted values.
//!
//! Input: its first byte picks the mode, the rest is UTF-8 text.
//! - Even: the text is a rendered document; checking it must not panic, and a document the
//!   check accepts must read to its end without error with quick-xml's own reader.
//! - Odd: the text is a merge-field value, inserted into element content and an attribute of
//!   an XML payload. Escaping must always give a well-formed document whose content reads back
//!   as the value (characters XML cannot carry become U+FFFD).
#![no_main]

use std::sync::LazyLock;

use hookflow_templating::render::check_output;
use hookflow_templating::{ContextValue, MimeType, TemplateKind, TemplateSet};
use libfuzzer_sys::fuzz_target;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

const XML: TemplateKind = TemplateKind::Payload(MimeType::Xml);
/// The value goes in once as content and once as an attribute.
const TEMPLATE: &str = "<?xml version=\"1.0\"?>\n<r a=\"{{ v }}\">{{ v }}</r>\n";

static SET: LazyLock<TemplateSet> = LazyLock::new(TemplateSet::new);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        if check_output(XML, text).is_ok() {
            let mut reader = Reader::from_str(text);
            loop {
                match reader.read_event() {
                    Ok(Event::Eof) => break,
                    Ok(_) => {}
                    Err(e) => panic!("accepted, but quick-xml cannot read it: {e}"),
                }
            }
        }
        return;
    }
    let ctx = ContextValue::from_serialize(serde_json::json!({ "v": text }));
    let out = match SET.render_once(XML, TEMPLATE, &ctx) {
        Ok(out) => out,
        Err(e) => panic!("an inserted value broke the XML: {e}"),
    };
    let expected: String = text
        .chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect();
    let (attribute, content) = read_back(&out);
    assert_eq!(content, expected, "content of {out:?}");
    assert_eq!(attribute, expected, "attribute of {out:?}");
});

/// XML 1.0's `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The root element's `a` attribute and its text content, references resolved.
fn read_back(xml: &str) -> (String, String) {
    let mut reader = Reader::from_str(xml);
    let mut attribute = String::new();
    let mut content = String::new();
    let mut depth = 0usize;
    loop {
        match reader
            .read_event()
            .expect("the output was checked well-formed")
        {
            Event::Start(e) => {
                depth += 1;
                for attr in e.attributes() {
                    let attr = attr.expect("checked");
                    if attr.key.as_ref() == "a" {
                        attribute = attr
                            .normalized_value(XmlVersion::Implicit1_0)
                            .expect("checked")
                            .into_owned();
                    }
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) if depth > 0 => content.push_str(&t),
            Event::GeneralRef(r) if depth > 0 => match r.resolve_char_ref().expect("checked") {
                Some(c) => content.push(c),
                None => content.push(match &*r {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    other => panic!("unexpected entity &{other};"),
                }),
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (attribute, content)
}

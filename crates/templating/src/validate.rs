//! Rendered output must be what its kind promises: a receiver never gets broken JSON or XML,
//! and a header value never smuggles in a second header.

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::escape::is_xml_char;

/// Why output is invalid, and the byte offset in the output where it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub offset: usize,
    pub message: String,
}

/// Checks that `out` is one well-formed JSON document.
pub(crate) fn json(out: &str) -> Result<(), Invalid> {
    serde_json::from_str::<serde::de::IgnoredAny>(out)
        .map(drop)
        .map_err(|e| {
            // serde_json appends " at line L column C"; the output position is given separately.
            let text = e.to_string();
            let message = match text.rfind(" at line ") {
                Some(cut) => text[..cut].to_owned(),
                None => text,
            };
            Invalid {
                // An early end is reported at the last byte; it is the end that is missing.
                offset: if e.is_eof() {
                    out.len()
                } else {
                    offset_of(out, e.line(), e.column())
                },
                message: format!("the output is not valid JSON: {message}"),
            }
        })
}

/// Byte offset of serde_json's 1-based line and (byte) column.
fn offset_of(out: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        out.match_indices('\n')
            .nth(line - 2)
            .map_or(out.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(out.len())
}

/// Checks that `out` is one well-formed XML 1.0 document: legal characters, one root element,
/// matching end tags, known entities, nothing but whitespace, comments and processing
/// instructions outside the root.
pub(crate) fn xml(out: &str) -> Result<(), Invalid> {
    if let Some((offset, c)) = out.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        return Err(invalid_xml(
            offset,
            format!("character U+{:04X} is not allowed in XML", c as u32),
        ));
    }
    let mut reader = Reader::from_str(out);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    let mut depth = 0usize;
    let mut root_seen = false;
    let mut first = true;
    loop {
        let start = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(invalid_xml(reader.error_position() as usize, e.to_string())),
        };
        let is_first = std::mem::replace(&mut first, false);
        match event {
            Event::Decl(_) if !is_first || start != 0 => {
                return Err(invalid_xml(
                    start,
                    "the XML declaration must come first".into(),
                ))
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 && root_seen {
                    return Err(invalid_xml(
                        start,
                        "a second root element; an XML document has exactly one".into(),
                    ));
                }
                root_seen = true;
                check_attributes(e, start)?;
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(ref t) if depth == 0 && t.chars().any(|c| !c.is_ascii_whitespace()) => {
                return Err(invalid_xml(start, "text outside the root element".into()));
            }
            Event::GeneralRef(ref r) => {
                if depth == 0 {
                    return Err(invalid_xml(start, "text outside the root element".into()));
                }
                check_reference(r, start)?;
            }
            Event::CData(_) if depth == 0 => {
                return Err(invalid_xml(start, "CDATA outside the root element".into()))
            }
            Event::Eof => {
                if depth > 0 {
                    return Err(invalid_xml(
                        out.len(),
                        format!("{depth} element(s) not closed"),
                    ));
                }
                if !root_seen {
                    return Err(invalid_xml(out.len(), "no root element".into()));
                }
                return Ok(());
            }
            _ => {}
        }
    }
}

/// An element's attributes: no `<` in a value, and no character reference XML does not allow.
fn check_attributes(e: &BytesStart<'_>, start: usize) -> Result<(), Invalid> {
    for attr in e.attributes() {
        let attr = attr.map_err(|e| invalid_xml(start, e.to_string()))?;
        if attr.value.contains('<') {
            return Err(invalid_xml(start, "`<` in an attribute value".into()));
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| invalid_xml(start, e.to_string()))?;
        if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
            return Err(invalid_xml(
                start,
                format!(
                    "character reference to U+{:04X}, which XML does not allow",
                    c as u32
                ),
            ));
        }
    }
    Ok(())
}

/// A reference in text: a character XML allows, or one of the five predefined entities.
fn check_reference(r: &BytesRef<'_>, start: usize) -> Result<(), Invalid> {
    match r.resolve_char_ref() {
        Ok(Some(c)) if is_xml_char(c) => Ok(()),
        Ok(Some(c)) => Err(invalid_xml(
            start,
            format!(
                "character reference to U+{:04X}, which XML does not allow",
                c as u32
            ),
        )),
        Ok(None) => {
            let name: &str = r;
            if !matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") {
                return Err(invalid_xml(
                    start,
                    format!("unknown entity &{name}; (only &amp; &lt; &gt; &quot; &apos; and character references)"),
                ));
            }
            Ok(())
        }
        Err(e) => Err(invalid_xml(start, e.to_string())),
    }
}

fn invalid_xml(offset: usize, message: String) -> Invalid {
    Invalid {
        offset,
        message: format!("the output is not well-formed XML: {message}"),
    }
}

/// Checks a rendered header value: visible ASCII, spaces and tabs only.
pub(crate) fn header(out: &str) -> Result<(), Invalid> {
    match out
        .char_indices()
        .find(|(_, c)| !(*c == '\t' || (' '..='~').contains(c)))
    {
        Some((offset, c)) => Err(Invalid {
            offset,
            message: format!(
                "the header value holds {c:?}; only visible ASCII, spaces and tabs are allowed \
                 (inserted values are made safe, text written in the template is not)"
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_carry_the_output_offset() {
        assert!(json(r#"{"a": [1, 2]}"#).is_ok());
        let err = json("{\"a\": 1\n \"b\": 2}").unwrap_err();
        assert_eq!(err.offset, 9, "{err:?}");
        assert!(
            err.message
                .starts_with("the output is not valid JSON: expected"),
            "{err:?}"
        );
        let err = json("{\"a\": ").unwrap_err();
        assert_eq!(err.offset, 6);
    }

    #[test]
    fn well_formed_xml_passes() {
        for doc in [
            "<a/>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"1 &amp; 2\">t &lt; &#x1F389; <b/><![CDATA[<x>]]></a>\n",
            "<!-- c --><a>&apos;&quot;</a><?pi x?>",
            "<a>&#9;&#10;&#13;🎉</a>",
        ] {
            assert_eq!(xml(doc), Ok(()), "{doc}");
        }
    }

    #[test]
    fn malformed_xml_is_refused_with_an_offset() {
        let cases = [
            ("<a></b>", "not well-formed"),
            ("<a>", "not closed"),
            ("<a/><b/>", "second root"),
            ("<a/>tail", "outside the root"),
            ("text<a/>", "outside the root"),
            ("", "no root"),
            ("<a>&nbsp;</a>", "unknown entity"),
            ("<a>& b</a>", "not well-formed"),
            ("<a>\u{1}</a>", "U+0001"),
            ("<a>&#1;</a>", "U+0001"),
            ("<a x=\"&#0;\"/>", "not well-formed"),
            ("<a/><?xml version=\"1.0\"?>", "must come first"),
            ("<a><!-- a -- b --></a>", "not well-formed"),
        ];
        for (doc, expected) in cases {
            let err = xml(doc).expect_err(doc);
            assert!(err.message.contains(expected), "{doc}: {err:?}");
            assert!(err.offset <= doc.len());
        }
        assert_eq!(xml("<a>\n<b></c></a>").unwrap_err().offset, 7);
    }

    #[test]
    fn header_values_are_visible_ascii() {
        assert!(header("Bearer abc\t1").is_ok());
        assert_eq!(header("a\r\nb").unwrap_err().offset, 1);
        assert_eq!(header("café").unwrap_err().offset, 3);
    }
}

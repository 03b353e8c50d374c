//! How a value inserted by `{{ ... }}` is written, per output kind.
//!
//! minijinja decides a template's auto-escape mode from its name when it is compiled (see
//! `render::template_name`); the formatter here reads that mode and writes the value so it
//! cannot break the document:
//!
//! - JSON: the value JSON-encoded (strings with their quotes); missing values are `null`.
//! - XML: the value's text with `& < > " '` escaped and characters XML 1.0 forbids replaced by
//!   U+FFFD (`\t \n \r` as character references, so attribute values keep them too).
//! - text: the value's text as it is.
//! - URL: the value's text percent-encoded (everything but RFC 3986's unreserved characters).
//! - header: the value's text with control characters (CR, LF, ...) turned into spaces, so a
//!   merge field can never start a new header line, and non-ASCII percent-encoded.
//!
//! A value's text: strings as they are, `true`/`false`, numbers, nothing for missing values
//! (`none` and undefined), and JSON for objects and arrays. Strings marked safe (`| safe`) are
//! written raw in every mode.

use std::borrow::Cow;
use std::fmt::{self, Write};

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Error, ErrorKind, Output, State};

use crate::budget::{over_bytes, Budget, CappedString};
use crate::context::JsonNode;
use crate::locate;

/// An output kind's escaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Json,
    Xml,
    Text,
    Url,
    Header,
}

impl Mode {
    /// The auto-escape value templates of this mode are compiled with; `locating` marks the
    /// copy rendered to find where invalid output came from (see [`crate::locate`]).
    pub(crate) fn auto_escape(self, locating: bool) -> AutoEscape {
        match (self, locating) {
            (Mode::Json, false) => AutoEscape::Custom("json"),
            (Mode::Xml, false) => AutoEscape::Custom("xml"),
            (Mode::Text, false) => AutoEscape::None,
            (Mode::Url, false) => AutoEscape::Custom("url"),
            (Mode::Header, false) => AutoEscape::Custom("header"),
            (Mode::Json, true) => AutoEscape::Custom("json~"),
            (Mode::Xml, true) => AutoEscape::Custom("xml~"),
            (Mode::Text, true) => AutoEscape::Custom("text~"),
            (Mode::Url, true) => AutoEscape::Custom("url~"),
            (Mode::Header, true) => AutoEscape::Custom("header~"),
        }
    }

    /// The mode of a template being rendered, and whether it is a locating copy.
    pub(crate) fn of(auto_escape: AutoEscape) -> (Mode, bool) {
        let name = match auto_escape {
            AutoEscape::Custom(name) => name,
            _ => return (Mode::Text, false),
        };
        let (name, locating) = match name.strip_suffix('~') {
            Some(stripped) => (stripped, true),
            None => (name, false),
        };
        let mode = match name {
            "json" => Mode::Json,
            "xml" => Mode::Xml,
            "url" => Mode::Url,
            "header" => Mode::Header,
            _ => Mode::Text,
        };
        (mode, locating)
    }

    /// The mode of the template `state` renders.
    pub(crate) fn current(state: &State) -> Mode {
        Mode::of(state.auto_escape()).0
    }
}

/// The environment's formatter: every `{{ ... }}` goes through here, and what it writes is
/// charged to the render budget (the output, or a `{% set %}` block capturing it).
pub(crate) fn formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    let (mode, locating) = Mode::of(state.auto_escape());
    let budget = Budget::current();
    if locating {
        let mut text = CappedString::new(budget.left());
        write_value(&mut text, mode, value)?;
        locate::before_emission(text.buf.len())?;
        return out.write_str(&text.buf).map_err(write_error);
    }
    if crate::budget::text_surely_exceeds(value, budget.left()) {
        return Err(over_bytes("writing this value"));
    }
    let mut metered = Metered {
        out,
        budget: &budget,
        over: false,
    };
    let written = write_value(&mut metered, mode, value);
    if metered.over {
        return Err(over_bytes("writing this value"));
    }
    written
}

/// Charges every write to the budget; refuses the write that would pass it.
struct Metered<'a, W: ?Sized> {
    out: &'a mut W,
    budget: &'a Budget,
    over: bool,
}

impl<W: Write + ?Sized> Write for Metered<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.budget.charge(s.len(), String::new).is_err() {
            self.over = true;
            return Err(fmt::Error);
        }
        self.out.write_str(s)
    }
}

/// Escapes everything written through it for `mode` (JSON text of lists and maps in the
/// text-like modes).
struct Escaping<'a, W: ?Sized> {
    out: &'a mut W,
    mode: Mode,
}

impl<W: Write + ?Sized> Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.mode {
            Mode::Xml => xml_escape_into(self.out, s),
            Mode::Url => percent_encode_into(self.out, s),
            Mode::Header => header_escape_into(self.out, s),
            Mode::Json | Mode::Text => self.out.write_str(s),
        }
    }
}

/// `io::Write` over a `fmt::Write`, for serde_json (which writes whole UTF-8 pieces).
struct Bytes<'a, W: ?Sized>(&'a mut W);

impl<W: Write + ?Sized> std::io::Write for Bytes<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0
            .write_str(text)
            .map_err(|_| std::io::Error::other("output refused"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_error(_: fmt::Error) -> Error {
    Error::new(ErrorKind::WriteFailure, "could not write the output")
}

/// Writes `value` escaped for `mode`.
pub(crate) fn write_value<W: Write + ?Sized>(
    out: &mut W,
    mode: Mode,
    value: &Value,
) -> Result<(), Error> {
    if value.is_safe() {
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(write_error);
    }
    if mode != Mode::Json
        && matches!(
            value.kind(),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
        )
    {
        // Lists and maps are written as JSON text, escaped as it streams (a list may repeat
        // one large item many times: it is never built whole).
        return write_json(&mut Escaping { out, mode }, value);
    }
    match mode {
        Mode::Json => write_json(out, value),
        Mode::Text => out.write_str(&text_of(value)).map_err(write_error),
        Mode::Xml => xml_escape_into(out, &text_of(value)).map_err(write_error),
        Mode::Url => percent_encode_into(out, &text_of(value)).map_err(write_error),
        Mode::Header => header_escape_into(out, &text_of(value)).map_err(write_error),
    }
}

/// A value's text (see the module docs).
pub(crate) fn text_of(value: &Value) -> Cow<'_, str> {
    match value.kind() {
        ValueKind::String => Cow::Borrowed(value.as_str().unwrap_or_default()),
        ValueKind::Undefined | ValueKind::None => Cow::Borrowed(""),
        ValueKind::Bool => Cow::Borrowed(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => Cow::Owned(value.to_string()),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => Cow::Owned(json_of(value)),
        _ => Cow::Owned(value.to_string()),
    }
}

/// A value as JSON text; entity objects serialise straight from the entity.
pub(crate) fn json_of(value: &Value) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_json(&mut out, value);
    out
}

/// A value's JSON text if it is at most `cap` bytes long.
pub(crate) fn json_capped(value: &Value, cap: usize) -> Option<String> {
    if crate::budget::text_surely_exceeds(value, cap) {
        return None;
    }
    let mut out = CappedString::new(cap);
    write_json(&mut out, value).ok()?;
    Some(out.buf)
}

/// [`text_of`], refused when a list's or map's text would not fit in what the render's budget
/// has left (they can be far larger as text than what they hold).
pub(crate) fn text_charged<'v>(value: &'v Value) -> Result<Cow<'v, str>, Error> {
    if !matches!(
        value.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
    ) {
        return Ok(text_of(value));
    }
    json_capped(value, Budget::current().left())
        .map(Cow::Owned)
        .ok_or_else(|| over_bytes("writing this value as text"))
}

fn write_json<W: Write + ?Sized>(out: &mut W, value: &Value) -> Result<(), Error> {
    let done = match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.write_str("null"),
        ValueKind::Bool => out.write_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::String => json_string_into(out, value.as_str().unwrap_or_default()),
        ValueKind::Number if value.is_integer() => write!(out, "{value}"),
        ValueKind::Number => {
            let number = f64::try_from(value.clone())
                .ok()
                .and_then(serde_json::Number::from_f64);
            match number {
                Some(n) => write!(out, "{n}"),
                // NaN and infinities have no JSON form.
                None => out.write_str("null"),
            }
        }
        _ => match value.downcast_object_ref::<JsonNode>() {
            Some(node) => out.write_str(&node.to_json()),
            None => {
                return serde_json::to_writer(Bytes(out), value).map_err(|e| {
                    if e.is_io() {
                        write_error(fmt::Error)
                    } else {
                        Error::new(
                            ErrorKind::BadSerialization,
                            "cannot write the value as JSON",
                        )
                        .with_source(e)
                    }
                })
            }
        },
    };
    done.map_err(write_error)
}

/// A JSON string literal, quotes included.
pub(crate) fn json_string_into<W: Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        if escape.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(escape)?;
        }
        start = i + 1;
    }
    out.write_str(&s[start..])?;
    out.write_char('"')
}

/// Whether XML 1.0 allows `c` in a document at all.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML-escapes text for element content and attribute values alike.
pub(crate) fn xml_escape_into<W: Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            // Parsers normalise raw CR and, in attributes, TAB and LF: references keep them.
            '\t' => "&#9;",
            '\n' => "&#10;",
            '\r' => "&#13;",
            // Not even a character reference may carry these: a parser would reject it.
            c if !is_xml_char(c) => "\u{FFFD}",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        out.write_str(escape)?;
        start = i + c.len_utf8();
    }
    out.write_str(&s[start..])
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode_into<W: Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            continue;
        }
        // Unreserved runs are ASCII, so these are char boundaries (an empty run between two
        // bytes of one character is skipped).
        if start < i {
            out.write_str(&s[start..i])?;
        }
        write!(out, "%{b:02X}")?;
        start = i + 1;
    }
    out.write_str(&s[start..])
}

/// Header-value text: control characters become spaces, non-ASCII is percent-encoded.
pub(crate) fn header_escape_into<W: Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    for c in s.chars() {
        if c.is_ascii_control() {
            out.write_char(' ')?;
        } else if c.is_ascii() {
            out.write_char(c)?;
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                write!(out, "%{b:02X}")?;
            }
        }
    }
    Ok(())
}

/// `value` escaped for `mode`, as a string marked safe (so it is not escaped again).
pub(crate) fn escaped(mode: Mode, value: &Value) -> Result<Value, Error> {
    let mut out = String::new();
    write_value(&mut out, mode, value)?;
    Ok(Value::from_safe_string(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(f: fn(&mut String, &str) -> fmt::Result, s: &str) -> String {
        let mut out = String::new();
        f(&mut out, s).unwrap();
        out
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_control_characters() {
        let hostile = "a\"b\\c\nd\u{1}e ☃ 🎉 </x> ]]>";
        let out = esc(json_string_into, hostile);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), hostile);
        assert!(out.contains("\\u0001"));
    }

    #[test]
    fn xml_escaping_covers_markup_and_forbidden_characters() {
        assert_eq!(
            esc(xml_escape_into, "<a href=\"x\">'&'</a> ]]>"),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt; ]]&gt;"
        );
        assert_eq!(
            esc(xml_escape_into, "a\u{0}b\u{1b}c\td\u{FFFE}"),
            "a\u{FFFD}b\u{FFFD}c&#9;d\u{FFFD}"
        );
        assert_eq!(esc(xml_escape_into, "🎉 ☃"), "🎉 ☃");
    }

    #[test]
    fn urls_and_headers_encode_what_would_break_them() {
        assert_eq!(esc(percent_encode_into, "a/b c?é"), "a%2Fb%20c%3F%C3%A9");
        assert_eq!(esc(percent_encode_into, "A-z_0.9~"), "A-z_0.9~");
        assert_eq!(
            esc(header_escape_into, "x\r\nSet-Cookie: a é"),
            "x  Set-Cookie: a %C3%A9"
        );
    }

    #[test]
    fn modes_round_trip_through_auto_escape() {
        for mode in [Mode::Json, Mode::Xml, Mode::Text, Mode::Url, Mode::Header] {
            for locating in [false, true] {
                let (back, loc) = Mode::of(mode.auto_escape(locating));
                assert_eq!(back, mode);
                assert_eq!(loc, locating);
            }
        }
    }
}

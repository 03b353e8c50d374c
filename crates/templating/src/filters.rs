//! The filters hookflow adds to (or changes in) minijinja's set, documented in the README's
//! "Templates" section.
//!
//! Filters that produce escaped text know the template's mode: their output is marked safe
//! where it is already escaped for that mode (`tojson` in JSON, `xml_escape` in XML), and is
//! plain text elsewhere so the mode's own escaping still applies (`xml_escape` inside a JSON
//! string value comes out JSON-encoded). Missing values (undefined or `none`) pass through the
//! formatting filters untouched, so they still render as `null` or nothing.

use std::fmt::Write;

use chrono::format::StrftimeItems;
use chrono::{DateTime, FixedOffset};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::budget::{over_bytes, Budget, ITEM_BYTES};
use crate::escape::{self, json_capped, text_charged, Mode};

/// Most decimals `numberformat` writes.
const MAX_DECIMALS: usize = 20;
/// `datetimeformat`'s format when none is given.
const DEFAULT_DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("tojson", tojson);
    env.add_filter("xml_escape", xml_escape);
    env.add_filter("escape", escape_filter);
    env.add_filter("e", escape_filter);
    env.add_filter("urlencode", urlencode);
    env.add_filter("datetimeformat", datetimeformat);
    env.add_filter("numberformat", numberformat);
    env.add_filter("default", default);
    env.add_filter("d", default);
    guarded::register(env);
    crate::rules::register_tests(env);
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// Safe (already escaped) in `safe_in`, plain text elsewhere.
fn mode_aware(state: &State, safe_in: Mode, text: String) -> Value {
    if Mode::current(state) == safe_in {
        Value::from_safe_string(text)
    } else {
        Value::from(text)
    }
}

/// `value | tojson` or `value | tojson(indent=2)`: the value as JSON text.
fn tojson(
    state: &State,
    value: &Value,
    indent: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let indent = match indent {
        Some(indent) => Some(indent),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.kind() == ValueKind::Bool => v.is_true().then_some(2),
        Some(v) => Some(
            usize::try_from(v.clone())
                .map_err(|_| invalid(format!("tojson: indent must be a number, not {v}")))?
                .min(16),
        ),
    };
    let budget = Budget::current();
    let compact = match json_capped(value, budget.left()) {
        Some(text) => text,
        None => return Err(over_bytes("tojson")),
    };
    budget.charge(compact.len(), || "tojson".into())?;
    let text = match indent {
        None => compact,
        Some(width) => {
            let parsed: serde_json::Value =
                serde_json::from_str(&compact).map_err(|e| invalid(format!("tojson: {e}")))?;
            // Each line gains at most one indent per nesting level; bound it before building.
            let depth = compact.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
            let lines = compact
                .bytes()
                .filter(|b| matches!(b, b',' | b'[' | b'{'))
                .count();
            let estimate = compact.len().saturating_add(
                lines
                    .saturating_add(1)
                    .saturating_mul(depth.saturating_mul(width) + 1),
            );
            budget.charge(estimate, || "tojson with indent".into())?;
            let spaces = " ".repeat(width);
            let mut buf = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(
                &mut buf,
                serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes()),
            );
            serde::Serialize::serialize(&parsed, &mut ser)
                .map_err(|e| invalid(format!("tojson: {e}")))?;
            String::from_utf8(buf).map_err(|e| invalid(format!("tojson: {e}")))?
        }
    };
    Ok(mode_aware(state, Mode::Json, text))
}

/// `value | xml_escape`: the value's text with XML's special characters escaped.
fn xml_escape(state: &State, value: &Value) -> Result<Value, Error> {
    let text = text_charged(value)?;
    Budget::current().charge(text.len().saturating_mul(6), || "xml_escape".into())?;
    let mut out = String::new();
    escape::xml_escape_into(&mut out, &text)
        .map_err(|_| invalid("xml_escape: could not write".into()))?;
    Ok(mode_aware(state, Mode::Xml, out))
}

/// `value | escape` (`e`): escaped for the template's own mode, and marked safe.
fn escape_filter(state: &State, value: &Value) -> Result<Value, Error> {
    let text = text_charged(value)?;
    Budget::current().charge(text.len().saturating_mul(6), || "escape".into())?;
    escape::escaped(Mode::current(state), value)
}

/// `value | urlencode`: the value's text percent-encoded.
fn urlencode(state: &State, value: &Value) -> Result<Value, Error> {
    let text = text_charged(value)?;
    Budget::current().charge(text.len().saturating_mul(3), || "urlencode".into())?;
    let mut out = String::new();
    escape::percent_encode_into(&mut out, &text)
        .map_err(|_| invalid("urlencode: could not write".into()))?;
    Ok(mode_aware(state, Mode::Url, out))
}

/// `value | datetimeformat("%d.%m.%Y")`: an RFC 3339 string (or Unix seconds) formatted with
/// strftime syntax, keeping the value's UTC offset.
fn datetimeformat(value: &Value, format: Option<&str>) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(value.clone());
    }
    // No strftime field is longer than a few dozen bytes.
    let format_len = format.map_or(0, str::len);
    Budget::current().charge(format_len.saturating_mul(32).saturating_add(64), || {
        "datetimeformat".into()
    })?;
    let time: DateTime<FixedOffset> = match value.kind() {
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            DateTime::parse_from_rfc3339(text).map_err(|e| {
                invalid(format!(
                    "datetimeformat: {text:?} is not an RFC 3339 date-time ({e})"
                ))
            })?
        }
        ValueKind::Number => {
            let secs = i64::try_from(value.clone())
                .map_err(|_| invalid(format!("datetimeformat: {value} is not whole seconds")))?;
            DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| invalid(format!("datetimeformat: {secs} is out of range")))?
                .fixed_offset()
        }
        _ => {
            return Err(invalid(format!(
                "datetimeformat: expects an RFC 3339 string, not {}",
                value.kind()
            )))
        }
    };
    let format = format.unwrap_or(DEFAULT_DATETIME_FORMAT);
    let items = StrftimeItems::new(format).parse().map_err(|_| {
        invalid(format!(
            "datetimeformat: {format:?} is not a valid strftime format"
        ))
    })?;
    let mut out = String::new();
    write!(out, "{}", time.format_with_items(items.iter())).map_err(|_| {
        invalid(format!(
            "datetimeformat: {format:?} cannot format this date-time"
        ))
    })?;
    Ok(Value::from(out))
}

/// `value | numberformat(2)` or `numberformat(2, ",", ".")`: a number as text with a fixed
/// number of decimals, a decimal point and a thousands separator.
fn numberformat(
    value: &Value,
    decimals: Option<usize>,
    decimal_point: Option<&str>,
    thousands_sep: Option<&str>,
) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(value.clone());
    }
    let decimals = decimals.unwrap_or(0).min(MAX_DECIMALS);
    let plain = match value.kind() {
        ValueKind::Number if value.is_integer() && decimals == 0 => value.to_string(),
        ValueKind::Number => {
            let n = f64::try_from(value.clone())
                .map_err(|_| invalid(format!("numberformat: {value} is not a number")))?;
            format!("{n:.decimals$}")
        }
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            match text.parse::<f64>() {
                Ok(n) if n.is_finite() => format!("{n:.decimals$}"),
                _ => return Err(invalid(format!("numberformat: {text:?} is not a number"))),
            }
        }
        _ => {
            return Err(invalid(format!(
                "numberformat: expects a number, not {}",
                value.kind()
            )))
        }
    };
    let separators = decimal_point.map_or(1, str::len).saturating_add(
        thousands_sep
            .map_or(0, str::len)
            .saturating_mul(plain.len() / 3 + 1),
    );
    Budget::current().charge(plain.len().saturating_add(separators), || {
        "numberformat".into()
    })?;
    Ok(Value::from(group_number(
        &plain,
        decimal_point.unwrap_or("."),
        thousands_sep.unwrap_or(""),
    )))
}

/// Re-punctuates `-1234.50` with the given decimal point and thousands separator.
fn group_number(plain: &str, decimal_point: &str, thousands_sep: &str) -> String {
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let mut out = String::with_capacity(plain.len() + int.len() / 3 * thousands_sep.len() + 2);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push_str(thousands_sep);
        }
        out.push(c);
    }
    if let Some(frac) = frac {
        out.push_str(decimal_point);
        out.push_str(frac);
    }
    out
}

/// `value | default("x")` (`d`): `"x"` when the value is missing: undefined or `none` (a merge
/// field the entity lacks, or sent as null). With `default("x", true)` also when it is falsy.
fn default(value: &Value, other: Option<Value>, falsy: Option<bool>) -> Value {
    let missing =
        value.is_undefined() || value.is_none() || (falsy.unwrap_or(false) && !value.is_true());
    if missing {
        other.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_punctuated() {
        assert_eq!(group_number("-1234567.891", ",", "."), "-1.234.567,891");
        assert_eq!(group_number("123", ".", ","), "123");
        assert_eq!(group_number("1234", ".", ""), "1234");
        assert_eq!(group_number("100000", ".", " "), "100 000");
    }

    #[test]
    fn numberformat_rounds_and_passes_missing_values() {
        let f = |v: Value, d| numberformat(&v, Some(d), None, None).unwrap().to_string();
        assert_eq!(f(Value::from(12.345), 2), "12.35");
        assert_eq!(f(Value::from(7), 2), "7.00");
        assert_eq!(f(Value::from("3.5"), 0), "4");
        assert_eq!(f(Value::from(i64::MAX), 0), i64::MAX.to_string());
        assert!(numberformat(&Value::UNDEFINED, None, None, None)
            .unwrap()
            .is_undefined());
        assert!(numberformat(&Value::from("x"), None, None, None).is_err());
    }

    #[test]
    fn datetimes_are_formatted_in_their_own_offset() {
        let f = |v: Value, fmt| datetimeformat(&v, fmt).map(|v| v.to_string());
        assert_eq!(
            f(
                Value::from("2026-11-27T10:20:30+01:00"),
                Some("%d.%m.%Y %H:%M")
            )
            .unwrap(),
            "27.11.2026 10:20"
        );
        assert_eq!(
            f(Value::from("2026-11-27T10:20:30Z"), None).unwrap(),
            "2026-11-27 10:20:30"
        );
        assert_eq!(f(Value::from(0), Some("%Y")).unwrap(), "1970");
        assert!(f(Value::from("yesterday"), None).is_err());
        assert!(f(Value::from("2026-11-27T10:20:30Z"), Some("%Q")).is_err());
        assert!(datetimeformat(&Value::from(()), None).unwrap().is_none());
    }

    #[test]
    fn default_replaces_missing_and_null_values() {
        assert_eq!(
            default(&Value::UNDEFINED, Some(Value::from(1)), None),
            Value::from(1)
        );
        assert_eq!(
            default(&Value::from(()), Some(Value::from(1)), None),
            Value::from(1)
        );
        assert_eq!(
            default(&Value::from(0), Some(Value::from(1)), None),
            Value::from(0)
        );
        assert_eq!(
            default(&Value::from(0), Some(Value::from(1)), Some(true)),
            Value::from(1)
        );
        assert_eq!(default(&Value::UNDEFINED, None, None), Value::from(""));
    }
}

/// minijinja's own filters that can make a value larger than their input, each charged to the
/// render budget for its result *before* it is built (see [`crate::budget`]), then handed to
/// the original. Filters whose results are no larger than their inputs (`first`, `sort`,
/// `unique`, `map`, ...) need no guard: what they return shares the items it was given.
mod guarded {
    use std::borrow::Cow;
    use std::sync::Arc;

    use minijinja::filters as builtin;
    use minijinja::value::{Kwargs, Rest, StringInput, Value, ValueKind};
    use minijinja::{Environment, Error, State};

    use super::{over_bytes, ITEM_BYTES};
    use crate::budget::{display_capped, Budget};

    pub(super) fn register(env: &mut Environment<'static>) {
        env.add_filter("replace", replace);
        env.add_filter("join", join);
        env.add_filter("indent", indent);
        env.add_filter("format", format);
        env.add_filter("pprint", pprint);
        env.add_filter("string", string);
        env.add_filter("list", list);
        env.add_filter("batch", batch);
        env.add_filter("slice", slice);
        env.add_filter("split", split);
        env.add_filter("lines", lines);
        env.add_filter("upper", upper);
        env.add_filter("lower", lower);
        env.add_filter("title", title);
        env.add_filter("capitalize", capitalize);
        env.add_filter("trim", trim);
        env.add_filter("dictsort", dictsort);
    }

    fn replace(
        state: &State,
        value: StringInput<'_>,
        from: StringInput<'_>,
        to: StringInput<'_>,
    ) -> Result<Value, Error> {
        let text = value.as_str();
        let (from_len, to_len) = (from.as_str().len(), to.as_str().len());
        let hits = if from_len == 0 {
            text.chars().count() + 1
        } else {
            text.matches(from.as_str()).count()
        };
        let size = (text.len() - hits.saturating_mul(from_len).min(text.len()))
            .saturating_add(hits.saturating_mul(to_len));
        Budget::current().charge(size, || format!("replace ({hits} replacements)"))?;
        builtin::replace(state, value, from, to)
    }

    fn join(state: &State, value: &Value, joiner: Option<StringInput<'_>>) -> Result<Value, Error> {
        let budget = Budget::current();
        let sep = joiner.as_ref().map_or(0, |j| j.as_str().len());
        let mut size = 0usize;
        if let Ok(items) = value.try_iter() {
            for (i, item) in items.enumerate() {
                let len = match item.as_str() {
                    Some(s) => s.len(),
                    None => display_capped(&item, budget.left().saturating_sub(size))
                        .map_or(usize::MAX, |s| s.len()),
                };
                size = size
                    .saturating_add(len)
                    .saturating_add(if i > 0 { sep } else { 0 });
                if size > budget.left() {
                    return Err(over_bytes("join"));
                }
            }
        }
        budget.charge(size, || "join".into())?;
        builtin::join(state, value, joiner)
    }

    fn indent(
        value: StringInput<'_>,
        width: Option<usize>,
        indent_first_line: Option<bool>,
        indent_blank_lines: Option<bool>,
        kwargs: Kwargs,
    ) -> Result<Value, Error> {
        let w = match width {
            Some(w) => w,
            None => kwargs.peek::<Option<usize>>("width")?.unwrap_or(4),
        };
        let lines = value.as_str().bytes().filter(|&b| b == b'\n').count() + 1;
        let size = value
            .as_str()
            .len()
            .saturating_add(lines.saturating_mul(w.saturating_add(1)));
        Budget::current().charge(size, || format!("indent by {w}"))?;
        builtin::indent(value, width, indent_first_line, indent_blank_lines, kwargs)
    }

    fn format(state: &State, format_str: &Value, args: Rest<Value>) -> Result<Value, Error> {
        let budget = Budget::current();
        let spec = format_str.as_str().unwrap_or_default();
        // Widths and precisions are the numbers in a conversion spec; they pad the output.
        let mut widths = 0usize;
        let mut number = 0usize;
        for b in spec.bytes() {
            if b.is_ascii_digit() {
                number = number
                    .saturating_mul(10)
                    .saturating_add(usize::from(b - b'0'));
            } else {
                widths = widths.saturating_add(number);
                number = 0;
            }
        }
        widths = widths.saturating_add(number);
        let mut size = spec.len().saturating_add(widths);
        for arg in args.iter() {
            let len = display_capped(arg, budget.left()).map_or(usize::MAX, |s| s.len());
            size = size.saturating_add(len);
        }
        budget.charge(size, || "format".into())?;
        builtin::format(state, format_str, args)
    }

    fn pprint(value: &Value) -> Result<Value, Error> {
        let budget = Budget::current();
        let mut out = crate::budget::CappedString::new(budget.left());
        if std::fmt::write(&mut out, format_args!("{value:#?}")).is_err() {
            return Err(over_bytes("pprint"));
        }
        budget.charge(out.buf.len(), || "pprint".into())?;
        Ok(Value::from(out.buf))
    }

    fn string(state: &State, value: &Value) -> Result<Value, Error> {
        if value.kind() == ValueKind::String {
            return builtin::string(state, value);
        }
        let budget = Budget::current();
        match display_capped(value, budget.left()) {
            Some(text) => {
                budget.charge(text.len(), || "string".into())?;
                builtin::string(state, value)
            }
            None => Err(over_bytes("string")),
        }
    }

    fn items_of(value: &Value) -> usize {
        match value.as_str() {
            Some(s) => s.chars().count(),
            None => value.len().unwrap_or(0),
        }
    }

    fn list(state: &State, value: Value) -> Result<Value, Error> {
        let items = items_of(&value);
        Budget::current().charge(items.saturating_mul(ITEM_BYTES), || {
            format!("a list of {items} items")
        })?;
        builtin::list(state, value)
    }

    fn batch(
        state: &State,
        value: Value,
        count: usize,
        fill_with: Option<Value>,
    ) -> Result<Value, Error> {
        let items = items_of(&value).saturating_add(count);
        Budget::current().charge(items.saturating_mul(ITEM_BYTES), || {
            format!("batch of {count}")
        })?;
        builtin::batch(state, value, count, fill_with)
    }

    fn slice(
        state: &State,
        value: Value,
        count: usize,
        fill_with: Option<Value>,
    ) -> Result<Value, Error> {
        let items = items_of(&value).saturating_add(count.saturating_mul(2));
        Budget::current().charge(items.saturating_mul(ITEM_BYTES), || {
            format!("slice into {count}")
        })?;
        builtin::slice(state, value, count, fill_with)
    }

    fn split(value: &Value, sep: Option<Arc<str>>, maxsplits: Option<i64>) -> Result<Value, Error> {
        let text = value.as_str().unwrap_or_default();
        let pieces = match sep.as_deref() {
            Some("") | None => text.split_whitespace().count(),
            Some(sep) => text.matches(sep).count() + 1,
        };
        Budget::current().charge(
            pieces.saturating_mul(ITEM_BYTES).saturating_add(text.len()),
            || format!("split into {pieces} pieces"),
        )?;
        builtin::split(value, sep, maxsplits)
    }

    fn lines(value: &Value) -> Result<Value, Error> {
        let text = value.as_str().unwrap_or_default();
        let pieces = text.bytes().filter(|&b| b == b'\n').count() + 1;
        Budget::current().charge(
            pieces.saturating_mul(ITEM_BYTES).saturating_add(text.len()),
            || format!("lines ({pieces})"),
        )?;
        builtin::lines(value)
    }

    /// Case mapping can grow text up to three times (`ß` to `SS`, ligatures).
    fn case(value: &str, filter: &str) -> Result<(), Error> {
        Budget::current().charge(value.len().saturating_mul(3), || filter.into())
    }

    fn upper(value: StringInput<'_>) -> Result<Value, Error> {
        case(value.as_str(), "upper")?;
        Ok(builtin::upper(value))
    }

    fn lower(value: StringInput<'_>) -> Result<Value, Error> {
        case(value.as_str(), "lower")?;
        Ok(builtin::lower(value))
    }

    fn title(value: Cow<'_, str>) -> Result<String, Error> {
        case(&value, "title")?;
        Ok(builtin::title(value))
    }

    fn capitalize(value: StringInput<'_>) -> Result<Value, Error> {
        case(value.as_str(), "capitalize")?;
        Ok(builtin::capitalize(value))
    }

    fn trim(value: StringInput<'_>, chars: Option<Cow<'_, str>>) -> Result<Value, Error> {
        Budget::current().charge(value.as_str().len(), || "trim".into())?;
        Ok(builtin::trim(value, chars))
    }

    fn dictsort(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
        let items = value.len().unwrap_or(0);
        Budget::current().charge(items.saturating_mul(3 * ITEM_BYTES), || {
            format!("dictsort of {items} items")
        })?;
        builtin::dictsort(value, kwargs)
    }
}

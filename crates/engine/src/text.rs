//! Checks of names and addresses written the way the API's OpenAPI document states them, so
//! that what the document allows is accepted and what it forbids is refused.
//!
//! JSON Schema counts a string's length in characters of the string as sent (before any
//! trimming), and its patterns have no portable notion of "whitespace" (Python's `\s` and
//! Rust's `char::is_whitespace` differ). So lengths are counted on the text as sent, and the
//! blanks trimmed are exactly [`BLANKS`], which the document's patterns list
//! (`[^ \t\n\u000b\f\r]`: "has something besides blanks").

use crate::EngineError;

/// The characters trimmed from names and addresses: ASCII whitespace, vertical tab included.
pub const BLANKS: [char; 6] = [' ', '\t', '\n', '\u{b}', '\u{c}', '\r'];

/// The document's pattern for a name: at least one character that is not a blank.
pub const NAME_PATTERN: &str = "[^ \\t\\n\\u000b\\f\\r]";

/// The document's pattern for an email address: blanks around it allowed, one `@` with text
/// (and no blanks) on both sides.
pub const EMAIL_PATTERN: &str = "^[ \\t\\n\\u000b\\f\\r]*[^@ \\t\\n\\u000b\\f\\r]+@[^@ \\t\\n\\u000b\\f\\r]+[ \\t\\n\\u000b\\f\\r]*$";

/// `text` without the blanks around it.
pub fn trim_blanks(text: &str) -> &str {
    text.trim_matches(BLANKS)
}

/// A name of 1 to `max` characters as sent, not only blanks; returns it trimmed.
pub fn check_name<'a>(field: &str, text: &'a str, max: usize) -> Result<&'a str, EngineError> {
    let trimmed = trim_blanks(text);
    if trimmed.is_empty() || text.chars().count() > max {
        return Err(EngineError::Invalid {
            field: field.to_owned(),
            message: format!("must be 1 to {max} characters, not only blanks"),
        });
    }
    Ok(trimmed)
}

/// Whether `text` is an email address as [`EMAIL_PATTERN`] says; returns it trimmed.
pub fn email_shape(text: &str) -> Option<&str> {
    let email = trim_blanks(text);
    let (local, domain) = email.split_once('@')?;
    let clean = |part: &str| !part.is_empty() && !part.contains('@') && !part.contains(BLANKS);
    (clean(local) && clean(domain)).then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_count_characters_as_sent_and_trim_only_blanks() {
        assert_eq!(check_name("name", "  Orders \t", 200).unwrap(), "Orders");
        assert!(check_name("name", " \u{b}\r\n", 200).is_err());
        assert!(check_name("name", "", 200).is_err());
        // No-break space is not a blank: the pattern's class does not list it.
        assert_eq!(check_name("name", "\u{a0}", 200).unwrap(), "\u{a0}");
        assert!(check_name("name", &"é".repeat(200), 200).is_ok());
        assert!(check_name("name", &format!("{} ", "a".repeat(200)), 200).is_err());
    }

    #[test]
    fn email_addresses_need_one_at_with_text_around_it() {
        assert_eq!(email_shape(" ann@shop.example\n"), Some("ann@shop.example"));
        for bad in ["ann", "@shop", "ann@", "a@b@c", "a n@shop", "ann@sh\top"] {
            assert_eq!(email_shape(bad), None, "{bad:?}");
        }
    }
}

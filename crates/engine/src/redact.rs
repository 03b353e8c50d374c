//! Credentials out of URLs before a URL is shown or logged.
//!
//! A receiver's URL may carry a secret: an API key in the query string (`?apikey=…`) or a
//! user and password (`https://user:pass@host/`). hookflow sends the URL as configured, but
//! wherever it echoes one (the log, an attempt's error, the queue and call pages, the API's
//! call objects, notices) it goes through [`url`], or [`urls_in`] for free text that may quote
//! URLs: the userinfo and every query and fragment value become [`URL_MASK`].
//!
//! The redaction works on the text, not on a parsed URL, so it cannot fail: malformed and
//! half-written URLs are masked all the same, and [`url_template`] reads an action's URL
//! template with its merge fields. A secret in the path (`/hooks/T0/B0/XXXX`) looks like any
//! other path and is not masked.

use std::borrow::Cow;

/// What a masked part reads as. ASCII, so that a redacted URL is still a URL.
pub const URL_MASK: &str = "***";

/// `url` with its userinfo and its query and fragment values replaced by [`URL_MASK`]:
/// `https://user:pw@host/p?apikey=k&id={{ entityId }}#t` →
/// `https://***@host/p?apikey=***&id={{ entityId }}#***`.
pub fn url(url: &str) -> String {
    redact(Syntax::Url, url)
}

/// A URL template (an action's `url`, merge fields and all) redacted like [`url`], except
/// that template tags are read as such (a `?` or `@` inside `{{ }}` is not the URL's) and a
/// value that is a single merge field (`?id={{ entityId }}`) is kept: it names data, not a
/// secret.
pub fn url_template(template: &str) -> String {
    redact(Syntax::Template, template)
}

/// How to read the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// A URL as sent: `{{` is just text (it could come from an event's data).
    Url,
    /// A URL template: `{{ }}`, `{% %}` and `{# #}` are tags.
    Template,
}

fn redact(s: Syntax, url: &str) -> String {
    let mut out = String::with_capacity(url.len() + 8);
    let rest = match scheme_end(url) {
        Some(end) => {
            out.push_str(&url[..end]);
            authority(s, &url[end..], &mut out)
        }
        None => {
            // No scheme: a user and password before the first `/` are masked all the same.
            let first = find_top(s, url, 0, b"/?#").unwrap_or(url.len());
            if rfind_top(s, &url[..first], b'@').is_some() {
                authority(s, url, &mut out)
            } else {
                url
            }
        }
    };
    let query_at = find_top(s, rest, 0, b"?#").unwrap_or(rest.len());
    let (path, tail) = rest.split_at(query_at);
    out.push_str(path);
    let (query, fragment) = match tail.strip_prefix('?') {
        Some(q) => match find_top(s, q, 0, b"#") {
            Some(i) => (Some(&q[..i]), Some(&q[i + 1..])),
            None => (Some(q), None),
        },
        None => (None, tail.strip_prefix('#')),
    };
    if let Some(query) = query {
        out.push('?');
        pairs(s, query, &mut out);
    }
    if let Some(fragment) = fragment {
        out.push('#');
        pairs(s, fragment, &mut out);
    }
    out
}

/// `text` with every URL in it (`scheme://` up to white space or a quote) passed through
/// [`url`]; borrowed when there is none. For error messages that may quote a URL.
pub fn urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let sep = search + found;
        // Back over the scheme.
        let start = text[..sep]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(sep, |(i, _)| i)
            .max(copied);
        let end = text[sep..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(text.len(), |i| sep + i);
        // Punctuation that closes a sentence or a parenthesis is not part of the URL.
        let url_end = text[..end]
            .trim_end_matches([')', ']', '.', ',', ';', ':', '!'])
            .len()
            .max(sep + 3);
        out.push_str(&text[copied..start]);
        out.push_str(&redact(Syntax::Url, &text[start..url_end]));
        copied = url_end;
        search = end.max(sep + 3);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Where the authority starts: after the first `://` (whatever precedes it, as long as it is
/// not a path), or after a leading `//`.
fn scheme_end(url: &str) -> Option<usize> {
    if url.starts_with("//") {
        return Some(2);
    }
    let sep = url.find("://")?;
    url[..sep]
        .bytes()
        .all(|b| !matches!(b, b'/' | b'?' | b'#'))
        .then_some(sep + 3)
}

/// Writes the authority at the start of `rest` with its userinfo masked; returns the rest.
fn authority<'a>(s: Syntax, rest: &'a str, out: &mut String) -> &'a str {
    let end = find_top(s, rest, 0, b"/?#\\").unwrap_or(rest.len());
    let authority = &rest[..end];
    if let Some(at) = rfind_top(s, authority, b'@') {
        out.push_str(URL_MASK);
        out.push_str(&authority[at..]);
        return &rest[end..];
    }
    if is_host_and_port(s, authority) {
        out.push_str(authority);
        return &rest[end..];
    }
    // Not `host:port`: a password holding a `/`, `?` or `#` ended the authority early
    // (`https://user:pa/ss@host/`). Up to the last `@` before the query is the userinfo;
    // without one, what follows the `:` is masked.
    let before_query = find_top(s, rest, 0, b"?#").unwrap_or(rest.len());
    if let Some(at) = rfind_top(s, &rest[..before_query], b'@') {
        out.push_str(URL_MASK);
        let after = find_top(s, rest, at, b"/?#\\").unwrap_or(rest.len());
        out.push_str(&rest[at..after]);
        return &rest[after..];
    }
    match find_top(s, authority, 0, b":") {
        Some(colon) => {
            out.push_str(&authority[..=colon]);
            out.push_str(URL_MASK);
        }
        None => out.push_str(authority),
    }
    &rest[end..]
}

/// `host`, `host:8080`, `[::1]:8080`, `{{ shop.host }}`: no room for a password.
fn is_host_and_port(s: Syntax, authority: &str) -> bool {
    let host = match rfind_top(s, authority, b':') {
        Some(colon)
            if authority[colon + 1..].bytes().all(|b| b.is_ascii_digit())
                || is_merge_field(&authority[colon + 1..]) =>
        {
            &authority[..colon]
        }
        _ => authority,
    };
    (host.starts_with('[') && host.ends_with(']')) || find_top(s, host, 0, b":").is_none()
}

/// Writes `key=value&…` with every value masked, a bare word too (it may be a token), except
/// empty values and single merge fields.
fn pairs(s: Syntax, text: &str, out: &mut String) {
    let mut start = 0;
    loop {
        let end = find_top(s, text, start, b"&").unwrap_or(text.len());
        let pair = &text[start..end];
        match find_top(s, pair, 0, b"=") {
            Some(eq) => {
                out.push_str(&pair[..=eq]);
                out.push_str(masked(s, &pair[eq + 1..]));
            }
            None => out.push_str(masked(s, pair)),
        }
        if end == text.len() {
            return;
        }
        out.push('&');
        start = end + 1;
    }
}

fn masked(s: Syntax, value: &str) -> &str {
    if value.is_empty() || (s == Syntax::Template && is_merge_field(value)) {
        value
    } else {
        URL_MASK
    }
}

/// `{{ entity.Id }}`: one variable, perhaps with a path, and nothing else.
fn is_merge_field(value: &str) -> bool {
    let Some(inner) = value.strip_prefix("{{").and_then(|v| v.strip_suffix("}}")) else {
        return false;
    };
    let mut chars = inner.trim().chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The first of `bytes` in `text` at or after `from`, outside template tags (`{{ }}`,
/// `{% %}`, `{# #}`; a tag that is never closed is plain text).
fn find_top(s: Syntax, text: &str, from: usize, bytes: &[u8]) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() {
        if let Some(after) = tag_end(text, i).filter(|_| s == Syntax::Template) {
            i = after;
        } else if bytes.contains(&b[i]) {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// The last `byte` in `text` outside template tags.
fn rfind_top(s: Syntax, text: &str, byte: u8) -> Option<usize> {
    let mut last = None;
    let mut from = 0;
    while let Some(i) = find_top(s, text, from, &[byte]) {
        last = Some(i);
        from = i + 1;
    }
    last
}

/// If a template tag opens at `i` and is closed, the index just past it.
fn tag_end(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let close = match b.get(i + 1)? {
        b'{' => "}}",
        b'%' => "%}",
        b'#' => "#}",
        _ => return None,
    };
    text[i + 2..].find(close).map(|j| i + 2 + j + 2)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn secrets_in_urls_are_masked() {
        for (given, shown) in [
            (
                "https://h/p?apikey=PLANTED&x=1",
                "https://h/p?apikey=***&x=***",
            ),
            ("https://user:PW@h/p", "https://***@h/p"),
            ("https://TOKEN@h/", "https://***@h/"),
            ("https://TOKEN:@h", "https://***@h"),
            ("HTTPS://U:P@H/", "HTTPS://***@H/"),
            ("//u:p@h/x", "//***@h/x"),
            ("u:p@h/x?k=v", "***@h/x?k=***"),
            (
                "https://u:p@h:8080/a?b=c#d=e",
                "https://***@h:8080/a?b=***#d=***",
            ),
            ("https://h/p#access_token=S", "https://h/p#access_token=***"),
            ("https://h/p#SECRET", "https://h/p#***"),
            ("https://h/p?SECRET", "https://h/p?***"),
            ("https://h/p?a=&b", "https://h/p?a=&***"),
            ("https://h/p?k=v?w=x", "https://h/p?k=***"),
            ("https://h/p?k=SE=CRET", "https://h/p?k=***"),
            ("https://h/p?k=%53ECRET", "https://h/p?k=***"),
            ("https://h/p?", "https://h/p?"),
            ("https://[::1]:8080/p?k=v", "https://[::1]:8080/p?k=***"),
            ("https://ü:ß@h/ä?ö=ü", "https://***@h/ä?ö=***"),
            // A password with a delimiter in it (the URL does not parse; it is still shown).
            ("https://user:pa/ss@host/x?k=v", "https://***@host/x?k=***"),
            ("https://user:pa#ss@host/", "https://user:***#***"),
            ("https://user:pa?ss@host/", "https://user:***?***"),
            ("https://user:pass", "https://user:***"),
            // In a URL as sent, `{{` is text like any other.
            ("https://h/{{?k=S}}", "https://h/{{?k=***"),
            ("https://h/?id={{ entityId }}", "https://h/?id=***"),
            // Nothing to hide.
            ("https://h/p", "https://h/p"),
            ("https://h:8080", "https://h:8080"),
            ("", ""),
            ("not a url", "not a url"),
            ("://", "://"),
            ("https://", "https://"),
            ("?", "?"),
            ("#", "#"),
            ("@", "***@"),
        ] {
            assert_eq!(url(given), shown, "{given}");
        }
    }

    #[test]
    fn secrets_in_url_templates_are_masked_and_merge_fields_kept() {
        for (given, shown) in [
            (
                "https://h/o/{{ entityId }}?id={{ entityId }}&key=S",
                "https://h/o/{{ entityId }}?id={{ entityId }}&key=***",
            ),
            (
                "https://h/?id={{entity.Id}}#{{ x }}",
                "https://h/?id={{entity.Id}}#{{ x }}",
            ),
            ("https://h/?k={{ 'a&b=S' }}", "https://h/?k=***"),
            ("https://h/?k={{ x }}S", "https://h/?k=***"),
            ("https://h/?k={{ x | upper }}", "https://h/?k=***"),
            (
                "https://{{ shop.host }}/p?k=v",
                "https://{{ shop.host }}/p?k=***",
            ),
            (
                "https://{{ shop.host }}:{{ port }}/p",
                "https://{{ shop.host }}:{{ port }}/p",
            ),
            ("https://{{ a@b }}/p", "https://{{ a@b }}/p"),
            ("https://{{ u }}:{{ p }}@h/", "https://***@h/"),
            ("https://u:S@{{ h }}/", "https://***@{{ h }}/"),
            // A tag that is never closed is text.
            ("https://h/{{ x ?k=S", "https://h/{{ x ?k=***"),
            (
                "https://h/{% if a %}?k=S{% endif %}",
                "https://h/{% if a %}?k=***",
            ),
            ("https://user:PW@h/p?apikey=S", "https://***@h/p?apikey=***"),
        ] {
            assert_eq!(url_template(given), shown, "{given}");
        }
    }

    #[test]
    fn urls_quoted_in_text_are_masked() {
        for (given, shown) in [
            (
                "error sending request for url (http://u:PW@h/?k=S): connection refused",
                "error sending request for url (http://***@h/?k=***): connection refused",
            ),
            ("see https://h/?k=S.", "see https://h/?k=***."),
            (
                "a http://h/?k=S b https://x/#t",
                "a http://h/?k=*** b https://x/#***",
            ),
            ("\"https://h/?k=S\"", "\"https://h/?k=***\""),
            ("x://", "x://"),
            ("://a@b ://", "://***@b ://"),
        ] {
            assert_eq!(urls_in(given), shown, "{given}");
        }
        assert!(matches!(urls_in("no url here"), Cow::Borrowed(_)));
    }

    proptest! {
        /// Any text at all: no panic, and a text without URLs comes back as it was.
        #[test]
        fn redaction_never_panics(text in "[a-zA-Z0-9:/?#@&=%{}\\[\\]\\\\ .éß%-]{0,40}") {
            let _ = url(&text);
            let _ = url_template(&text);
            let quoted = urls_in(&text).into_owned();
            if !text.contains("://") {
                prop_assert_eq!(quoted, text);
            }
        }

        /// A secret planted as a query value, a fragment or in the userinfo never shows.
        #[test]
        fn a_planted_secret_never_shows(
            scheme in "(https?|ftp)",
            user in "[a-z]{0,5}",
            host in "[a-z0-9.{} ]{1,12}(:[0-9]{1,5})?",
            path in "(/[a-z{} ]{0,6}){0,3}",
            key in "[a-z_]{1,8}",
            place in 0..4u8,
            other in "[a-z=&]{0,10}",
        ) {
            let secret = "PLANTED-SECRET-123";
            let given = match place {
                0 => format!("{scheme}://{host}{path}?{other}&{key}={secret}"),
                1 => format!("{scheme}://{user}:{secret}@{host}{path}?{other}"),
                2 => format!("{scheme}://{secret}@{host}{path}"),
                _ => format!("{scheme}://{host}{path}?{key}={other}#{key}={secret}"),
            };
            prop_assert!(!url(&given).contains(secret), "{} -> {}", given, url(&given));
            prop_assert!(!url_template(&given).contains(secret), "{}", given);
            // In text, a URL ends at white space (a URL as sent has none: it is encoded).
            if !given.contains(' ') {
                let text = format!("failed: ({given}): refused");
                prop_assert!(!urls_in(&text).contains(secret), "{}", text);
            }
        }
    }
}

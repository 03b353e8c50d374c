//! The browser-facing hardening headers, set by one middleware on every answer of the server:
//! the UI's pages, their error pages and static files, `/docs`, redirects, and the APIs' JSON.
//!
//! One layer around the whole router rather than per page, so that no route (a new page, an
//! error answered by a middleware, the fallback 404) can go without. The policy is the same
//! everywhere: API clients ignore it, and a JSON answer opened in a browser gets the same
//! protection as a page.
//!
//! The pages need nothing the policy refuses: every script and stylesheet is a file under
//! `/static/` (no inline `<script>`, no `on…=` handlers, no `javascript:` links, no `<style>`
//! blocks or `style=""` attributes), so `script-src` and `style-src` are `'self'` alone, without
//! `'unsafe-inline'`, `'unsafe-eval'`, hashes or nonces. Scripts may still set styles through
//! the CSSOM (`element.style.left = …`), which CSP allows.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The Content-Security-Policy of every answer.
///
/// - `default-src 'self'`: fetches (the editor's API calls, the queue's refresh), images and
///   fonts come from this server only.
/// - `script-src 'self'` and `style-src 'self'`: files only; an injected inline script, event
///   handler, `eval` or `style` attribute is refused (and reported in the browser's console).
/// - `object-src 'none'`, `base-uri 'none'`: no plugins, no `<base>` rewriting relative URLs.
/// - `frame-ancestors 'none'`: no page is shown in another site's frame (clickjacking).
/// - `form-action 'self'`: forms post here only.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Features no page uses, switched off for them and anything they might embed. Only features
/// every current browser knows: an unknown one is logged as a console error.
pub(crate) const PERMISSIONS_POLICY: &str =
    "camera=(), microphone=(), geolocation=(), payment=(), usb=()";

/// Every header [`security_headers`] sets, with its value.
pub(crate) const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    // For browsers that predate `frame-ancestors`.
    ("x-frame-options", "DENY"),
    // A body is what its `Content-Type` says: a call's body downloaded from the queue page
    // is never sniffed into HTML or script.
    ("x-content-type-options", "nosniff"),
    // Links to other sites (a receiver's URL) do not carry the page's path and query.
    ("referrer-policy", "same-origin"),
    // A page opened from another site's window gets no handle on it, nor it on ours.
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", PERMISSIONS_POLICY),
];

/// Sets [`SECURITY_HEADERS`] on the answer; a header a handler set itself is kept.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

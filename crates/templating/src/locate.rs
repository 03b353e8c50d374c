//! Finding the template position behind invalid output.
//!
//! Output checks (JSON, XML, header values) see only the rendered text, but an admin needs
//! the template line. On that rare path the template is rendered once more as a "locating"
//! copy (its auto-escape mode carries a `~`, see [`crate::escape::Mode`]) into a sink that
//! only counts bytes. Rendering is deterministic, so the counts match the first render. The
//! formatter stops at the first `{{ ... }}` whose output reaches the bad byte: minijinja then
//! reports that expression's position. When the bad byte lies in the template's own text, that
//! text is searched for in the source, just before the expression where rendering stopped.

use std::cell::Cell;
use std::io;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};

use crate::render::line_col;

/// Marks the error the locating formatter raises to stop rendering.
const STOP: &str = "hookflow: located";
/// Longest run of template text searched for when the bad byte is in it.
const MAX_SNIPPET: usize = 80;

#[derive(Debug, Clone, Copy)]
struct Probe {
    /// Byte offset of the bad byte in the output.
    target: usize,
    /// Bytes written so far.
    written: usize,
    /// Where in the output the last `{{ ... }}` ended.
    last_end: usize,
    /// Where in the output the `{{ ... }}` that stopped rendering would have started.
    stopped_at: Option<usize>,
}

thread_local! {
    /// The probe of the locating render running on this thread, if any. Rendering is
    /// synchronous, so a thread-local is how the formatter and the sink share it.
    static PROBE: Cell<Option<Probe>> = const { Cell::new(None) };
}

/// Called by the formatter of a locating copy before it writes `len` bytes for a value.
pub(crate) fn before_emission(len: usize) -> Result<(), Error> {
    PROBE.with(|cell| {
        let Some(mut probe) = cell.get() else {
            return Ok(());
        };
        if probe.written + len > probe.target {
            probe.stopped_at = Some(probe.written);
            cell.set(Some(probe));
            return Err(Error::new(ErrorKind::InvalidOperation, STOP));
        }
        probe.last_end = probe.written + len;
        cell.set(Some(probe));
        Ok(())
    })
}

/// Counts what a locating render writes.
struct CountingSink;

impl io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        PROBE.with(|cell| {
            if let Some(mut probe) = cell.get() {
                probe.written += buf.len();
                cell.set(Some(probe));
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Clears the probe however the render ends.
struct ProbeGuard;

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        PROBE.with(|cell| cell.set(None));
    }
}

/// The 1-based line and column in `source` that produced byte `target` of `out`.
///
/// `locating_name` is the name to compile the locating copy under (its extension selects the
/// mode). Returns `None` when the position cannot be found (it is then left out of the error).
pub(crate) fn locate(
    env: &Environment<'static>,
    locating_name: &str,
    source: &str,
    ctx: &Value,
    out: &str,
    target: usize,
) -> Option<(usize, usize)> {
    if target >= out.len() {
        // The output ended too early (an unclosed object or element): point at the end.
        return Some(line_col(source, source.trim_end().len()));
    }
    let template = env.template_from_named_str(locating_name, source).ok()?;
    let _guard = ProbeGuard;
    PROBE.with(|cell| {
        cell.set(Some(Probe {
            target,
            written: 0,
            last_end: 0,
            stopped_at: None,
        }))
    });
    let result = template.render_captured_to(ctx, CountingSink).map(drop);
    let probe = PROBE.with(Cell::get)?;
    let (bound, raw_start, raw_end) = match result {
        Err(err) if err.detail() == Some(STOP) => {
            let span = err.range()?;
            match probe.stopped_at {
                // The value written by this expression holds the bad byte.
                Some(start) if start <= target => return Some(line_col(source, span.start)),
                // The bad byte is in template text before this expression.
                Some(start) => (
                    source[..span.start].rfind("{{").unwrap_or(span.start),
                    probe.last_end,
                    start,
                ),
                None => return None,
            }
        }
        Err(err) => return err.line().map(|line| (line, 1)),
        // The bad byte is in template text after the last expression.
        Ok(()) => (source.len(), probe.last_end, out.len()),
    };
    Some(find_text(source, bound, out, raw_start..raw_end, target))
}

/// Where in `source[..bound]` the template text holding `out[target]` is. `raw` is the run of
/// output between two inserted values that holds it; the widest piece of it around the bad
/// byte that occurs in the source (last occurrence) gives the position.
fn find_text(
    source: &str,
    bound: usize,
    out: &str,
    raw: std::ops::Range<usize>,
    target: usize,
) -> (usize, usize) {
    let haystack = &source[..bound.min(source.len())];
    let after = target + out[target..].chars().next().map_or(1, char::len_utf8);
    let lo = raw
        .start
        .min(target)
        .max(target.saturating_sub(MAX_SNIPPET));
    let mut hi = raw.end.min(out.len()).min(after + MAX_SNIPPET).max(after);
    // `after` is a character boundary, so this stops at it at the latest.
    while !out.is_char_boundary(hi) {
        hi -= 1;
    }
    let boundary = |i: &usize| out.is_char_boundary(*i);
    // Windows ending at `hi`, narrowing from the left; then windows starting at the bad byte,
    // narrowing from the right.
    let windows = (lo..=target)
        .filter(boundary)
        .map(|start| (start, hi))
        .chain((after..hi).rev().filter(boundary).map(|end| (target, end)));
    for (start, end) in windows {
        if let Some(pos) = haystack.rfind(&out[start..end]) {
            return line_col(source, pos + (target - start));
        }
    }
    line_col(source, haystack.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_never_ends_inside_a_character() {
        // Found by the template fuzz target: the window's end fell inside `é`.
        let source = "<a>&{{ x }}</a>";
        let out = format!("<a>&{}é</a>", "x".repeat(79));
        let target = 3;
        let _ = find_text(source, source.len(), &out, 0..out.len(), target);
    }

    #[test]
    fn template_text_is_found_before_the_bound() {
        let source = "{\n  \"a\": 1\n  \"b\": {{ x }}\n}";
        let out = "{\n  \"a\": 1\n  \"b\": 2\n}";
        let target = out.find("\"b\"").unwrap();
        assert_eq!(
            find_text(
                source,
                source.find("{{").unwrap(),
                out,
                0..target + 3,
                target
            ),
            (3, 3)
        );
    }
}

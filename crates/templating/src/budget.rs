//! What one render may spend: bytes of values it creates, loop iterations, wall-clock time.
//!
//! minijinja's fuel counts instructions, and the output cap counts what reaches the output;
//! neither sees a value that doubles in a variable (`{% set s = s ~ s %}`), a repetition
//! (`"x" * 100000000`), a join or a replace that multiplies its input. Every way a template
//! can make a value bigger than its inputs goes through here instead (see [`crate::rewrite`]
//! for how operators and loops are routed, `filters` for the filters):
//!
//! - bytes: each created string counts its length, each list or map 16 bytes per item, and
//!   everything written by `{{ ... }}` (into the output or a `{% set %}` block) counts what it
//!   writes. The sum over one render may not pass [`MAX_RENDER_BYTES`]. Sizes are checked
//!   *before* the value is built, so the allocation that would break the budget never happens.
//! - iterations: all loops of one render together run at most [`MAX_ITERATIONS`] times, each
//!   iteration also charging the loop body's template text.
//! - time: every charge checks the clock against [`MAX_RENDER_TIME`].
//!
//! The same limits apply at save, at preview (every role) and at delivery.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{context, Environment, Error, ErrorKind, Expression};

/// Bytes of strings, lists and output one render may create, in all.
pub const MAX_RENDER_BYTES: usize = 64 * 1024 * 1024;
/// Loop iterations one render may run, over all its loops.
pub const MAX_ITERATIONS: u64 = 100_000;
/// Wall-clock time one render may take (debug builds, about ten times slower, get four times
/// as long so the test suite measures the same templates).
pub const MAX_RENDER_TIME: Duration = if cfg!(debug_assertions) {
    Duration::from_millis(2000)
} else {
    Duration::from_millis(500)
};
/// How deep lists and maps may nest in a value a template keeps (dropping, printing or
/// comparing a value recurses once per level).
pub const MAX_NESTING: usize = 100;
/// Items one check of a kept value looks at.
const MAX_NESTING_VISITS: usize = 100_000;
/// What a list or map item is charged (a minijinja value is 24 bytes; shared items count too).
pub(crate) const ITEM_BYTES: usize = 16;

thread_local! {
    /// The budget of the render running on this thread (renders are synchronous).
    static CURRENT: std::cell::RefCell<Option<Arc<Budget>>> = const { std::cell::RefCell::new(None) };
}

/// A render that went over its budget: why, and where when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Exceeded {
    pub message: String,
    /// 1-based template line, when the budget knows it better than the engine (a loop that
    /// was stopped).
    pub line: Option<usize>,
}

/// One render's budget.
#[derive(Debug)]
pub(crate) struct Budget {
    started: Instant,
    bytes_left: AtomicUsize,
    iterations_left: AtomicU64,
    /// Set when a loop was stopped: iteration cannot fail, so the render fails at its end.
    stopped: Mutex<Option<Exceeded>>,
}

/// Keeps a budget current on this thread until dropped.
pub(crate) struct Scope {
    previous: Option<Arc<Budget>>,
    pub budget: Arc<Budget>,
}

impl Scope {
    /// A fresh budget for one render, current until the scope ends.
    pub(crate) fn enter() -> Scope {
        let budget = Arc::new(Budget::new());
        let previous = CURRENT.with(|c| c.replace(Some(Arc::clone(&budget))));
        Scope { previous, budget }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

impl Budget {
    fn new() -> Budget {
        Budget {
            started: Instant::now(),
            bytes_left: AtomicUsize::new(MAX_RENDER_BYTES),
            iterations_left: AtomicU64::new(MAX_ITERATIONS),
            stopped: Mutex::new(None),
        }
    }

    /// The budget of the render running on this thread (a render outside a [`Scope`] gets a
    /// fresh one, so every operation is still bounded on its own).
    pub(crate) fn current() -> Arc<Budget> {
        CURRENT
            .with(|c| c.borrow().clone())
            .unwrap_or_else(|| Arc::new(Budget::new()))
    }

    /// Why the render must fail although it finished (a loop was stopped), if it must.
    pub(crate) fn stopped(&self) -> Option<Exceeded> {
        self.stopped.lock().ok()?.clone()
    }

    /// Bytes still to spend.
    pub(crate) fn left(&self) -> usize {
        self.bytes_left.load(Ordering::Relaxed)
    }

    /// Fails when the render has run out of time.
    pub(crate) fn check_clock(&self) -> Result<(), Error> {
        if self.started.elapsed() > MAX_RENDER_TIME {
            return Err(exceeded(
                format!(
                    "the template ran longer than {} ms and was stopped; make its loops smaller",
                    MAX_RENDER_TIME.as_millis()
                ),
                None,
            ));
        }
        Ok(())
    }

    /// Spends `bytes` on `what` (a short phrase: "repeating a string 1000 times"), or fails
    /// without spending anything.
    pub(crate) fn charge(&self, bytes: usize, what: impl FnOnce() -> String) -> Result<(), Error> {
        self.check_clock()?;
        let taken = self
            .bytes_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            });
        match taken {
            Ok(_) => Ok(()),
            Err(_) => Err(over_bytes(&what())),
        }
    }

    /// One loop iteration over a body of `raw` bytes of template text; `false` stops the loop.
    fn iteration(&self, raw: usize, line: usize) -> bool {
        let problem = if self.check_clock().is_err() {
            Some(format!(
                "the template ran longer than {} ms and was stopped; make its loops smaller",
                MAX_RENDER_TIME.as_millis()
            ))
        } else if self
            .iterations_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            Some(format!(
                "the template's loops ran more than {MAX_ITERATIONS} times in all and were \
                 stopped; make its loops smaller"
            ))
        } else if self
            .bytes_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(raw))
            .is_err()
        {
            Some(over_bytes("repeating this loop's text").to_string())
        } else {
            None
        };
        match problem {
            None => true,
            Some(message) => {
                if let Ok(mut stopped) = self.stopped.lock() {
                    stopped.get_or_insert(Exceeded {
                        message,
                        line: Some(line),
                    });
                }
                false
            }
        }
    }
}

/// The error a budget failure is raised as; [`crate::render`] recognises it by its source.
pub(crate) fn exceeded(message: String, line: Option<usize>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(Exceeded { message, line })
}

pub(crate) fn over_bytes(what: &str) -> Error {
    exceeded(
        format!(
            "{what} would make the template build more than {} MiB of text and lists while \
             rendering; it was stopped so it cannot exhaust the server's memory",
            MAX_RENDER_BYTES / (1024 * 1024)
        ),
        None,
    )
}

/// What a value costs to keep: its text, or its items.
pub(crate) fn size_of(value: &Value) -> usize {
    match value.kind() {
        ValueKind::String | ValueKind::Bytes => value.as_str().map_or(0, str::len),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            value.len().unwrap_or(0).saturating_mul(ITEM_BYTES)
        }
        _ => 0,
    }
}

/// The values a template-built list or map holds (a map's values, not its keys); `None` for
/// scalars, lazy iterables (which hold no values of their own) and entity data (as deep as its
/// JSON, which the parser bounds, and never built by a template).
fn held_values(value: &Value) -> Option<impl Iterator<Item = Value> + '_> {
    let is_map = match value.kind() {
        ValueKind::Map => true,
        ValueKind::Seq => false,
        _ => return None,
    };
    if value
        .downcast_object_ref::<crate::context::JsonNode>()
        .is_some()
    {
        return None;
    }
    let items = value.try_iter().ok()?;
    Some(items.map(move |item| {
        if is_map {
            value.get_item(&item).unwrap_or_default()
        } else {
            item
        }
    }))
}

/// Whether the strings a list or map holds (each time it holds them) already add up to more
/// than `cap` bytes: what its text could never fit in, found without writing it.
pub(crate) fn text_surely_exceeds(value: &Value, cap: usize) -> bool {
    fn sum(value: &Value, total: &mut usize, visits: &mut usize, cap: usize, level: usize) {
        if *total > cap || *visits > MAX_NESTING_VISITS || level > MAX_NESTING {
            return;
        }
        *visits += 1;
        if let Some(text) = value.as_str() {
            *total = total.saturating_add(text.len());
            return;
        }
        for child in held_values(value).into_iter().flatten() {
            sum(&child, total, visits, cap, level + 1);
            if *total > cap {
                return;
            }
        }
    }
    let (mut total, mut visits) = (0, 0);
    sum(value, &mut total, &mut visits, cap, 0);
    total > cap
}

/// A value's text, built only if it fits in `cap` bytes (lists and maps can share one large
/// item many times, so their text can be far larger than what they hold).
pub(crate) fn display_capped(value: &Value, cap: usize) -> Option<String> {
    if let Some(s) = value.as_str() {
        return (s.len() <= cap).then(|| s.to_owned());
    }
    if text_surely_exceeds(value, cap) {
        return None;
    }
    let mut out = CappedString::new(cap);
    fmt::write(&mut out, format_args!("{value}")).ok()?;
    Some(out.buf)
}

/// A `String` that refuses to grow past a cap.
pub(crate) struct CappedString {
    pub buf: String,
    cap: usize,
}

impl CappedString {
    pub(crate) fn new(cap: usize) -> CappedString {
        CappedString {
            buf: String::new(),
            cap,
        }
    }
}

impl fmt::Write for CappedString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.buf.len() + s.len() > self.cap {
            return Err(fmt::Error);
        }
        self.buf.push_str(s);
        Ok(())
    }
}

// ---- the functions the rewritten operators call ----

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function("__cat", cat);
    env.add_function("__add", add);
    env.add_function("__mul", mul);
    env.add_function("__charged", charged);
    env.add_function("__loop", metered_loop);
    env.add_function("__nest", nest);
}

/// A value a template keeps (a `{% set %}`, a list or map literal, `dict`, `namespace`):
/// refused if it nests deeper than [`MAX_NESTING`] (or holds itself).
fn nest(value: Value, into: Option<Value>) -> Result<Value, Error> {
    let budget = Budget::current();
    budget.check_clock()?;
    let mut visits = 0;
    nesting(&value, 0, &mut visits, into.as_ref())?;
    Ok(value)
}

/// Walks a kept value: at most [`MAX_NESTING`] deep, [`MAX_NESTING_VISITS`] items, and never
/// reaching `into` (the namespace it is being put into: that would be a cycle).
fn nesting(
    value: &Value,
    level: usize,
    visits: &mut usize,
    into: Option<&Value>,
) -> Result<(), Error> {
    let Some(children) = held_values(value) else {
        return Ok(());
    };
    // Two values of one object are equal at once (minijinja compares identity first); the
    // target is a namespace, so only maps can be it.
    let cycle = value.kind() == ValueKind::Map
        && value.as_object().is_some()
        && into.is_some_and(|into| into == value);
    if level >= MAX_NESTING || cycle {
        return Err(exceeded(
            format!(
                "the template nests lists or maps more than {MAX_NESTING} deep (or puts a \
                 value inside itself); keep values flatter"
            ),
            None,
        ));
    }
    for child in children {
        *visits += 1;
        if *visits > MAX_NESTING_VISITS {
            return Err(exceeded(
                format!(
                    "the template keeps a value of more than {MAX_NESTING_VISITS} items; \
                     keep values smaller"
                ),
                None,
            ));
        }
        nesting(&child, level + 1, visits, into)?;
    }
    Ok(())
}

/// `a ~ b`.
fn cat(a: &Value, b: &Value) -> Result<Value, Error> {
    let budget = Budget::current();
    let text = match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => {
            budget.charge(a.len().saturating_add(b.len()), || {
                "joining two strings with ~".into()
            })?;
            let mut text = String::with_capacity(a.len() + b.len());
            text.push_str(a);
            text.push_str(b);
            text
        }
        _ => {
            let mut out = CappedString::new(budget.left());
            if fmt::write(&mut out, format_args!("{a}{b}")).is_err() {
                return Err(over_bytes("joining values with ~"));
            }
            budget.charge(out.buf.len(), || "joining values with ~".into())?;
            out.buf
        }
    };
    Ok(Value::from(text))
}

/// `a + b`: strings and lists are charged for what they will hold; numbers go to minijinja.
fn add(a: &Value, b: &Value) -> Result<Value, Error> {
    let budget = Budget::current();
    let sequences = |v: &Value| matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable);
    if a.kind() == ValueKind::String && b.kind() == ValueKind::String {
        budget.charge(size_of(a).saturating_add(size_of(b)), || {
            "adding two strings".into()
        })?;
    } else if sequences(a) && sequences(b) {
        let items = a.len().unwrap_or(0).saturating_add(b.len().unwrap_or(0));
        budget.charge(items.saturating_mul(ITEM_BYTES), || {
            format!("adding two lists into one of {items} items")
        })?;
    } else {
        budget.check_clock()?;
    }
    arithmetic().add.eval(context! { a, b }).map_err(unplaced)
}

/// `a * b`: a repeated string or list is charged before it is built.
fn mul(a: &Value, b: &Value) -> Result<Value, Error> {
    let budget = Budget::current();
    let repeated = |v: &Value| {
        matches!(
            v.kind(),
            ValueKind::String | ValueKind::Seq | ValueKind::Iterable
        )
    };
    let pair = if repeated(a) {
        Some((a, b))
    } else if repeated(b) {
        Some((b, a))
    } else {
        None
    };
    match pair {
        Some((value, times)) => {
            let n = times.as_usize().unwrap_or(0);
            let unit = match value.kind() {
                ValueKind::String => size_of(value),
                _ => value.len().unwrap_or(0).saturating_mul(ITEM_BYTES),
            };
            budget.charge(unit.saturating_mul(n), || {
                let what = if value.kind() == ValueKind::String {
                    "string"
                } else {
                    "list"
                };
                format!("repeating a {what} {n} times")
            })?;
        }
        None => budget.check_clock()?,
    }
    arithmetic().mul.eval(context! { a, b }).map_err(unplaced)
}

/// An error of the stand-in expression, without its position (which is in `a + b`, not in
/// the template): the template's engine places it at the operator's line.
fn unplaced(err: Error) -> Error {
    match err.detail() {
        Some(detail) => Error::new(err.kind(), detail.to_owned()),
        None => Error::from(err.kind()),
    }
}

/// A value just built by the engine (a slice): charged for its size.
fn charged(value: Value) -> Result<Value, Error> {
    Budget::current().charge(size_of(&value), || "slicing a value".into())?;
    Ok(value)
}

/// The iterable of a `{% for %}`, counted per iteration.
fn metered_loop(value: Value, raw: usize, line: usize) -> Result<Value, Error> {
    let budget = Budget::current();
    budget.check_clock()?;
    // What minijinja would refuse to loop over, it refuses here, with its own message.
    value.try_iter()?;
    Ok(Value::from_object(MeteredLoop {
        inner: value,
        budget,
        raw,
        line,
    }))
}

#[derive(Debug)]
struct MeteredLoop {
    inner: Value,
    budget: Arc<Budget>,
    raw: usize,
    line: usize,
}

impl Object for MeteredLoop {
    /// A sequence when the length is known, so `loop.last`, `loop.length` and `loop.revindex`
    /// work as they do on the iterable itself.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.inner.len().is_some() {
            ObjectRepr::Seq
        } else {
            ObjectRepr::Iterable
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.inner.kind() {
            ValueKind::Seq => self.inner.get_item(key).ok(),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let Ok(items) = self.inner.try_iter() else {
            return Enumerator::Empty;
        };
        Enumerator::Iter(Box::new(Ticking {
            items,
            owner: Arc::clone(self),
            stopped: false,
        }))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.inner.len()
    }

    fn is_true(self: &Arc<Self>) -> bool {
        self.inner.is_true()
    }
}

/// The items of a metered loop; keeps the iterable's exact size hint, which is where the
/// loop's `length` and `last` come from.
struct Ticking {
    items: minijinja::value::ValueIter,
    owner: Arc<MeteredLoop>,
    stopped: bool,
}

impl Iterator for Ticking {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if self.stopped {
            return None;
        }
        let item = self.items.next()?;
        if self.owner.budget.iteration(self.owner.raw, self.owner.line) {
            Some(item)
        } else {
            self.stopped = true;
            None
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.stopped {
            (0, Some(0))
        } else {
            self.items.size_hint()
        }
    }
}

/// minijinja's own `+` and `*`, for what the budget lets through.
struct Arithmetic {
    add: Expression<'static, 'static>,
    mul: Expression<'static, 'static>,
}

fn arithmetic() -> &'static Arithmetic {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    static ARITHMETIC: OnceLock<Arithmetic> = OnceLock::new();
    ARITHMETIC.get_or_init(|| {
        let env = ENV.get_or_init(Environment::new);
        Arithmetic {
            add: env.compile_expression("a + b").expect("a + b compiles"),
            mul: env.compile_expression("a * b").expect("a * b compiles"),
        }
    })
}

//! Conditions and templates (payload bodies, URLs, header values): compiled once when a trigger
//! is saved or loaded, rendered for every matching event.
//!
//! One [`TemplateSet`] holds every compiled template of the enabled triggers. A condition is
//! parsed as a minijinja expression (so it cannot smuggle in template syntax) and then kept as
//! a tiny `{% if %}` template, which lets the set own it without borrowing tricks.
//!
//! Safety: the environment has no loader (templates cannot read files), no access to the
//! process environment, `include`/`import`/`extends` resolve to nothing (a template cannot
//! reach another trigger's), and every render runs on a fuel budget and an output cap, so a
//! runaway template fails with a clear error instead of stalling a worker.

use std::collections::HashMap;
use std::fmt;
use std::io;

use minijinja::value::Value;
use minijinja::{Environment, ErrorKind, Template, UndefinedBehavior};

use crate::budget::{self, Exceeded};
use crate::escape::{self, Mode};
use crate::payload::MimeType;
use crate::rewrite::{self, Rewritten, SourceMap};
use crate::{filters, locate, validate};

/// Instructions one render may run before it is stopped: far above what a payload over a large
/// entity needs (a few thousand), far below what stalls a worker (about 10 ms at worst).
pub const FUEL: u64 = 500_000;
/// Largest rendered payload body.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Largest rendered URL or header value.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// What `include`, `import` and `extends` resolve to: a name no template has, which makes the
/// error say why.
const NO_INCLUDES: &str = "(templates cannot include other templates)";
/// Length of `{% if (` in the wrapped form of a condition.
const CONDITION_PREFIX: usize = 7;

/// What went wrong with a template, in terms of what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// It does not compile.
    Compile,
    /// It failed while rendering in a way the data cannot cause (an unknown filter, a missing
    /// argument) or that hit a limit (fuel, output size).
    Render,
    /// It failed while rendering on the values it was given (arithmetic on a missing field, a
    /// date that does not parse): other data may render fine.
    Data,
    /// It rendered, but the output is not valid for its kind.
    Output,
}

/// A template or condition that does not compile, fails to render, or renders invalid output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    /// What is wrong, for people.
    pub message: String,
    /// 1-based line in the template source, when known.
    pub line: Option<usize>,
    /// 1-based column in the template source, when known.
    pub column: Option<usize>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl TemplateError {
    fn new(kind: TemplateErrorKind, message: impl Into<String>) -> TemplateError {
        TemplateError {
            kind,
            message: message.into(),
            line: None,
            column: None,
        }
    }

    fn at(mut self, position: Option<(usize, usize)>) -> TemplateError {
        if let Some((line, column)) = position {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    /// A minijinja error, positioned in `source` shifted by `shift` bytes (the wrapper of a
    /// condition).
    fn from_minijinja(err: &minijinja::Error, source: &str, shift: usize) -> TemplateError {
        TemplateError::from_compiled(err, source, shift, &SourceMap::default())
    }

    /// A minijinja error of a rewritten template (see [`crate::rewrite`]): `source` is the
    /// author's, `map` leads from the compiled source back to it.
    fn from_compiled(
        err: &minijinja::Error,
        source: &str,
        shift: usize,
        map: &SourceMap,
    ) -> TemplateError {
        if let Some(exceeded) = budget_error(err) {
            let line = exceeded.line.or_else(|| err.line());
            let mut error = TemplateError::new(TemplateErrorKind::Render, exceeded.message);
            error.line = line;
            if exceeded.line.is_none() {
                if let Some(range) = err.range().filter(|r| r.start >= shift) {
                    let (line, column) = line_col(source, map.original(range.start - shift));
                    error.line = Some(line);
                    error.column = Some(column);
                }
            }
            return error;
        }
        let kind = match err.kind() {
            ErrorKind::SyntaxError | ErrorKind::BadEscape => TemplateErrorKind::Compile,
            ErrorKind::UndefinedError
            | ErrorKind::InvalidOperation
            | ErrorKind::NonKey
            | ErrorKind::NonPrimitive
            | ErrorKind::CannotUnpack
            | ErrorKind::BadSerialization
            | ErrorKind::UnknownMethod => TemplateErrorKind::Data,
            _ => TemplateErrorKind::Render,
        };
        let message = match err.kind() {
            ErrorKind::OutOfFuel => format!(
                "the template ran too long (more than {FUEL} steps) and was stopped; \
                 make its loops smaller"
            ),
            ErrorKind::TemplateNotFound | ErrorKind::BadInclude => {
                "templates cannot include, import or extend other templates".to_owned()
            }
            _ => match err.detail() {
                Some(detail) => format!("{}: {detail}", err.kind()),
                None => err.kind().to_string(),
            },
        };
        let position = match err.range() {
            Some(range) if range.start >= shift && !source.is_empty() => {
                Some(line_col(source, map.original(range.start - shift)))
            }
            _ => None,
        };
        let mut error = TemplateError::new(kind, message).at(position);
        if position.is_none() {
            // Only the line is known (the wrapper of a condition adds no lines).
            error.line = err.line();
        }
        error
    }
}

/// Runs a compile step, turning a panic inside minijinja (its lexer has panicked on input
/// such as a condition holding `}}`; found by the fuzz suite) into a compile error.
fn compiling<T>(step: impl FnOnce() -> Result<T, TemplateError>) -> Result<T, TemplateError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|_| {
        Err(TemplateError::new(
            TemplateErrorKind::Compile,
            "syntax error: the template engine could not read this; check that every {{ has \
             its }} and every {% its %}",
        ))
    })
}

impl From<Exceeded> for TemplateError {
    fn from(exceeded: Exceeded) -> TemplateError {
        let mut error = TemplateError::new(TemplateErrorKind::Render, exceeded.message);
        error.line = exceeded.line;
        error
    }
}

/// The budget failure behind a minijinja error, if it is one.
fn budget_error(err: &minijinja::Error) -> Option<Exceeded> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(exceeded) = current.downcast_ref::<Exceeded>() {
            return Some(exceeded.clone());
        }
        source = current.source();
    }
    None
}

/// The byte offset of a 1-based line and column (in characters).
fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let start = source
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>();
    let rest = &source[start.min(source.len())..];
    start
        + rest
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// What a template renders, which decides how inserted values are escaped and how the output
/// is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// A payload body: JSON, XML or text.
    Payload(MimeType),
    /// A webhook URL: inserted values are percent-encoded. (Whether the result is a usable
    /// URL is the caller's check.)
    Url,
    /// A custom header value: inserted values cannot break the header line.
    Header,
}

impl TemplateKind {
    fn mode(self) -> Mode {
        match self {
            TemplateKind::Payload(MimeType::Json) => Mode::Json,
            TemplateKind::Payload(MimeType::Xml) => Mode::Xml,
            TemplateKind::Payload(MimeType::Text) => Mode::Text,
            TemplateKind::Url => Mode::Url,
            TemplateKind::Header => Mode::Header,
        }
    }

    /// The template-name extension that selects the mode (see [`TemplateSet::new`]).
    fn extension(self) -> &'static str {
        match self.mode() {
            Mode::Json => "json",
            Mode::Xml => "xml",
            Mode::Text => "txt",
            Mode::Url => "url",
            Mode::Header => "hdr",
        }
    }

    fn max_output(self) -> usize {
        match self {
            TemplateKind::Payload(_) => MAX_PAYLOAD_BYTES,
            TemplateKind::Url | TemplateKind::Header => MAX_LINE_BYTES,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TemplateKind::Payload(MimeType::Json) => "JSON payload",
            TemplateKind::Payload(MimeType::Xml) => "XML payload",
            TemplateKind::Payload(MimeType::Text) => "text payload",
            TemplateKind::Url => "URL",
            TemplateKind::Header => "header value",
        }
    }

    fn check_output(self, out: &str) -> Result<(), validate::Invalid> {
        match self {
            TemplateKind::Payload(MimeType::Json) => validate::json(out),
            TemplateKind::Payload(MimeType::Xml) => validate::xml(out),
            TemplateKind::Header => validate::header(out),
            TemplateKind::Payload(MimeType::Text) | TemplateKind::Url => Ok(()),
        }
    }
}

/// A compiled template kept in a [`TemplateSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateId {
    name: String,
    kind: TemplateKind,
}

impl TemplateId {
    pub fn kind(&self) -> TemplateKind {
        self.kind
    }
}

/// A compiled condition kept in a [`TemplateSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionId {
    name: String,
}

fn template_name(key: &str, kind: TemplateKind) -> String {
    format!("{key}.{}", kind.extension())
}

/// Compiled conditions and templates, addressed by the ids [`TemplateSet::add`] and
/// [`TemplateSet::add_condition`] hand out.
pub struct TemplateSet {
    env: Environment<'static>,
    /// The author's source of each kept template and condition, and the way back to it from
    /// the rewritten source that was compiled.
    origins: HashMap<String, Origin>,
}

struct Origin {
    source: String,
    map: SourceMap,
}

impl Default for TemplateSet {
    fn default() -> Self {
        TemplateSet::new()
    }
}

impl TemplateSet {
    pub fn new() -> TemplateSet {
        let mut env = Environment::new();
        // Merge fields are optional data: `entity.Customer.Email` on an entity without a
        // customer renders as nothing (`null` in JSON) instead of failing the whole call.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // The name's extension picks the escaping; a trailing `~` marks a locating copy.
        env.set_auto_escape_callback(|name| {
            let (stem, locating) = match name.strip_suffix('~') {
                Some(stem) => (stem, true),
                None => (name, false),
            };
            let mode = match stem.rsplit('.').next() {
                Some("json") => Mode::Json,
                Some("xml") => Mode::Xml,
                Some("url") => Mode::Url,
                Some("hdr") => Mode::Header,
                _ => Mode::Text,
            };
            mode.auto_escape(locating)
        });
        env.set_formatter(escape::formatter);
        env.set_fuel(Some(FUEL));
        env.set_keep_trailing_newline(true);
        // Triggers share the environment; one's template must not reach another's.
        env.set_path_join_callback(|_, _| NO_INCLUDES.into());
        // `debug()` would print the environment, other triggers' templates included.
        env.remove_global("debug");
        filters::register(&mut env);
        budget::register(&mut env);
        TemplateSet {
            env,
            origins: HashMap::new(),
        }
    }

    // ---- conditions ----

    /// Checks that a condition compiles, without keeping it.
    pub fn check_condition(&self, source: &str) -> Result<(), TemplateError> {
        self.compile_condition(source).map(drop)
    }

    /// The condition rewritten for the budget, once it is known to compile.
    fn compile_condition(&self, source: &str) -> Result<Rewritten, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::new(
                TemplateErrorKind::Compile,
                "condition is empty",
            ));
        }
        if let Some(at) = rewrite::stray_close_tag(source) {
            return Err(TemplateError::new(
                TemplateErrorKind::Compile,
                format!(
                    "syntax error: {:?} closes a tag, but a condition is a bare expression \
                     (write entity.Total > 100, not {{{{ entity.Total > 100 }}}})",
                    &source[at..at + 2]
                ),
            )
            .at(Some(line_col(source, at))));
        }
        compiling(|| {
            self.env
                .compile_expression(source)
                .map_err(|e| TemplateError::from_minijinja(&e, source, 0))?;
            Ok(rewrite::expression(source))
        })
    }

    /// Checks that a condition compiles and evaluates against `sample` (see
    /// [`TemplateSet::check`] for what is forgiven).
    pub fn check_condition_against(
        &self,
        source: &str,
        sample: &Value,
    ) -> Result<(), TemplateError> {
        let rewritten = self.compile_condition(source)?;
        let wrapped = wrap_condition(&rewritten.source);
        let template = compiling(|| {
            self.env
                .template_from_named_str("check.cond", &wrapped)
                .map_err(|e| {
                    TemplateError::from_compiled(&e, source, CONDITION_PREFIX, &rewritten.map)
                })
        })?;
        let scope = budget::Scope::enter();
        let result = template.render(sample);
        let result = match (result, scope.budget.stopped()) {
            (Ok(_), Some(exceeded)) => Err(exceeded.into()),
            (Ok(_), None) => Ok(()),
            (Err(e), _) => Err(TemplateError::from_compiled(
                &e,
                source,
                CONDITION_PREFIX,
                &rewritten.map,
            )),
        };
        match result {
            Err(err) => forgive_missing_fields(err, &template, sample),
            ok => ok,
        }
    }

    /// Compiles and keeps a condition under `key`.
    pub fn add_condition(&mut self, key: &str, source: &str) -> Result<ConditionId, TemplateError> {
        let rewritten = self.compile_condition(source)?;
        let name = format!("{key}.cond");
        // The expression parsed on its own, so wrapping it cannot change its meaning.
        let compiled = wrap_condition(&rewritten.source);
        self.keep(&name, compiled, source, CONDITION_PREFIX, rewritten.map)?;
        Ok(ConditionId { name })
    }

    /// Evaluates a kept condition.
    pub fn condition_holds(&self, id: &ConditionId, ctx: &Value) -> Result<bool, TemplateError> {
        let template = self
            .env
            .get_template(&id.name)
            .map_err(|e| TemplateError::from_minijinja(&e, "", 0))?;
        let scope = budget::Scope::enter();
        let out = template.render(ctx).map_err(|e| {
            let (source, map) = self.origin(&id.name, &template.source()[CONDITION_PREFIX..]);
            TemplateError::from_compiled(&e, source, CONDITION_PREFIX, map)
        })?;
        if let Some(exceeded) = scope.budget.stopped() {
            return Err(exceeded.into());
        }
        Ok(out == "1")
    }

    /// Compiles `compiled` (the rewritten source, shifted by `shift` bytes of wrapper) and keeps
    /// it under `name` with the author's `source` and the way back to it.
    fn keep(
        &mut self,
        name: &str,
        compiled: String,
        source: &str,
        shift: usize,
        map: SourceMap,
    ) -> Result<(), TemplateError> {
        compiling(|| {
            self.env
                .add_template_owned(name.to_owned(), compiled)
                .map_err(|e| TemplateError::from_compiled(&e, source, shift, &map))
        })?;
        let origin = Origin {
            source: source.to_owned(),
            map,
        };
        self.origins.insert(name.to_owned(), origin);
        Ok(())
    }

    /// The author's source of a kept template and the way back to it (`compiled` itself when
    /// nothing is recorded).
    fn origin<'a>(&'a self, name: &str, compiled: &'a str) -> (&'a str, &'a SourceMap) {
        static IDENTITY: std::sync::OnceLock<SourceMap> = std::sync::OnceLock::new();
        match self.origins.get(name) {
            Some(origin) => (&origin.source, &origin.map),
            None => (compiled, IDENTITY.get_or_init(SourceMap::default)),
        }
    }

    // ---- templates ----

    /// Compiles `source` as a one-off template (checks and previews).
    fn compile_once<'a>(
        &'a self,
        name: &'a str,
        source: &str,
        rewritten: &'a Rewritten,
    ) -> Result<Template<'a, 'a>, TemplateError> {
        let template = compiling(|| {
            self.env
                .template_from_named_str(name, &rewritten.source)
                .map_err(|e| TemplateError::from_compiled(&e, source, 0, &rewritten.map))
        })?;
        reserved_names(source, rewritten)?;
        Ok(template)
    }

    /// Checks a template the way saving a trigger does: it must compile, and rendering it
    /// against `sample` (an event type's sample context) must give valid output within the
    /// render budget (see [`crate::budget`]).
    ///
    /// A render that fails on the data is forgiven when the template reads merge fields the
    /// sample does not have (fields outside the catalog): only real data can judge it, and if
    /// it fails then, the call fails with this same message.
    pub fn check(
        &self,
        kind: TemplateKind,
        source: &str,
        sample: &Value,
    ) -> Result<(), TemplateError> {
        let name = template_name("check", kind);
        let rewritten = compiling(|| Ok(rewrite::template(source)))?;
        let template = self.compile_once(&name, source, &rewritten)?;
        let origin = (source, &rewritten.map);
        match self.render_template(&template, kind, sample, origin) {
            Ok(_) => Ok(()),
            Err(err) => forgive_missing_fields(err, &template, sample),
        }
    }

    /// Compiles and keeps a template under `key`.
    pub fn add(
        &mut self,
        key: &str,
        kind: TemplateKind,
        source: &str,
    ) -> Result<TemplateId, TemplateError> {
        let name = template_name(key, kind);
        let rewritten = compiling(|| Ok(rewrite::template(source)))?;
        reserved_names(source, &rewritten)?;
        self.keep(&name, rewritten.source, source, 0, rewritten.map)?;
        Ok(TemplateId { name, kind })
    }

    /// Renders a kept template and checks the output is valid for its kind.
    pub fn render(&self, id: &TemplateId, ctx: &Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(&id.name)
            .map_err(|e| TemplateError::from_minijinja(&e, "", 0))?;
        let origin = self.origin(&id.name, template.source());
        self.render_template(&template, id.kind, ctx, origin)
    }

    /// Compiles a one-off template, renders it and checks the output (previews).
    pub fn render_once(
        &self,
        kind: TemplateKind,
        source: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let name = template_name("once", kind);
        let rewritten = compiling(|| Ok(rewrite::template(source)))?;
        let template = self.compile_once(&name, source, &rewritten)?;
        self.render_template(&template, kind, ctx, (source, &rewritten.map))
    }

    /// Renders under a fresh budget; `origin` is the author's source and the way back to it.
    fn render_template(
        &self,
        template: &Template<'_, '_>,
        kind: TemplateKind,
        ctx: &Value,
        (source, map): (&str, &SourceMap),
    ) -> Result<String, TemplateError> {
        let cap = kind.max_output();
        let mut sink = CappedWriter {
            buf: Vec::with_capacity(256),
            cap,
            overflowed: false,
        };
        let scope = budget::Scope::enter();
        let rendered = template.render_captured_to(ctx, &mut sink);
        let stopped = scope.budget.stopped();
        drop(scope);
        if let Some(exceeded) = stopped {
            return Err(exceeded.into());
        }
        if let Err(err) = rendered {
            if sink.overflowed {
                let position = self.locate(template, kind, ctx, "", cap, (source, map));
                return Err(TemplateError::new(
                    TemplateErrorKind::Render,
                    format!(
                        "the rendered {} is larger than {cap} bytes",
                        kind.describe()
                    ),
                )
                .at(position));
            }
            return Err(TemplateError::from_compiled(&err, source, 0, map));
        }
        // Everything written came from `&str`s, whole.
        let out = String::from_utf8(sink.buf).map_err(|_| {
            TemplateError::new(TemplateErrorKind::Render, "the output is not UTF-8")
        })?;
        if let Err(invalid) = kind.check_output(&out) {
            let position = self.locate(template, kind, ctx, &out, invalid.offset, (source, map));
            let (out_line, out_column) = line_col(&out, invalid.offset);
            let mut message = format!(
                "{} (at line {out_line}, column {out_column} of the output)",
                invalid.message
            );
            if kind == TemplateKind::Payload(MimeType::Json) && source.contains("\"{{") {
                message.push_str(
                    "; note that {{ value }} inserts the value JSON-encoded, quotes included: \
                     write {{ value }}, not \"{{ value }}\"",
                );
            }
            return Err(TemplateError::new(TemplateErrorKind::Output, message).at(position));
        }
        Ok(out)
    }

    /// The template position behind byte `target` of the output (see [`crate::locate`]), in
    /// the author's source.
    fn locate(
        &self,
        template: &Template<'_, '_>,
        kind: TemplateKind,
        ctx: &Value,
        out: &str,
        target: usize,
        (source, map): (&str, &SourceMap),
    ) -> Option<(usize, usize)> {
        let name = format!("{}~", template_name("locate", kind));
        let compiled = template.source();
        let _scope = budget::Scope::enter();
        let found = if out.is_empty() {
            // The output cap: any byte at the cap will do, the output itself is not kept.
            let filler = " ".repeat(target + 1);
            locate::locate(&self.env, &name, compiled, ctx, &filler, target)
        } else {
            locate::locate(&self.env, &name, compiled, ctx, out, target)
        }?;
        if map.is_identity() {
            return Some(found);
        }
        let offset = offset_of(compiled, found.0, found.1);
        Some(line_col(source, map.original(offset)))
    }
}

/// Names starting with `__` belong to the render budget's functions; a template that defined
/// one could step around the budget.
fn reserved_names(source: &str, rewritten: &Rewritten) -> Result<(), TemplateError> {
    match &rewritten.reserved {
        Some((name, offset)) => Err(TemplateError::new(
            TemplateErrorKind::Compile,
            format!("{name:?}: names starting with __ are reserved"),
        )
        .at(Some(line_col(source, *offset)))),
        None => Ok(()),
    }
}

/// Checks rendered output the way every render does: valid JSON or well-formed XML for those
/// payloads, a safe header value for headers. For receivers' and tests' use.
pub fn check_output(kind: TemplateKind, out: &str) -> Result<(), String> {
    kind.check_output(out).map_err(|invalid| {
        let (line, column) = line_col(out, invalid.offset);
        format!("line {line}, column {column}: {}", invalid.message)
    })
}

fn wrap_condition(source: &str) -> String {
    format!("{{% if ({source}) %}}1{{% endif %}}")
}

/// Lets a data error pass when `template` reads merge fields that `sample` lacks.
fn forgive_missing_fields(
    err: TemplateError,
    template: &Template<'_, '_>,
    sample: &Value,
) -> Result<(), TemplateError> {
    if err.kind != TemplateErrorKind::Data {
        return Err(err);
    }
    let reads_missing = template
        .undeclared_variables(true)
        .iter()
        .any(|path| reads_missing_field(path, sample));
    if reads_missing {
        Ok(())
    } else {
        Err(err)
    }
}

/// Whether a dotted path a template reads (`entity.Customer.Email`) is absent from `ctx`, or
/// is an entity read whole (`entity[key]`, loops) that the sample cannot stand for.
fn reads_missing_field(path: &str, ctx: &Value) -> bool {
    let mut segments = path.split('.');
    let Some(first) = segments.next() else {
        return false;
    };
    if !path.contains('.') && matches!(first, "entity" | "entityData") {
        return true;
    }
    let mut current = match ctx.get_attr(first) {
        Ok(value) if !value.is_undefined() => value,
        // Not a merge field at all (a global such as `range`, or a typo caught elsewhere).
        _ => return false,
    };
    for segment in segments {
        current = match current.get_attr(segment) {
            Ok(value) if !value.is_undefined() => value,
            _ => return true,
        };
    }
    false
}

/// Collects output up to a cap; past it, the write fails and the render stops.
struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.overflowed = true;
            return Err(io::Error::other("output cap reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;

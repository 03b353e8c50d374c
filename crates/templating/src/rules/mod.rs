//! Rules: a trigger's condition as a tree an admin clicks together instead of an expression
//! typed into a box.
//!
//! A rule is a group (`all`, `any`, `not`) or a clause (`field`, `op`, `value`, and for the
//! list operators a nested `where` rule on each item). Its JSON form is the rule language
//! itself, as a template's source is for templates: [`Rule::parse`] reads it (naming the
//! clause at fault by its path, `rules.all[1].any[0]`), [`Rule::to_json`] writes it back in one
//! canonical form.
//!
//! - `check`: the save-time step. Every field is resolved against the event type's fields
//!   (its catalog fields and entity schema) to a [`Kind`], every operator and value checked to
//!   fit it, and the result compiled into a [`CompiledRule`].
//! - `eval`: evaluation over an event's entity (and its `previousData`), fast for ingest and
//!   with a clause-by-clause trace for a dry run.
//! - `expr`: the minijinja expression a rule compiles to (shown read-only, and usable as a
//!   condition), and the tests it calls, which evaluate with this module's code, so the
//!   expression means exactly what the rule does.
//!
//! Semantics an admin can rely on (the trace shows each):
//! - A missing field and a `null` are the same: *no value*. A positive test on no value is
//!   false (`equals`, `in`, `contains`, `greaterThan`, …); a negative one is true
//!   (`notEquals`, `notIn`, `notContains`); `isEmpty` is true for no value, `""`, `[]`, `{}`.
//! - A value of the wrong type counts as no value, except that a number field sent as a
//!   numeric string (`"42"`) is read as the number, and a text field sent as a number is read
//!   as its decimal text.
//! - Text comparisons are exact (case-sensitive). Dates are RFC 3339 date-times or
//!   `YYYY-MM-DD` (midnight UTC), compared as instants.
//! - `anyItem` is false for an empty or missing list, `allItems` and `noItem` true.
//! - `changed`, `changedTo`, `changedFrom` compare with the event's `previousData` and are
//!   false when the event carries none; a field absent from `previousData` had no value.
//! - A rule that needs more than [`MAX_TESTS`] clause tests for an event (lists nested in
//!   lists) does not hold for it.

mod check;
mod eval;
mod expr;

use std::fmt;

use serde_json::{Map, Value as Json};

pub use check::CompiledRule;
pub use eval::{Subject, TraceStep, MAX_TESTS, OVER_LIMIT};
pub(crate) use expr::register_tests;

/// Most nested groups (and `where` rules) in one rule.
pub const MAX_DEPTH: usize = 8;
/// Most clauses in one rule, nested ones included.
pub const MAX_CLAUSES: usize = 100;
/// Most values in one `in` / `notIn` list.
pub const MAX_LIST_VALUES: usize = 500;
/// Longest text value, in characters.
pub const MAX_TEXT: usize = 1000;

/// A rule: a group of rules or one clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Every rule holds (at least one rule).
    All(Vec<Rule>),
    /// At least one rule holds (at least one rule).
    Any(Vec<Rule>),
    /// The rule does not hold.
    Not(Box<Rule>),
    Clause(Clause),
}

/// One test of one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// `entity.Status`, `entity.Lines`, `shop.id`; inside a `where`, relative to the item
    /// (`Sku`).
    pub field: String,
    pub op: Op,
    /// The operand, as written (its shape depends on `op` and the field's kind).
    pub value: Option<Json>,
    /// The rule each item is tested with (`anyItem`, `allItems`, `noItem`).
    pub item_rule: Option<Box<Rule>>,
    /// The field's kind, for a field the event type does not describe, or `date` for a text
    /// field holding dates.
    pub kind: Option<Kind>,
}

/// What a field holds, as far as operators are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Text,
    Number,
    Date,
    Boolean,
    List,
    Object,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Text,
        Kind::Number,
        Kind::Date,
        Kind::Boolean,
        Kind::List,
        Kind::Object,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Number => "number",
            Kind::Date => "date",
            Kind::Boolean => "boolean",
            Kind::List => "list",
            Kind::Object => "object",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The operators that fit a field of this kind, in the order a picker lists them.
    pub fn ops(self) -> &'static [Op] {
        use Op::*;
        match self {
            Kind::Text => &[
                Equals,
                NotEquals,
                In,
                NotIn,
                Contains,
                NotContains,
                StartsWith,
                EndsWith,
                IsEmpty,
                IsNotEmpty,
                Changed,
                ChangedTo,
                ChangedFrom,
            ],
            Kind::Number | Kind::Date => &[
                Equals,
                NotEquals,
                GreaterThan,
                GreaterThanOrEqual,
                LessThan,
                LessThanOrEqual,
                Between,
                In,
                NotIn,
                IsEmpty,
                IsNotEmpty,
                Changed,
                ChangedTo,
                ChangedFrom,
            ],
            Kind::Boolean => &[
                Equals,
                NotEquals,
                IsEmpty,
                IsNotEmpty,
                Changed,
                ChangedTo,
                ChangedFrom,
            ],
            Kind::List => &[
                AnyItem,
                AllItems,
                NoItem,
                Contains,
                NotContains,
                CountEquals,
                CountGreaterThan,
                CountLessThan,
                CountBetween,
                IsEmpty,
                IsNotEmpty,
                Changed,
            ],
            Kind::Object => &[IsEmpty, IsNotEmpty, Changed],
        }
    }
}

macro_rules! ops {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A clause's operator.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op { $($variant),* }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];

            /// The name in a rule's JSON (and the test's name in its expression).
            pub fn as_str(self) -> &'static str {
                match self { $(Op::$variant => $name),* }
            }
        }
    };
}

ops! {
    Equals = "equals",
    NotEquals = "notEquals",
    In = "in",
    NotIn = "notIn",
    Contains = "contains",
    NotContains = "notContains",
    StartsWith = "startsWith",
    EndsWith = "endsWith",
    IsEmpty = "isEmpty",
    IsNotEmpty = "isNotEmpty",
    GreaterThan = "greaterThan",
    GreaterThanOrEqual = "greaterThanOrEqual",
    LessThan = "lessThan",
    LessThanOrEqual = "lessThanOrEqual",
    Between = "between",
    AnyItem = "anyItem",
    AllItems = "allItems",
    NoItem = "noItem",
    CountEquals = "countEquals",
    CountGreaterThan = "countGreaterThan",
    CountLessThan = "countLessThan",
    CountBetween = "countBetween",
    Changed = "changed",
    ChangedTo = "changedTo",
    ChangedFrom = "changedFrom",
}

impl Op {
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.as_str() == name)
    }

    /// What the clause's `value` must be.
    pub(crate) fn operand(self) -> Operand {
        use Op::*;
        match self {
            IsEmpty | IsNotEmpty | Changed => Operand::None,
            AnyItem | AllItems | NoItem => Operand::ItemRule,
            In | NotIn => Operand::List,
            Between => Operand::Range,
            CountEquals | CountGreaterThan | CountLessThan => Operand::Count,
            CountBetween => Operand::CountRange,
            Equals | NotEquals | Contains | NotContains | StartsWith | EndsWith | GreaterThan
            | GreaterThanOrEqual | LessThan | LessThanOrEqual | ChangedTo | ChangedFrom => {
                Operand::One
            }
        }
    }

    /// Whether it compares with the event's previous state.
    pub fn is_change(self) -> bool {
        matches!(self, Op::Changed | Op::ChangedTo | Op::ChangedFrom)
    }
}

/// The shape of a clause's `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operand {
    /// No value.
    None,
    /// One value of the field's kind.
    One,
    /// A list of values of the field's kind.
    List,
    /// `[low, high]`, inclusive.
    Range,
    /// A whole number of items.
    Count,
    /// `[low, high]` numbers of items, inclusive.
    CountRange,
    /// No value: a `where` rule instead.
    ItemRule,
}

/// A rule that cannot be saved: the path of the clause or group at fault, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RuleError {
    /// `rules`, `rules.all[1].any[0]`, `rules.all[0].where.not`.
    pub path: String,
    pub message: String,
}

pub(crate) fn rule_error(path: &str, message: impl Into<String>) -> RuleError {
    RuleError {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl Rule {
    /// Reads a rule's JSON form. Only its structure is checked here (groups, operators, field
    /// paths, limits); [`Rule::check`] checks it against an event type. `path` names the rule
    /// in errors (`rules`).
    pub fn parse(json: &Json, path: &str) -> Result<Rule, RuleError> {
        let mut budget = MAX_CLAUSES;
        parse_rule(json, path, 0, &mut budget)
    }

    /// The canonical JSON form: what [`Rule::parse`] reads back into an equal rule.
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        match self {
            Rule::All(rules) => {
                map.insert("all".into(), rules.iter().map(Rule::to_json).collect());
            }
            Rule::Any(rules) => {
                map.insert("any".into(), rules.iter().map(Rule::to_json).collect());
            }
            Rule::Not(rule) => {
                map.insert("not".into(), rule.to_json());
            }
            Rule::Clause(c) => {
                map.insert("field".into(), c.field.clone().into());
                map.insert("op".into(), c.op.as_str().into());
                if let Some(value) = &c.value {
                    map.insert("value".into(), value.clone());
                }
                if let Some(rule) = &c.item_rule {
                    map.insert("where".into(), rule.to_json());
                }
                if let Some(kind) = c.kind {
                    map.insert("type".into(), kind.as_str().into());
                }
            }
        }
        Json::Object(map)
    }

    /// Every clause, nested ones included, in order.
    pub fn clause_count(&self) -> usize {
        match self {
            Rule::All(rules) | Rule::Any(rules) => rules.iter().map(Rule::clause_count).sum(),
            Rule::Not(rule) => rule.clause_count(),
            Rule::Clause(c) => 1 + c.item_rule.as_ref().map_or(0, |r| r.clause_count()),
        }
    }
}

fn parse_rule(
    json: &Json,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Rule, RuleError> {
    let Json::Object(map) = json else {
        return Err(rule_error(
            path,
            "a rule must be an object: a group (\"all\", \"any\" or \"not\") or a clause \
             (\"field\", \"op\", \"value\")",
        ));
    };
    for group in ["all", "any", "not"] {
        let Some(inner) = map.get(group) else {
            continue;
        };
        if map.len() > 1 {
            let others: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| *k != group)
                .collect();
            return Err(rule_error(
                path,
                format!(
                    "a \"{group}\" group has no other keys (found {})",
                    others.join(", ")
                ),
            ));
        }
        if depth >= MAX_DEPTH {
            return Err(rule_error(
                path,
                format!("groups nest at most {MAX_DEPTH} deep"),
            ));
        }
        let inner_path = format!("{path}.{group}");
        if group == "not" {
            return Ok(Rule::Not(Box::new(parse_rule(
                inner,
                &inner_path,
                depth + 1,
                budget,
            )?)));
        }
        let Json::Array(items) = inner else {
            return Err(rule_error(
                &inner_path,
                format!("an \"{group}\" group is a list of rules"),
            ));
        };
        if items.is_empty() {
            return Err(rule_error(
                &inner_path,
                format!("an \"{group}\" group needs at least one rule"),
            ));
        }
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_rule(item, &format!("{inner_path}[{i}]"), depth + 1, budget))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if group == "all" {
            Rule::All(rules)
        } else {
            Rule::Any(rules)
        });
    }
    if *budget == 0 {
        return Err(rule_error(
            path,
            format!("a rule has at most {MAX_CLAUSES} clauses"),
        ));
    }
    *budget -= 1;
    parse_clause(map, path, depth, budget).map(Rule::Clause)
}

fn parse_clause(
    map: &Map<String, Json>,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Clause, RuleError> {
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "field" | "op" | "value" | "where" | "type"))
    {
        return Err(rule_error(
            path,
            format!(
                "unknown key \"{key}\": a clause has \"field\", \"op\", \"value\", \"where\" and \
                 \"type\"; a group is \"all\", \"any\" or \"not\""
            ),
        ));
    }
    let field = match map.get("field") {
        Some(Json::String(field)) => field.clone(),
        Some(_) => return Err(rule_error(path, "\"field\" must be a string")),
        None => return Err(rule_error(path, "a clause needs a \"field\"")),
    };
    FieldPath::parse(&field).map_err(|m| rule_error(path, format!("field {field:?}: {m}")))?;
    let op = match map.get("op") {
        Some(Json::String(name)) => Op::parse(name).ok_or_else(|| {
            rule_error(
                path,
                format!(
                    "unknown operator {name:?}; the operators are {}",
                    Op::ALL
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
        Some(_) => return Err(rule_error(path, "\"op\" must be a string")),
        None => return Err(rule_error(path, "a clause needs an \"op\"")),
    };
    let kind = match map.get("type") {
        None => None,
        Some(Json::String(name)) => Some(Kind::parse(name).ok_or_else(|| {
            rule_error(
                path,
                format!(
                    "unknown type {name:?}; the types are text, number, date, boolean, list \
                     and object"
                ),
            )
        })?),
        Some(_) => return Err(rule_error(path, "\"type\" must be a string")),
    };
    let item_rule = match (map.get("where"), op.operand()) {
        (Some(rule), Operand::ItemRule) => {
            if depth >= MAX_DEPTH {
                return Err(rule_error(
                    path,
                    format!("groups nest at most {MAX_DEPTH} deep"),
                ));
            }
            Some(Box::new(parse_rule(
                rule,
                &format!("{path}.where"),
                depth + 1,
                budget,
            )?))
        }
        (None, Operand::ItemRule) => {
            return Err(rule_error(
                path,
                format!(
                    "{} needs a \"where\" rule that each item is tested with",
                    op.as_str()
                ),
            ))
        }
        (Some(_), _) => {
            return Err(rule_error(
                path,
                format!(
                    "\"where\" belongs to anyItem, allItems and noItem, not to {}",
                    op.as_str()
                ),
            ))
        }
        (None, _) => None,
    };
    let value = map.get("value").cloned();
    match (op.operand(), &value) {
        (Operand::None | Operand::ItemRule, Some(_)) => {
            return Err(rule_error(
                path,
                format!("{} takes no \"value\"", op.as_str()),
            ))
        }
        (Operand::None | Operand::ItemRule, None) => {}
        (_, None) => {
            return Err(rule_error(
                path,
                format!("{} needs a \"value\"", op.as_str()),
            ))
        }
        (_, Some(_)) => {}
    }
    Ok(Clause {
        field,
        op,
        value,
        item_rule,
        kind,
    })
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed field path: `entity.Lines[0]["odd key"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath(pub(crate) Vec<Segment>);

impl FieldPath {
    /// Reads `name(.name | [index] | ["key"])*`.
    pub(crate) fn parse(source: &str) -> Result<FieldPath, String> {
        if source.is_empty() {
            return Err("the field is empty".into());
        }
        let bytes = source.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        let mut expect_name = true;
        while i < bytes.len() {
            if expect_name {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if start == i || bytes[start].is_ascii_digit() {
                    return Err(format!(
                        "expected a name at character {} (a name is letters, digits and _; \
                         write other keys as [\"key\"])",
                        start + 1
                    ));
                }
                segments.push(Segment::Key(source[start..i].to_owned()));
                expect_name = false;
                continue;
            }
            match bytes[i] {
                b'.' => {
                    i += 1;
                    expect_name = true;
                }
                b'[' if bytes.get(i + 1) == Some(&b'"') => {
                    // A JSON string up to its closing quote, then `]`.
                    let mut stream =
                        serde_json::Deserializer::from_str(&source[i + 1..]).into_iter::<String>();
                    let key = match stream.next() {
                        Some(Ok(key)) => key,
                        _ => {
                            return Err(format!(
                                "a [\"key\"] at character {} is not a JSON string",
                                i + 1
                            ))
                        }
                    };
                    i += 1 + stream.byte_offset();
                    if bytes.get(i) != Some(&b']') {
                        return Err(format!("expected ] at character {}", i + 1));
                    }
                    i += 1;
                    segments.push(Segment::Key(key));
                }
                b'[' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < bytes.len() && bytes[end].is_ascii_digit() {
                        end += 1;
                    }
                    let index = source[start..end]
                        .parse::<usize>()
                        .ok()
                        .filter(|_| bytes.get(end) == Some(&b']'))
                        .ok_or_else(|| {
                            format!("expected [index] or [\"key\"] at character {}", i + 1)
                        })?;
                    segments.push(Segment::Index(index));
                    i = end + 1;
                }
                other => {
                    return Err(format!(
                        "unexpected {:?} at character {}",
                        other as char,
                        i + 1
                    ))
                }
            }
        }
        if expect_name {
            return Err("the field ends with a dot".into());
        }
        Ok(FieldPath(segments))
    }

    /// The path as a template writes it (`entity.Lines[0]["odd key"]`).
    pub(crate) fn write(segments: &[Segment], out: &mut String) {
        for (i, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_identifier(key) => {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Segment::Key(key) => {
                    out.push('[');
                    out.push_str(&Json::from(key.as_str()).to_string());
                    out.push(']');
                }
                Segment::Index(index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        FieldPath::write(&self.0, &mut out);
        f.write_str(&out)
    }
}

pub(crate) fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;

//! The save-time step: a rule's fields resolved against an event type, its operators and values
//! checked to fit, and the whole compiled for evaluation.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::catalog::EventType;
use crate::fields::{schema_type, ValueType};
use crate::rules::{
    rule_error, Clause, FieldPath, Kind, Op, Rule, RuleError, Segment, MAX_LIST_VALUES, MAX_TEXT,
};

/// A rule checked against its event type and ready to evaluate. Cheap to evaluate, and shared
/// by every event of the type.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub(crate) root: Node,
    /// Each clause's description, by its leaf id.
    pub(crate) clauses: Vec<ClauseInfo>,
}

/// What the trace says about a clause besides what it saw.
#[derive(Debug, Clone)]
pub(crate) struct ClauseInfo {
    /// `rules.all[1].any[0]`; shared, so naming the deciding clause of an evaluation (once
    /// per trigger per event at ingest) allocates nothing.
    pub path: Arc<str>,
    /// As written (relative to the item inside a `where`).
    pub field: String,
    pub op: Op,
    pub expected: Option<Json>,
    pub kind: Kind,
    /// The `where` rule's JSON, for the expression.
    pub item_rule: Option<Json>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    All(Box<[Node]>),
    Any(Box<[Node]>),
    Not(Box<Node>),
    Leaf(Leaf),
}

#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Index into [`CompiledRule::clauses`].
    pub id: u32,
    pub target: Target,
    pub test: Test,
}

/// Where a clause reads its value.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Below the entity (the segments after `entity`).
    Entity(Box<[Segment]>),
    /// Below the item a `where` rule is testing (empty: the item itself).
    Item(Box<[Segment]>),
    Event(EventField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventField {
    Id,
    Type,
    OccurredAt,
    EntityId,
    ShopId,
    ShopName,
}

/// A value of a clause, in the form its kind compares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expected {
    Text(String),
    Number(f64),
    /// UTC milliseconds.
    Date(i64),
    Boolean(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantifier {
    Any,
    All,
    None,
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Equals(Expected),
    NotEquals(Expected),
    In(Vec<Expected>),
    NotIn(Vec<Expected>),
    Contains(String),
    NotContains(String),
    StartsWith(String),
    EndsWith(String),
    IsEmpty,
    IsNotEmpty,
    Compare(Cmp, Expected),
    Between(Expected, Expected),
    Items(Quantifier, Box<Node>),
    ListContains(Expected),
    ListNotContains(Expected),
    Count(Cmp, u64),
    CountBetween(u64, u64),
    Changed,
    ChangedTo(Expected),
    ChangedFrom(Expected),
}

impl Rule {
    /// Checks the rule against `event_type` and compiles it. Errors name the clause by its
    /// path below `path` (`rules.all[1].any[0]`).
    pub fn check(&self, event_type: &EventType, path: &str) -> Result<CompiledRule, RuleError> {
        let mut compiler = Compiler {
            event_type: Some(event_type),
            type_name: &event_type.name,
            clauses: Vec::new(),
            typed: true,
        };
        let root = compiler.rule(self, path, None)?;
        Ok(CompiledRule {
            root,
            clauses: compiler.clauses,
        })
    }
}

impl CompiledRule {
    /// One clause on a value itself, without an event type: what an expression's test does
    /// (its `where` rule's fields are taken at the kind each clause declares or its value
    /// suggests).
    pub(crate) fn one_clause(
        op: Op,
        kind: Kind,
        value: Option<Json>,
        item_rule: Option<Rule>,
    ) -> Result<CompiledRule, RuleError> {
        let mut compiler = Compiler {
            event_type: None,
            type_name: "",
            clauses: Vec::new(),
            typed: false,
        };
        let clause = Clause {
            field: "value".into(),
            op,
            value,
            item_rule: item_rule.map(Box::new),
            kind: Some(kind),
        };
        let leaf = compiler.leaf(&clause, "rule", kind, Target::Item(Box::new([])), None)?;
        Ok(CompiledRule {
            root: Node::Leaf(leaf),
            clauses: compiler.clauses,
        })
    }
}

struct Compiler<'a> {
    /// `None`: fields are not resolved (an expression's tests).
    event_type: Option<&'a EventType>,
    type_name: &'a str,
    clauses: Vec<ClauseInfo>,
    /// Fields are resolved against the type (`false`: taken at their declared or suggested
    /// kind, for an expression's tests).
    typed: bool,
}

/// The items a `where` rule tests: their full path (`entity.Lines[0]`), when the type
/// describes them.
type ItemScope<'s> = Option<&'s [Segment]>;

impl Compiler<'_> {
    fn rule(
        &mut self,
        rule: &Rule,
        path: &str,
        item: Option<ItemScope<'_>>,
    ) -> Result<Node, RuleError> {
        Ok(match rule {
            Rule::All(rules) => Node::All(self.group(rules, &format!("{path}.all"), item)?),
            Rule::Any(rules) => Node::Any(self.group(rules, &format!("{path}.any"), item)?),
            Rule::Not(rule) => {
                Node::Not(Box::new(self.rule(rule, &format!("{path}.not"), item)?))
            }
            Rule::Clause(clause) => Node::Leaf(self.clause(clause, path, item)?),
        })
    }

    fn group(
        &mut self,
        rules: &[Rule],
        path: &str,
        item: Option<ItemScope<'_>>,
    ) -> Result<Box<[Node]>, RuleError> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| self.rule(r, &format!("{path}[{i}]"), item))
            .collect()
    }

    /// `item`: `None` at the top; inside a `where`, the listed path of the list's items
    /// (`entity.Lines[0]`) when the type describes them.
    fn clause(
        &mut self,
        clause: &Clause,
        path: &str,
        item: Option<ItemScope<'_>>,
    ) -> Result<Leaf, RuleError> {
        let parsed = FieldPath::parse(&clause.field).map_err(|m| rule_error(path, m))?;
        // The field's full path, from `entity`, when the type may describe it.
        let full_path: Option<Vec<Segment>> = match item {
            None => Some(parsed.0.clone()),
            Some(Some(prefix)) => Some(prefix.iter().chain(&parsed.0).cloned().collect()),
            Some(None) => None,
        };
        let (target, fixed) = match item {
            None => self.top_target(parsed, &clause.field, path)?,
            Some(_) => (Target::Item(parsed.0.into_boxed_slice()), None),
        };
        let listed = match &target {
            Target::Event(_) => None,
            _ => full_path.as_deref().and_then(|p| self.lookup(p)),
        };
        let kind = match (listed, clause.kind, fixed) {
            (_, _, Some(kind)) => {
                if let Some(declared) = clause.kind.filter(|d| *d != kind) {
                    return Err(rule_error(
                        path,
                        format!(
                            "{} is {}; \"type\": \"{}\" does not fit it",
                            clause.field,
                            a_kind(kind),
                            declared.as_str()
                        ),
                    ));
                }
                kind
            }
            (Some(kind), None, None) => kind,
            (Some(kind), Some(declared), None) => {
                if declared == kind || (kind == Kind::Text && declared == Kind::Date) {
                    declared
                } else {
                    return Err(rule_error(
                        path,
                        format!(
                            "{} is {} in {}; \"type\": \"{}\" does not fit it",
                            clause.field,
                            a_kind(kind),
                            self.type_name,
                            declared.as_str()
                        ),
                    ));
                }
            }
            (None, Some(declared), None) => declared,
            (None, None, None) => {
                let whose = match item {
                    Some(_) => "the list's items have".to_owned(),
                    None => format!("{} has", self.type_name),
                };
                return Err(rule_error(
                    path,
                    format!(
                        "unknown field {}: {whose} no such field; pick one of its fields, or \
                         give the type of a field it does not describe (\"type\": \"text\", \
                         \"number\", \"date\", \"boolean\", \"list\" or \"object\")",
                        clause.field
                    ),
                ));
            }
        };
        if clause.op.is_change() {
            if item.is_some() {
                return Err(rule_error(
                    path,
                    format!(
                        "{} compares with the event's previousData, which a where rule's item \
                         does not have",
                        clause.op.as_str()
                    ),
                ));
            }
            if matches!(target, Target::Event(_)) {
                return Err(rule_error(
                    path,
                    format!(
                        "{} applies to the entity's fields; {} does not change",
                        clause.op.as_str(),
                        clause.field
                    ),
                ));
            }
        }
        let item_scope = match (&target, listed) {
            (Target::Event(_), _) | (_, None) => None,
            (_, Some(_)) => full_path.map(|mut p| {
                p.push(Segment::Index(0));
                p
            }),
        };
        self.leaf(clause, path, kind, target, item_scope)
    }

    /// A top-level field: `entity.…`, `event.…`, `shop.…` or `entityId`. The third part is the
    /// kind of an event field, which is fixed.
    fn top_target(
        &self,
        parsed: FieldPath,
        field: &str,
        path: &str,
    ) -> Result<(Target, Option<Kind>), RuleError> {
        let event = |f: EventField, kind: Kind| Ok((Target::Event(f), Some(kind)));
        let segments = parsed.0;
        let key = |i: usize| match segments.get(i) {
            Some(Segment::Key(k)) => Some(k.as_str()),
            _ => None,
        };
        match (key(0), key(1), segments.len()) {
            (Some("entity"), _, n) if n >= 2 => Ok((
                Target::Entity(segments[1..].to_vec().into_boxed_slice()),
                None,
            )),
            (Some("entityId"), _, 1) | (Some("event"), Some("entityId"), 2) => {
                event(EventField::EntityId, Kind::Text)
            }
            (Some("event"), Some("id"), 2) => event(EventField::Id, Kind::Number),
            (Some("event"), Some("type"), 2) => event(EventField::Type, Kind::Text),
            (Some("event"), Some("occurredAt"), 2) => event(EventField::OccurredAt, Kind::Date),
            (Some("shop"), Some("id"), 2) => event(EventField::ShopId, Kind::Number),
            (Some("shop"), Some("name"), 2) => event(EventField::ShopName, Kind::Text),
            _ => Err(rule_error(
                path,
                format!(
                    "unknown field {field}: a field is entity.<name> (the entity's fields), \
                     event.id, event.type, event.occurredAt, event.entityId, entityId, shop.id \
                     or shop.name"
                ),
            )),
        }
    }

    /// The kind the type describes at `path` (from `entity`): a catalog field's type, or what
    /// the entity schema says there (`None`: not described).
    fn lookup(&self, path: &[Segment]) -> Option<Kind> {
        let event_type = self.event_type?;
        let (Segment::Key(root), rest) = path.split_first()? else {
            return None;
        };
        if root != "entity" {
            return None;
        }
        if let [Segment::Key(name)] = rest {
            if let Some(field) = event_type.fields.iter().find(|f| &f.name == name) {
                return kind_of(field.ty.into());
            }
        }
        let mut schema = event_type.schema.as_ref()?;
        for segment in rest {
            schema = match segment {
                Segment::Key(key) => schema.get("properties")?.get(key)?,
                Segment::Index(_) => schema.get("items")?,
            };
        }
        kind_of(schema_type(schema))
    }

    fn leaf(
        &mut self,
        clause: &Clause,
        path: &str,
        kind: Kind,
        target: Target,
        item_scope: Option<Vec<Segment>>,
    ) -> Result<Leaf, RuleError> {
        let op = clause.op;
        if !kind.ops().contains(&op) {
            return Err(rule_error(
                path,
                format!(
                    "{} does not fit {} ({}); for {} the operators are {}",
                    op.as_str(),
                    clause.field,
                    kind.as_str(),
                    kind.as_str(),
                    kind.ops()
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let id = self.clauses.len() as u32;
        self.clauses.push(ClauseInfo {
            path: Arc::from(path),
            field: clause.field.clone(),
            op,
            expected: clause.value.clone(),
            kind,
            item_rule: clause.item_rule.as_ref().map(|r| r.to_json()),
        });
        let value = clause.value.as_ref();
        let at = |m: String| rule_error(path, format!("value: {m}"));
        let one = |v: Option<&Json>| expected(kind, v.unwrap_or(&Json::Null)).map_err(at);
        let test = match op {
            Op::Equals => Test::Equals(one(value)?),
            Op::NotEquals => Test::NotEquals(one(value)?),
            Op::In | Op::NotIn => {
                let values = match value {
                    Some(Json::Array(items))
                        if !items.is_empty() && items.len() <= MAX_LIST_VALUES =>
                    {
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| {
                                expected(kind, v)
                                    .map_err(|m| rule_error(path, format!("value[{i}]: {m}")))
                            })
                            .collect::<Result<Vec<_>, _>>()?
                    }
                    _ => {
                        return Err(at(format!(
                            "{} takes a list of 1 to {MAX_LIST_VALUES} values",
                            op.as_str()
                        )))
                    }
                };
                if op == Op::In {
                    Test::In(values)
                } else {
                    Test::NotIn(values)
                }
            }
            Op::Contains | Op::NotContains if kind == Kind::List => {
                let v = scalar(value.unwrap_or(&Json::Null)).map_err(at)?;
                if op == Op::Contains {
                    Test::ListContains(v)
                } else {
                    Test::ListNotContains(v)
                }
            }
            Op::Contains | Op::NotContains | Op::StartsWith | Op::EndsWith => {
                let text = match value {
                    Some(Json::String(s)) if !s.is_empty() && s.chars().count() <= MAX_TEXT => {
                        s.clone()
                    }
                    _ => {
                        return Err(at(format!(
                            "{} takes a text of 1 to {MAX_TEXT} characters",
                            op.as_str()
                        )))
                    }
                };
                match op {
                    Op::Contains => Test::Contains(text),
                    Op::NotContains => Test::NotContains(text),
                    Op::StartsWith => Test::StartsWith(text),
                    _ => Test::EndsWith(text),
                }
            }
            Op::IsEmpty => Test::IsEmpty,
            Op::IsNotEmpty => Test::IsNotEmpty,
            Op::GreaterThan => Test::Compare(Cmp::Gt, one(value)?),
            Op::GreaterThanOrEqual => Test::Compare(Cmp::Ge, one(value)?),
            Op::LessThan => Test::Compare(Cmp::Lt, one(value)?),
            Op::LessThanOrEqual => Test::Compare(Cmp::Le, one(value)?),
            Op::Between => {
                let (low, high) = match value {
                    Some(Json::Array(items)) if items.len() == 2 => (
                        expected(kind, &items[0])
                            .map_err(|m| rule_error(path, format!("value[0]: {m}")))?,
                        expected(kind, &items[1])
                            .map_err(|m| rule_error(path, format!("value[1]: {m}")))?,
                    ),
                    _ => return Err(at("between takes [low, high]".into())),
                };
                if sort_key(&low) > sort_key(&high) {
                    return Err(at("between takes [low, high] with low at most high".into()));
                }
                Test::Between(low, high)
            }
            Op::AnyItem | Op::AllItems | Op::NoItem => {
                let quantifier = match op {
                    Op::AnyItem => Quantifier::Any,
                    Op::AllItems => Quantifier::All,
                    _ => Quantifier::None,
                };
                let rule = clause.item_rule.as_deref().ok_or_else(|| {
                    rule_error(path, format!("{} needs a \"where\" rule", op.as_str()))
                })?;
                let where_path = format!("{path}.where");
                let node = if self.typed {
                    self.rule(rule, &where_path, Some(item_scope.as_deref()))?
                } else {
                    self.untyped(rule, &where_path)?
                };
                Test::Items(quantifier, Box::new(node))
            }
            Op::CountEquals | Op::CountGreaterThan | Op::CountLessThan => {
                let n = count(value).map_err(at)?;
                let cmp = match op {
                    Op::CountEquals => Cmp::Eq,
                    Op::CountGreaterThan => Cmp::Gt,
                    _ => Cmp::Lt,
                };
                Test::Count(cmp, n)
            }
            Op::CountBetween => match value {
                Some(Json::Array(items)) if items.len() == 2 => {
                    let low = count(Some(&items[0]))
                        .map_err(|m| rule_error(path, format!("value[0]: {m}")))?;
                    let high = count(Some(&items[1]))
                        .map_err(|m| rule_error(path, format!("value[1]: {m}")))?;
                    if low > high {
                        return Err(at(
                            "countBetween takes [low, high] with low at most high".into()
                        ));
                    }
                    Test::CountBetween(low, high)
                }
                _ => return Err(at("countBetween takes [low, high] numbers of items".into())),
            },
            Op::Changed => Test::Changed,
            Op::ChangedTo => Test::ChangedTo(one(value)?),
            Op::ChangedFrom => Test::ChangedFrom(one(value)?),
        };
        Ok(Leaf { id, target, test })
    }

    /// A `where` rule of an expression's test: fields are relative to the item and taken at
    /// the kind each clause declares or its value suggests.
    fn untyped(&mut self, rule: &Rule, path: &str) -> Result<Node, RuleError> {
        Ok(match rule {
            Rule::All(rules) => Node::All(
                rules
                    .iter()
                    .map(|r| self.untyped(r, path))
                    .collect::<Result<_, _>>()?,
            ),
            Rule::Any(rules) => Node::Any(
                rules
                    .iter()
                    .map(|r| self.untyped(r, path))
                    .collect::<Result<_, _>>()?,
            ),
            Rule::Not(rule) => Node::Not(Box::new(self.untyped(rule, path)?)),
            Rule::Clause(clause) => {
                let parsed = FieldPath::parse(&clause.field).map_err(|m| rule_error(path, m))?;
                let kind = clause.kind.unwrap_or(match &clause.value {
                    _ if clause.item_rule.is_some() => Kind::List,
                    Some(v) => infer_kind(v).unwrap_or(Kind::Text),
                    None => Kind::Text,
                });
                let target = Target::Item(parsed.0.into_boxed_slice());
                Node::Leaf(self.leaf(clause, path, kind, target, None)?)
            }
        })
    }
}

/// The kind a value of a clause suggests (for a list, its first item's).
pub(crate) fn infer_kind(value: &Json) -> Option<Kind> {
    match value {
        Json::String(_) => Some(Kind::Text),
        Json::Number(_) => Some(Kind::Number),
        Json::Bool(_) => Some(Kind::Boolean),
        Json::Array(items) => items.first().and_then(infer_kind),
        _ => None,
    }
}

fn a_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a text",
        Kind::Number => "a number",
        Kind::Date => "a date",
        Kind::Boolean => "a boolean",
        Kind::List => "a list",
        Kind::Object => "an object",
    }
}

fn kind_of(ty: ValueType) -> Option<Kind> {
    match ty {
        ValueType::Integer | ValueType::Number => Some(Kind::Number),
        ValueType::String => Some(Kind::Text),
        ValueType::Boolean => Some(Kind::Boolean),
        ValueType::Array => Some(Kind::List),
        ValueType::Object => Some(Kind::Object),
        ValueType::Null => None,
    }
}

/// A clause value of `kind`.
pub(crate) fn expected(kind: Kind, value: &Json) -> Result<Expected, String> {
    match (kind, value) {
        (Kind::Text, Json::String(s)) if s.chars().count() <= MAX_TEXT => {
            Ok(Expected::Text(s.clone()))
        }
        (Kind::Text, Json::String(_)) => Err(format!("a text of at most {MAX_TEXT} characters")),
        (Kind::Text, _) => Err(format!("expected a text, found {}", json_kind(value))),
        (Kind::Number, Json::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Expected::Number)
            .ok_or_else(|| "expected a finite number".to_owned()),
        (Kind::Number, _) => Err(format!("expected a number, found {}", json_kind(value))),
        (Kind::Date, Json::String(s)) => parse_date(s).map(Expected::Date).ok_or_else(|| {
            format!("{s:?} is not a date: write an RFC 3339 date-time or YYYY-MM-DD")
        }),
        (Kind::Date, _) => Err(format!(
            "expected a date (RFC 3339 or YYYY-MM-DD), found {}",
            json_kind(value)
        )),
        (Kind::Boolean, Json::Bool(b)) => Ok(Expected::Boolean(*b)),
        (Kind::Boolean, _) => Err(format!(
            "expected true or false, found {}",
            json_kind(value)
        )),
        (Kind::List | Kind::Object, _) => scalar(value),
    }
}

/// A text, number or boolean, taken at its own kind.
fn scalar(value: &Json) -> Result<Expected, String> {
    match value {
        Json::String(_) => expected(Kind::Text, value),
        Json::Number(_) => expected(Kind::Number, value),
        Json::Bool(_) => expected(Kind::Boolean, value),
        _ => Err(format!(
            "expected a text, number or boolean, found {}",
            json_kind(value)
        )),
    }
}

fn count(value: Option<&Json>) -> Result<u64, String> {
    value
        .and_then(Json::as_u64)
        .ok_or_else(|| "expected a whole number of items (0 or more)".to_owned())
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a text",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// Orders values of one kind (for `between`'s bounds).
pub(crate) fn sort_key(e: &Expected) -> f64 {
    match e {
        Expected::Number(n) => *n,
        Expected::Date(ms) => *ms as f64,
        _ => 0.0,
    }
}

/// UTC milliseconds of an RFC 3339 date-time or a `YYYY-MM-DD` date (midnight UTC).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    if s.len() == 10 {
        let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// What decided an evaluation that ran out of clause tests.
const OVER_LIMIT_PATH: &str = "rules (more clause tests than allowed)";

impl CompiledRule {
    /// How many clauses it has (nested ones included).
    pub fn clause_count(&self) -> usize {
        self.clauses.len()
    }

    /// The path of clause `id` (`rules.all[1]`), as [`CompiledRule::matches_decided`] names
    /// the clause that decided.
    pub fn clause_path(&self, id: u32) -> Option<&str> {
        if id == crate::rules::eval::OVER_LIMIT {
            return Some(OVER_LIMIT_PATH);
        }
        self.clauses.get(id as usize).map(|c| &*c.path)
    }

    /// [`CompiledRule::clause_path`], shared: what an evaluation records as having decided.
    pub fn decided_by(&self, id: u32) -> Option<Arc<str>> {
        if id == crate::rules::eval::OVER_LIMIT {
            return Some(Arc::from(OVER_LIMIT_PATH));
        }
        self.clauses.get(id as usize).map(|c| c.path.clone())
    }
}

//! Evaluating a compiled rule: fast (short-circuiting, no allocation on the common paths) for
//! ingest, and clause by clause with the values seen for a dry run.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use crate::rules::check::{
    parse_date, Cmp, CompiledRule, EventField, Expected, Leaf, Node, Quantifier, Target, Test,
};
use crate::rules::Segment;

/// Most items of one list whose clauses a trace shows (the verdict still reads them all).
const TRACED_ITEMS: usize = 20;
/// Most steps one trace shows.
const TRACED_STEPS: usize = 1000;
/// Most clause tests one evaluation may make. Lists nested in lists multiply them (a `where`
/// in a `where` over lists of a thousand items is a million tests), and an event's entity is
/// the sender's: past this the rule does not hold, rather than hold up ingest.
pub const MAX_TESTS: u32 = 100_000;
/// What [`CompiledRule::matches_decided`] answers as the deciding clause when the evaluation
/// ran out of [`MAX_TESTS`].
pub const OVER_LIMIT: u32 = u32::MAX;
/// Longest value a trace shows whole; a longer one is summarised.
const TRACED_VALUE_BYTES: usize = 2048;

/// What a rule is evaluated on: one event.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub entity: &'a Map<String, Json>,
    /// The entity before the change, when the event carries it.
    pub previous: Option<&'a Map<String, Json>>,
    pub event_id: i64,
    pub event_type: &'a str,
    /// RFC 3339.
    pub occurred_at: &'a str,
    pub entity_id: &'a str,
    pub shop_id: i64,
    pub shop_name: &'a str,
}

/// One clause as a dry run shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceStep {
    /// `rules.all[1].any[0]`; a clause of a `where` rule adds the item it tested
    /// (`rules.all[1].where.all[0]`, with `field` `entity.Lines[2].Sku`).
    pub path: String,
    /// The field read, with the item's index inside a `where`.
    pub field: String,
    pub op: &'static str,
    /// The clause's value, as written.
    pub expected: Option<Json>,
    /// What the event held there (`null`: no value).
    pub actual: Json,
    /// The value before the change, for the change operators (`None` when the event carries
    /// no `previousData`).
    pub previous: Option<Json>,
    pub result: bool,
    /// Why, where the value alone does not say (no previous state, items not shown, …).
    pub note: Option<String>,
}

/// The scope a clause reads from: the event, or one item of a list.
#[derive(Clone, Copy)]
struct Scope<'a> {
    subject: &'a Subject<'a>,
    item: Option<&'a Json>,
}

/// One evaluation's bookkeeping: the clause read last, and the tests left.
struct Run {
    last: u32,
    left: u32,
}

impl Run {
    fn new() -> Run {
        Run {
            last: 0,
            left: MAX_TESTS,
        }
    }
}

impl CompiledRule {
    /// Whether the rule holds for the event. A rule that needs more than [`MAX_TESTS`]
    /// clause tests for it does not.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        self.matches_decided(subject).0
    }

    /// Whether the rule holds, and the id of the clause that decided it: the last one read
    /// before the verdict was certain (see [`CompiledRule::clause_path`]), or [`OVER_LIMIT`].
    pub fn matches_decided(&self, subject: &Subject<'_>) -> (bool, u32) {
        let mut run = Run::new();
        let scope = Scope {
            subject,
            item: None,
        };
        let result = eval(&self.root, scope, &mut run);
        if run.left == 0 {
            return (false, OVER_LIMIT);
        }
        (result, run.last)
    }

    /// Whether the rule holds, and every clause (none skipped, up to 1000 steps) with the
    /// value it saw.
    pub fn trace(&self, subject: &Subject<'_>) -> (bool, Vec<TraceStep>) {
        let mut steps = Vec::with_capacity(self.clauses.len());
        let mut tracer = Tracer {
            rule: self,
            steps: &mut steps,
            truncated: false,
        };
        let scope = Scope {
            subject,
            item: None,
        };
        tracer.node(&self.root, scope, None);
        if tracer.truncated {
            if let Some(last) = steps.last_mut() {
                last.note = Some(format!(
                    "the trace stops here: at most {TRACED_STEPS} steps are shown"
                ));
            }
        }
        let (result, decided) = self.matches_decided(subject);
        if decided == OVER_LIMIT {
            if let Some(first) = steps.first_mut() {
                first.note = Some(format!(
                    "the rule needs more than {MAX_TESTS} clause tests for this entity, so it \
                     does not hold"
                ));
            }
        }
        (result, steps)
    }
}

impl CompiledRule {
    /// Whether `node` (of a `where` rule) holds for one item; for an expression's tests.
    pub(crate) fn node_holds_for_item(&self, node: &Node, item: &Json) -> bool {
        let entity = Map::new();
        let subject = Subject {
            entity: &entity,
            previous: None,
            event_id: 0,
            event_type: "",
            occurred_at: "",
            entity_id: "",
            shop_id: 0,
            shop_name: "",
        };
        let mut run = Run::new();
        let holds = eval(
            node,
            Scope {
                subject: &subject,
                item: Some(item),
            },
            &mut run,
        );
        holds && run.left > 0
    }
}

fn eval(node: &Node, scope: Scope<'_>, run: &mut Run) -> bool {
    match node {
        Node::All(nodes) => nodes.iter().all(|n| eval(n, scope, run)),
        Node::Any(nodes) => nodes.iter().any(|n| eval(n, scope, run)),
        Node::Not(node) => !eval(node, scope, run),
        Node::Leaf(leaf) => {
            if run.left == 0 {
                // Out of tests: the verdict is void (`matches_decided` says so); stop reading.
                return false;
            }
            run.left -= 1;
            if scope.item.is_none() {
                run.last = leaf.id;
            }
            test(leaf, scope, run)
        }
    }
}

/// The value a clause reads (`None`: missing or null).
fn read<'a>(target: &Target, scope: Scope<'a>) -> Option<Cow<'a, Json>> {
    let subject = scope.subject;
    let found = match target {
        Target::Entity(path) => walk_map(subject.entity, path),
        Target::Item(path) => walk(scope.item?, path),
        Target::Event(field) => {
            return Some(Cow::Owned(match field {
                EventField::Id => Json::from(subject.event_id),
                EventField::Type => Json::from(subject.event_type),
                EventField::OccurredAt => Json::from(subject.occurred_at),
                EventField::EntityId => Json::from(subject.entity_id),
                EventField::ShopId => Json::from(subject.shop_id),
                EventField::ShopName => Json::from(subject.shop_name),
            }))
        }
    };
    found.filter(|v| !v.is_null()).map(Cow::Borrowed)
}

fn walk_map<'a>(map: &'a Map<String, Json>, path: &[Segment]) -> Option<&'a Json> {
    let (first, rest) = path.split_first()?;
    match first {
        Segment::Key(key) => walk(map.get(key)?, rest),
        Segment::Index(_) => None,
    }
}

fn walk<'a>(mut value: &'a Json, path: &[Segment]) -> Option<&'a Json> {
    for segment in path {
        value = match (segment, value) {
            (Segment::Key(key), Json::Object(map)) => map.get(key)?,
            (Segment::Index(i), Json::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The previous value of an entity field: `None` when the event carries no previous state,
/// `Some(None)` when the field had no value then.
fn read_previous<'a>(target: &Target, subject: &Subject<'a>) -> Option<Option<&'a Json>> {
    let previous = subject.previous?;
    Some(match target {
        Target::Entity(path) => walk_map(previous, path).filter(|v| !v.is_null()),
        _ => None,
    })
}

fn test(leaf: &Leaf, scope: Scope<'_>, run: &mut Run) -> bool {
    match &leaf.test {
        Test::Changed | Test::ChangedTo(_) | Test::ChangedFrom(_) => {
            let Some(previous) = read_previous(&leaf.target, scope.subject) else {
                return false;
            };
            let current = read(&leaf.target, scope);
            changed(&leaf.test, current.as_deref(), previous)
        }
        Test::Items(quantifier, node) => {
            let value = read(&leaf.target, scope);
            let items = match value.as_deref() {
                Some(Json::Array(items)) => items.as_slice(),
                _ => &[],
            };
            let last = run.last;
            let mut holds = |item: &Json| {
                eval(
                    node,
                    Scope {
                        subject: scope.subject,
                        item: Some(item),
                    },
                    run,
                )
            };
            let result = match quantifier {
                Quantifier::Any => items.iter().any(&mut holds),
                Quantifier::All => items.iter().all(&mut holds),
                Quantifier::None => !items.iter().any(&mut holds),
            };
            run.last = last;
            result
        }
        other => value_test(other, read(&leaf.target, scope).as_deref()),
    }
}

/// A test of one value (`None`: no value). Shared with the expression's tests.
pub(crate) fn value_test(test: &Test, value: Option<&Json>) -> bool {
    match test {
        Test::Equals(e) => value.is_some_and(|v| equals(e, v)),
        Test::NotEquals(e) => !value.is_some_and(|v| equals(e, v)),
        Test::In(es) => value.is_some_and(|v| es.iter().any(|e| equals(e, v))),
        Test::NotIn(es) => !value.is_some_and(|v| es.iter().any(|e| equals(e, v))),
        Test::Contains(s) => text(value).is_some_and(|t| t.contains(s.as_str())),
        Test::NotContains(s) => !text(value).is_some_and(|t| t.contains(s.as_str())),
        Test::StartsWith(s) => text(value).is_some_and(|t| t.starts_with(s.as_str())),
        Test::EndsWith(s) => text(value).is_some_and(|t| t.ends_with(s.as_str())),
        Test::IsEmpty => is_empty(value),
        Test::IsNotEmpty => !is_empty(value),
        Test::Compare(cmp, e) => value.is_some_and(|v| compare(*cmp, e, v)),
        Test::Between(low, high) => {
            value.is_some_and(|v| compare(Cmp::Ge, low, v) && compare(Cmp::Le, high, v))
        }
        Test::ListContains(e) => list(value).iter().any(|v| equals(e, v)),
        Test::ListNotContains(e) => !list(value).iter().any(|v| equals(e, v)),
        Test::Count(cmp, n) => {
            let len = list(value).len() as u64;
            match cmp {
                Cmp::Eq => len == *n,
                Cmp::Gt => len > *n,
                Cmp::Lt => len < *n,
                Cmp::Ge => len >= *n,
                Cmp::Le => len <= *n,
            }
        }
        Test::CountBetween(low, high) => (*low..=*high).contains(&(list(value).len() as u64)),
        // Handled by `test`, which reads the item list or the previous state.
        Test::Items(..) | Test::Changed | Test::ChangedTo(_) | Test::ChangedFrom(_) => false,
    }
}

/// A change test, given the current value and the previous one (`None`: no value then).
pub(crate) fn changed(test: &Test, current: Option<&Json>, previous: Option<&Json>) -> bool {
    if same(current, previous) {
        return false;
    }
    match test {
        Test::Changed => true,
        Test::ChangedTo(e) => current.is_some_and(|v| equals(e, v)),
        Test::ChangedFrom(e) => previous.is_some_and(|v| equals(e, v)),
        _ => false,
    }
}

/// Whether two values are the same (numbers by value: `1` and `1.0` are).
fn same(a: Option<&Json>, b: Option<&Json>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Json::Number(x)), Some(Json::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn list(value: Option<&Json>) -> &[Json] {
    match value {
        Some(Json::Array(items)) => items,
        _ => &[],
    }
}

fn is_empty(value: Option<&Json>) -> bool {
    match value {
        None | Some(Json::Null) => true,
        Some(Json::String(s)) => s.is_empty(),
        Some(Json::Array(items)) => items.is_empty(),
        Some(Json::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}

/// A value read as text: a string, or a number's decimal form.
fn text(value: Option<&Json>) -> Option<Cow<'_, str>> {
    match value? {
        Json::String(s) => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// A value read as a number: a number, or a string holding one.
fn number(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn equals(expected: &Expected, value: &Json) -> bool {
    match expected {
        Expected::Text(e) => match value {
            Json::String(s) => s == e,
            Json::Number(n) => n.to_string() == *e,
            _ => false,
        },
        Expected::Number(e) => number(value) == Some(*e),
        Expected::Date(e) => value.as_str().and_then(parse_date) == Some(*e),
        Expected::Boolean(e) => value.as_bool() == Some(*e),
    }
}

fn compare(cmp: Cmp, expected: &Expected, value: &Json) -> bool {
    let (actual, expected) = match expected {
        Expected::Number(e) => match number(value) {
            Some(a) => (a, *e),
            None => return false,
        },
        Expected::Date(e) => match value.as_str().and_then(parse_date) {
            Some(a) => (a as f64, *e as f64),
            None => return false,
        },
        Expected::Text(_) | Expected::Boolean(_) => return equals(expected, value),
    };
    match cmp {
        Cmp::Eq => actual == expected,
        Cmp::Gt => actual > expected,
        Cmp::Ge => actual >= expected,
        Cmp::Lt => actual < expected,
        Cmp::Le => actual <= expected,
    }
}

struct Tracer<'r, 's> {
    rule: &'r CompiledRule,
    steps: &'s mut Vec<TraceStep>,
    /// More steps than [`TRACED_STEPS`] were left out.
    truncated: bool,
}

/// Inside a `where`: the list's field, the item's index, and the item path prefix for steps.
#[derive(Clone, Copy)]
struct ItemAt<'a> {
    list_field: &'a str,
    index: usize,
}

impl Tracer<'_, '_> {
    /// Evaluates every clause (none is skipped), recording each.
    fn node(&mut self, node: &Node, scope: Scope<'_>, at: Option<ItemAt<'_>>) -> bool {
        match node {
            // Collected first: every clause is traced, even after the verdict is certain.
            Node::All(nodes) => {
                let results: Vec<bool> = nodes.iter().map(|n| self.node(n, scope, at)).collect();
                results.into_iter().all(|r| r)
            }
            Node::Any(nodes) => {
                let results: Vec<bool> = nodes.iter().map(|n| self.node(n, scope, at)).collect();
                results.into_iter().any(|r| r)
            }
            Node::Not(node) => !self.node(node, scope, at),
            Node::Leaf(leaf) => self.leaf(leaf, scope, at),
        }
    }

    fn leaf(&mut self, leaf: &Leaf, scope: Scope<'_>, at: Option<ItemAt<'_>>) -> bool {
        let info = &self.rule.clauses[leaf.id as usize];
        let field = match at {
            Some(at) if info.field.starts_with('[') => {
                format!("{}[{}]{}", at.list_field, at.index, info.field)
            }
            Some(at) => format!("{}[{}].{}", at.list_field, at.index, info.field),
            None => info.field.clone(),
        };
        let path = match at {
            Some(at) => format!("{} (item {})", info.path, at.index),
            None => info.path.to_string(),
        };
        let actual = read(&leaf.target, scope);
        let mut run = Run::new();
        let result = test(leaf, scope, &mut run) && run.left > 0;
        if self.steps.len() >= TRACED_STEPS {
            self.truncated = true;
            return result;
        }
        let mut step = TraceStep {
            path,
            field,
            op: info.op.as_str(),
            expected: info.expected.clone(),
            actual: shown(actual.as_deref()),
            previous: None,
            result,
            note: None,
        };
        match &leaf.test {
            Test::Changed | Test::ChangedTo(_) | Test::ChangedFrom(_) => {
                match read_previous(&leaf.target, scope.subject) {
                    Some(previous) => step.previous = Some(shown(previous)),
                    None => {
                        step.note = Some(
                            "the event carries no previousData, so nothing can have changed".into(),
                        )
                    }
                }
                self.steps.push(step);
            }
            Test::Items(_, node) => {
                let items = match actual.as_deref() {
                    Some(Json::Array(items)) => items.as_slice(),
                    _ => &[],
                };
                step.actual = Json::from(format!(
                    "{} item{}",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                ));
                if items.len() > TRACED_ITEMS {
                    step.note = Some(format!(
                        "the first {TRACED_ITEMS} of {} items are shown",
                        items.len()
                    ));
                }
                let list_field = step.field.clone();
                let list_field = list_field.as_str();
                self.steps.push(step);
                for (index, item) in items.iter().take(TRACED_ITEMS).enumerate() {
                    let inner = Scope {
                        subject: scope.subject,
                        item: Some(item),
                    };
                    self.node(node, inner, Some(ItemAt { list_field, index }));
                }
            }
            _ => self.steps.push(step),
        }
        result
    }
}

/// A value as a trace shows it: whole when small, summarised when not.
fn shown(value: Option<&Json>) -> Json {
    let Some(value) = value else {
        return Json::Null;
    };
    match value {
        Json::Array(_) | Json::Object(_) => {
            let text = value.to_string();
            if text.len() <= TRACED_VALUE_BYTES {
                value.clone()
            } else {
                let what = match value {
                    Json::Array(items) => format!("a list of {} items", items.len()),
                    _ => "an object".into(),
                };
                Json::from(format!("{what} ({} bytes of JSON)", text.len()))
            }
        }
        Json::String(s) if s.len() > TRACED_VALUE_BYTES => {
            let mut end = TRACED_VALUE_BYTES;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Json::from(format!("{}…", &s[..end]))
        }
        other => other.clone(),
    }
}

//! The minijinja expression a rule compiles to, and the tests it calls.
//!
//! Each clause becomes `<field> is <op>(<value>)`: `entity.Total is greaterThan(100)`. The
//! tests are registered in the condition environment and evaluate with this module's own code,
//! so an expression means what its rule means, down to missing fields and numeric strings.
//! `in` and `notIn` are `oneOf` and `noneOf` (minijinja has an `in` test of its own); a date
//! clause adds `type="date"`; a list operator carries its `where` rule as a literal
//! (`entity.Lines is anyItem({"field": "Sku", "op": "startsWith", "value": "GIFT-" })`); a
//! change operator reads `previousData` and holds only when the event has it
//! (`(hasPreviousData and entity.Status is changedTo("Shipped", previousData.Status))`).

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value as Json;

use crate::rules::check::{
    infer_kind, ClauseInfo, CompiledRule, Leaf, Node, Quantifier, Target, Test,
};
use crate::rules::eval::{changed, value_test};
use crate::rules::{FieldPath, Kind, Op, Operand, Rule};

/// The test an operator is called by in an expression.
fn test_name(op: Op) -> &'static str {
    match op {
        Op::In => "oneOf",
        Op::NotIn => "noneOf",
        other => other.as_str(),
    }
}

/// The kind a test takes its value at when no `type` is given: the list operators' is a list;
/// otherwise the kind the value suggests, or text.
fn implied_kind(op: Op, expected: Option<&Json>) -> Kind {
    match op {
        Op::AnyItem
        | Op::AllItems
        | Op::NoItem
        | Op::CountEquals
        | Op::CountGreaterThan
        | Op::CountLessThan
        | Op::CountBetween => Kind::List,
        _ => expected.and_then(infer_kind).unwrap_or(Kind::Text),
    }
}

/// Whether the verdict of `op` depends on the kind at all.
fn kind_matters(op: Op) -> bool {
    !matches!(op, Op::IsEmpty | Op::IsNotEmpty | Op::Changed)
}

impl CompiledRule {
    /// The minijinja expression this rule compiles to: the same verdict for every event.
    pub fn expression(&self) -> String {
        let mut out = String::new();
        self.print(&self.root, &mut out, false);
        out
    }

    fn print(&self, node: &Node, out: &mut String, nested: bool) {
        match node {
            Node::All(nodes) | Node::Any(nodes) => {
                let joiner = if matches!(node, Node::All(_)) {
                    " and "
                } else {
                    " or "
                };
                let parens = nested && nodes.len() > 1;
                if parens {
                    out.push('(');
                }
                for (i, n) in nodes.iter().enumerate() {
                    if i > 0 {
                        out.push_str(joiner);
                    }
                    self.print(n, out, true);
                }
                if parens {
                    out.push(')');
                }
            }
            Node::Not(node) => {
                out.push_str("not (");
                self.print(node, out, false);
                out.push(')');
            }
            Node::Leaf(leaf) => self.print_leaf(leaf, out),
        }
    }

    fn print_leaf(&self, leaf: &Leaf, out: &mut String) {
        let info: &ClauseInfo = &self.clauses[leaf.id as usize];
        let field = match FieldPath::parse(&info.field) {
            Ok(path) => path.to_string(),
            Err(_) => info.field.clone(),
        };
        let declared = (kind_matters(info.op)
            && info.kind != implied_kind(info.op, info.expected.as_ref()))
        .then(|| format!("type=\"{}\"", info.kind.as_str()));
        let date = declared.as_deref();
        let name = test_name(info.op);
        match &leaf.test {
            Test::Changed | Test::ChangedTo(_) | Test::ChangedFrom(_) => {
                let previous = match &leaf.target {
                    Target::Entity(segments) => {
                        let mut p = String::from("previousData");
                        let mut rest = String::new();
                        FieldPath::write(segments, &mut rest);
                        if !rest.starts_with('[') {
                            p.push('.');
                        }
                        p.push_str(&rest);
                        p
                    }
                    _ => "none".into(),
                };
                let mut args = Vec::new();
                if let Some(value) = &info.expected {
                    args.push(literal(value));
                }
                args.push(previous);
                args.extend(date.map(str::to_owned));
                out.push_str(&format!(
                    "(hasPreviousData and {field} is {name}({}))",
                    args.join(", ")
                ));
            }
            Test::Items(..) => {
                let rule = info
                    .item_rule
                    .as_ref()
                    .map_or_else(|| "none".into(), literal);
                out.push_str(&format!("{field} is {name}({rule})"));
            }
            _ => match (&info.expected, date) {
                (None, _) => out.push_str(&format!("{field} is {name}")),
                (Some(value), None) => {
                    out.push_str(&format!("{field} is {name}({})", literal(value)))
                }
                (Some(value), Some(date)) => {
                    out.push_str(&format!("{field} is {name}({}, {date})", literal(value)))
                }
            },
        }
    }
}

/// A JSON value as a minijinja literal. Strings keep JSON's escapes (minijinja reads them) with
/// braces and `%` escaped too, and a map closes with ` }`, so no `}}` or `%}` can appear.
fn literal(value: &Json) -> String {
    let mut out = String::new();
    write_literal(value, &mut out);
    out
}

fn write_literal(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("none"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&n.to_string()),
        Json::String(s) => {
            for c in Json::from(s.as_str()).to_string().chars() {
                match c {
                    '{' | '}' | '%' | '#' => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_literal(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push(' ');
                write_literal(&Json::from(key.as_str()), out);
                out.push_str(": ");
                write_literal(item, out);
            }
            out.push_str(" }");
        }
    }
}

/// Registers a test per operator in the condition environment.
pub(crate) fn register_tests(env: &mut Environment<'static>) {
    for &op in Op::ALL {
        env.add_test(
            test_name(op),
            move |value: Value, a: Option<Value>, b: Option<Value>, kwargs: Kwargs| {
                run(op, &value, a.as_ref(), b.as_ref(), &kwargs)
            },
        );
    }
}

fn invalid(op: Op, message: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{}: {message}", test_name(op)),
    )
}

/// A value as JSON (`None`: undefined or none, which a rule treats as no value).
fn json(value: Option<&Value>) -> Result<Option<Json>, serde_json::Error> {
    match value {
        None => Ok(None),
        Some(v) if v.is_undefined() || v.is_none() => Ok(None),
        Some(v) => serde_json::to_value(v).map(Some),
    }
}

fn run(
    op: Op,
    value: &Value,
    a: Option<&Value>,
    b: Option<&Value>,
    kwargs: &Kwargs,
) -> Result<bool, Error> {
    let declared: Option<String> = kwargs.get("type")?;
    kwargs.assert_all_used()?;
    let kind = match declared.as_deref() {
        Some(name) => {
            Some(Kind::parse(name).ok_or_else(|| invalid(op, format!("unknown type {name:?}")))?)
        }
        None => None,
    };
    let current = json(Some(value)).map_err(|e| invalid(op, e))?;
    let first = json(a).map_err(|e| invalid(op, e))?;
    let (expected, previous, item_rule) = match op.operand() {
        Operand::None if op == Op::Changed => (None, first, None),
        Operand::None => (None, None, None),
        Operand::ItemRule => {
            let rule =
                first.ok_or_else(|| invalid(op, "needs the rule each item is tested with"))?;
            (
                None,
                None,
                Some(Rule::parse(&rule, "where").map_err(|e| invalid(op, e))?),
            )
        }
        _ if op.is_change() => (first, json(b).map_err(|e| invalid(op, e))?, None),
        _ => (first, None, None),
    };
    let kind = kind.unwrap_or_else(|| implied_kind(op, expected.as_ref()));
    let compiled =
        CompiledRule::one_clause(op, kind, expected, item_rule).map_err(|e| invalid(op, e))?;
    let Node::Leaf(leaf) = &compiled.root else {
        return Err(invalid(op, "not a clause"));
    };
    Ok(match &leaf.test {
        Test::Changed | Test::ChangedTo(_) | Test::ChangedFrom(_) => {
            changed(&leaf.test, current.as_ref(), previous.as_ref())
        }
        Test::Items(quantifier, node) => {
            let items = match &current {
                Some(Json::Array(items)) => items.as_slice(),
                _ => &[],
            };
            let holds = |item: &Json| compiled.node_holds_for_item(node, item);
            match quantifier {
                Quantifier::Any => items.iter().any(holds),
                Quantifier::All => items.iter().all(holds),
                Quantifier::None => !items.iter().any(holds),
            }
        }
        test => value_test(test, current.as_ref()),
    })
}

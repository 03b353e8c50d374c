//! Makes a template's growth visible to the render budget (see [`crate::budget`]).
//!
//! minijinja evaluates `~`, `+`, `*`, slices and loops inside its VM, where nothing outside can
//! stop a value from doubling. Before a template is compiled, its source is rewritten so those
//! operations call the budget's functions instead:
//!
//! - `a ~ b`, `a + b`, `a * b` become `__cat(a , b)`, `__add(a , b)`, `__mul(a , b)` (the
//!   operator character turns into the comma, so nothing after it moves);
//! - `s[1:5]` becomes `__charged(s[1:5])`;
//! - the iterable of every `{% for %}` (and the argument of a recursive `loop(...)`) becomes
//!   `__loop(iterable, raw, line)`, which counts iterations, checks the clock, and charges the
//!   loop body's template text once per iteration.
//!
//! Only insertions are made and none holds a newline, so lines stay where they were; a
//! [`SourceMap`] turns positions in the rewritten source back into the author's columns.
//!
//! The parser is minijinja's own (`unstable_machinery`), which is why the crate pins
//! minijinja's exact version: the rewrite sees the template exactly as the compiler will.

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, parse_expr, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

/// A source rewritten for the budget, and how to find the author's positions in it.
#[derive(Debug, Clone)]
pub(crate) struct Rewritten {
    pub source: String,
    pub map: SourceMap,
    /// A name the template defines that starts with `__` (reserved for the budget's
    /// functions), and its offset.
    pub reserved: Option<(String, usize)>,
}

/// Insertions made into a source: (offset in the original, bytes inserted there), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceMap {
    inserts: Vec<(usize, usize)>,
}

impl SourceMap {
    /// The original offset of byte `offset` of the rewritten source. A byte that was inserted
    /// maps to the original position it was inserted before.
    pub(crate) fn original(&self, offset: usize) -> usize {
        let mut shift = 0;
        for &(at, len) in &self.inserts {
            if offset < at + shift {
                break;
            }
            if offset < at + shift + len {
                return at;
            }
            shift += len;
        }
        offset - shift
    }

    pub(crate) fn is_identity(&self) -> bool {
        self.inserts.is_empty()
    }
}

/// One change to the source.
#[derive(Debug)]
enum Edit {
    /// Text inserted before the original byte at `at`.
    Insert { at: usize, text: String, order: u32 },
    /// One ASCII operator byte at `at` replaced by a comma.
    Comma { at: usize },
}

struct Rewriter<'s> {
    source: &'s str,
    edits: Vec<Edit>,
    /// Insertion order, so an opening wrapper put at the same offset as an earlier one lands
    /// inside it (outer wrappers are visited first).
    order: u32,
    /// Template text per iteration of the enclosing recursive loops (for `loop(...)`).
    recursive_loops: Vec<(usize, usize)>,
    reserved: Option<(String, usize)>,
}

/// Rewrites a template. A template that does not parse is returned as it is: compiling it
/// reports the error at the author's own position.
pub(crate) fn template(source: &str) -> Rewritten {
    let parsed = parse(
        source,
        "<template>",
        SyntaxConfig,
        WhitespaceConfig::default(),
    );
    let Ok(Stmt::Template(root)) = parsed else {
        return unchanged(source);
    };
    let mut rewriter = Rewriter::new(source);
    rewriter.stmts(&root.children);
    rewriter.finish()
}

/// Rewrites a standalone expression (a trigger condition).
pub(crate) fn expression(source: &str) -> Rewritten {
    let Ok(expr) = parse_expr(source) else {
        return unchanged(source);
    };
    let mut rewriter = Rewriter::new(source);
    rewriter.expr(&expr);
    rewriter.finish()
}

/// Where an expression holds a closing tag (`}}` or `%}`) outside a string literal. A
/// condition is a bare expression: a closing tag cannot belong to it (and minijinja 2.24's
/// lexer panics on one followed by more text, which the fuzz suite found).
pub(crate) fn stray_close_tag(source: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' => quote = Some(c),
                b'}' | b'%' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

fn unchanged(source: &str) -> Rewritten {
    Rewritten {
        source: source.to_owned(),
        map: SourceMap::default(),
        reserved: None,
    }
}

/// Where an expression's text begins. A postfix expression's span starts at its operator
/// (`.csv` of `ns.csv`), so the leftmost operand decides.
fn start(expr: &Expr<'_>) -> usize {
    let own = expr.span().start_offset as usize;
    let inner = match expr {
        Expr::Slice(s) => Some(&s.expr),
        Expr::GetAttr(g) => Some(&g.expr),
        Expr::GetItem(g) => Some(&g.expr),
        Expr::Call(c) => Some(&c.expr),
        Expr::Filter(f) => f.expr.as_ref(),
        Expr::Test(t) => Some(&t.expr),
        Expr::BinOp(b) => Some(&b.left),
        Expr::Compare(c) => Some(&c.expr),
        Expr::IfExpr(i) => Some(&i.true_expr),
        _ => None,
    };
    inner.map_or(own, |inner| own.min(start(inner)))
}

fn end(expr: &Expr<'_>) -> usize {
    expr.span().end_offset as usize
}

impl<'s> Rewriter<'s> {
    fn new(source: &'s str) -> Rewriter<'s> {
        Rewriter {
            source,
            edits: Vec::new(),
            order: 0,
            recursive_loops: Vec::new(),
            reserved: None,
        }
    }

    /// Notes a name the template defines, if it is reserved.
    fn defines(&mut self, target: &Expr<'_>) {
        match target {
            Expr::Var(var) if var.id.starts_with("__") && self.reserved.is_none() => {
                self.reserved = Some((var.id.to_owned(), start(target)));
            }
            Expr::List(list) => list.items.iter().for_each(|item| self.defines(item)),
            _ => {}
        }
    }

    fn defines_name(&mut self, name: &str, at: usize) {
        if name.starts_with("__") && self.reserved.is_none() {
            self.reserved = Some((name.to_owned(), at));
        }
    }

    fn insert(&mut self, at: usize, text: impl Into<String>) {
        self.order += 1;
        self.edits.push(Edit::Insert {
            at,
            text: text.into(),
            order: self.order,
        });
    }

    /// `open` before `[from, to)` and `close` after it. `from` moves left over the opening
    /// parentheses whose closing ones are inside (`(x)[1:]` is wrapped whole).
    fn wrap(&mut self, from: usize, to: usize, open: &str, close: String) {
        let from = self.balanced_start(from, to);
        self.insert(from, open);
        self.insert(to, close);
    }

    fn balanced_start(&self, from: usize, to: usize) -> usize {
        let bytes = self.source.as_bytes();
        let (mut depth, mut missing) = (0i64, 0i64);
        let mut quote: Option<u8> = None;
        let mut i = from;
        while i < to.min(bytes.len()) {
            let c = bytes[i];
            match quote {
                Some(_) if c == b'\\' => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    b'"' | b'\'' => quote = Some(c),
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        missing = missing.max(-depth);
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        let mut from = from;
        for _ in 0..missing {
            let before = self.source[..from].trim_end();
            match before.strip_suffix('(') {
                Some(rest) => from = rest.len(),
                None => break,
            }
        }
        from
    }

    fn finish(mut self) -> Rewritten {
        // Stable order: by offset; at one offset, closings of inner wrappers (inserted later)
        // come before closings of outer ones, openings of outer wrappers before inner ones.
        // Every wrapper is well nested, so: openings in visit order, closings in reverse.
        self.edits.sort_by_key(|edit| match edit {
            Edit::Insert { at, text, order } => {
                let closing = !text.ends_with('(');
                let key = if closing { u32::MAX - order } else { *order };
                (*at, closing as u8 ^ 1, key)
            }
            Edit::Comma { at } => (*at, 2, 0),
        });
        let mut out = String::with_capacity(self.source.len() + self.edits.len() * 12);
        let mut inserts = Vec::new();
        let mut copied = 0;
        for edit in &self.edits {
            match edit {
                Edit::Insert { at, text, .. } => {
                    out.push_str(&self.source[copied..*at]);
                    copied = *at;
                    out.push_str(text);
                    inserts.push((*at, text.len()));
                }
                Edit::Comma { at } => {
                    out.push_str(&self.source[copied..*at]);
                    out.push(',');
                    copied = *at + 1;
                }
            }
        }
        out.push_str(&self.source[copied..]);
        Rewritten {
            source: out,
            map: SourceMap { inserts },
            reserved: self.reserved,
        }
    }

    fn stmts(&mut self, stmts: &[Stmt<'_>]) {
        for stmt in stmts {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt<'_>) {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(l) => self.for_loop(l),
            Stmt::IfCond(c) => {
                self.expr(&c.expr);
                self.stmts(&c.true_body);
                self.stmts(&c.false_body);
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.defines(target);
                    self.expr(value);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(s) => {
                self.defines(&s.target);
                // What a template keeps may not nest without bound, nor hold the namespace
                // it is put into.
                let close = match &s.target {
                    Expr::GetAttr(g) => {
                        format!(", {})", &self.source[start(&g.expr)..end(&g.expr)])
                    }
                    _ => ")".into(),
                };
                self.wrap(start(&s.expr), end(&s.expr), "__nest(", close);
                self.expr(&s.expr);
            }
            Stmt::SetBlock(s) => {
                self.defines(&s.target);
                if let Some(filter) = &s.filter {
                    self.expr(filter);
                }
                self.stmts(&s.body);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Import(i) => {
                self.defines(&i.name);
                self.expr(&i.expr);
            }
            Stmt::FromImport(i) => {
                for (name, alias) in &i.names {
                    self.defines(alias.as_ref().unwrap_or(name));
                }
                self.expr(&i.expr);
            }
            Stmt::Extends(e) => self.expr(&e.name),
            Stmt::Include(i) => self.expr(&i.name),
            Stmt::Macro(m) => {
                self.defines_name(m.name, m.span().start_offset as usize);
                self.macro_decl(m);
            }
            Stmt::CallBlock(c) => {
                self.call(&c.call);
                self.macro_decl(&c.macro_decl);
            }
            Stmt::Do(d) => self.call(&d.call),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'_>) {
        for arg in &m.args {
            self.defines(arg);
        }
        for default in &m.defaults {
            self.expr(default);
        }
        self.stmts(&m.body);
    }

    fn for_loop(&mut self, l: &ast::Spanned<ast::ForLoop<'_>>) {
        let raw = raw_text(&l.body);
        let line = l.span().start_line as usize;
        self.defines(&l.target);
        let iter = &l.iter;
        self.wrap(
            start(iter),
            end(iter),
            "__loop(",
            format!(", {raw}, {line})"),
        );
        self.expr(iter);
        if let Some(filter) = &l.filter_expr {
            self.expr(filter);
        }
        if l.recursive {
            self.recursive_loops.push((raw, line));
        }
        self.stmts(&l.body);
        if l.recursive {
            self.recursive_loops.pop();
        }
        self.stmts(&l.else_body);
    }

    fn call(&mut self, call: &ast::Call<'_>) {
        let recursion = match &call.expr {
            Expr::Var(var) if var.id == "loop" => self.recursive_loops.last().copied(),
            _ => None,
        };
        self.expr(&call.expr);
        let mut args = call.args.as_slice();
        if let (Some((raw, line)), Some(CallArg::Pos(first))) = (recursion, args.first()) {
            self.wrap(
                start(first),
                end(first),
                "__loop(",
                format!(", {raw}, {line})"),
            );
            self.expr(first);
            args = &args[1..];
        }
        self.args(args);
    }

    fn expr(&mut self, expr: &Expr<'_>) {
        match expr {
            Expr::Var(_) | Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.wrap(start(expr), end(expr), "__charged(", ")".into());
                self.expr(&s.expr);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => self.bin_op(b),
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                if let Some(e) = &i.false_expr {
                    self.expr(e);
                }
            }
            Expr::Filter(f) => {
                if let Some(e) = &f.expr {
                    self.expr(e);
                }
                self.args(&f.args);
            }
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr);
                self.expr(&g.subscript_expr);
            }
            Expr::Call(c) => {
                if matches!(&c.expr, Expr::Var(v) if matches!(v.id, "dict" | "namespace")) {
                    self.wrap(start(expr), end(expr), "__nest(", ")".into());
                }
                self.call(c);
            }
            Expr::List(l) => {
                if l.as_const().is_none() {
                    self.wrap(start(expr), end(expr), "__nest(", ")".into());
                }
                for item in &l.items {
                    self.expr(item);
                }
            }
            Expr::Map(m) => {
                if m.as_const().is_none() {
                    self.wrap(start(expr), end(expr), "__nest(", ")".into());
                }
                for e in m.keys.iter().chain(&m.values) {
                    self.expr(e);
                }
            }
        }
    }

    fn args(&mut self, args: &[CallArg<'_>]) {
        for arg in args {
            match arg {
                CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) => self.expr(e),
                CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    fn bin_op(&mut self, b: &ast::Spanned<ast::BinOp<'_>>) {
        let (function, operator) = match b.op {
            BinOpKind::Concat => ("__cat(", b'~'),
            BinOpKind::Add => ("__add(", b'+'),
            BinOpKind::Mul => ("__mul(", b'*'),
            _ => {
                self.expr(&b.left);
                self.expr(&b.right);
                return;
            }
        };
        // Between the operands there are only parentheses, blanks and the operator.
        let between = end(&b.left)..start(&b.right);
        let at = self.source.as_bytes()[between.clone()]
            .iter()
            .position(|&c| c == operator)
            .map(|i| between.start + i);
        let span = b.span();
        match at {
            Some(at) => {
                let from = (span.start_offset as usize).min(start(&b.left));
                let to = (span.end_offset as usize).max(end(&b.right));
                self.wrap(from, to, function, ")".into());
                self.edits.push(Edit::Comma { at });
            }
            // Not where the parser says it is: leave the operation alone rather than break
            // the template (the fuzz suite would find such a case).
            None => debug_assert!(false, "operator not found between operands"),
        }
        self.expr(&b.left);
        self.expr(&b.right);
    }
}

/// Bytes of template text one pass over `body` emits, not counting nested loops' bodies
/// (their own `__loop` charges them per iteration).
fn raw_text(body: &[Stmt<'_>]) -> usize {
    body.iter().map(raw_text_of).sum()
}

fn raw_text_of(stmt: &Stmt<'_>) -> usize {
    match stmt {
        Stmt::EmitRaw(r) => r.raw.len(),
        Stmt::Template(t) => raw_text(&t.children),
        Stmt::ForLoop(l) => raw_text(&l.else_body),
        Stmt::IfCond(c) => raw_text(&c.true_body).max(raw_text(&c.false_body)),
        Stmt::WithBlock(w) => raw_text(&w.body),
        Stmt::SetBlock(s) => raw_text(&s.body),
        Stmt::AutoEscape(a) => raw_text(&a.body),
        Stmt::FilterBlock(f) => raw_text(&f.body),
        Stmt::Block(b) => raw_text(&b.body),
        // A macro's text is emitted where it is called, as a value the budget charges.
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_operators_become_calls() {
        assert_eq!(
            template("{{ a ~ b }}").source,
            "{{ __cat(a , b) }}",
            "the operator byte becomes the comma"
        );
        assert_eq!(
            template("{% set s = s ~ s %}").source,
            "{% set s = __nest(__cat(s , s)) %}"
        );
        assert_eq!(
            template("{{ (a) + (b * 2) }}").source,
            "{{ __add((a) , (__mul(b , 2))) }}"
        );
        assert_eq!(
            template("{{ a ~ b ~ c }}").source,
            "{{ __cat(__cat(a , b) , c) }}"
        );
        assert_eq!(template("{{ 'x' * 3 }}").source, "{{ __mul('x' , 3) }}");
        assert_eq!(template("{{ 2 ** 3 - 1 }}").source, "{{ 2 ** 3 - 1 }}");
        assert_eq!(template("{{ s[1:] }}").source, "{{ __charged(s[1:]) }}");
        assert_eq!(
            template("{{ ns.csv[:-1] }}{{ (x)[1:] }}{{ ((a))|f ~ (b) }}").source,
            "{{ __charged(ns.csv[:-1]) }}{{ __charged((x)[1:]) }}{{ __cat(((a))|f , (b)) }}",
            "postfix expressions and parentheses are wrapped whole"
        );
        assert_eq!(
            template("{{ [x, 1] }}{{ [1, 2] }}{{ dict(a=(x)) }}").source,
            "{{ __nest([x, 1]) }}{{ [1, 2] }}{{ __nest(dict(a=(x))) }}",
            "values that could hold deep ones are checked; constants are not"
        );
        assert_eq!(
            template("{{ 'a ~ b' ~ x|replace('+', '*') }}").source,
            "{{ __cat('a ~ b' , x|replace('+', '*')) }}",
            "operators inside strings are left alone"
        );
    }

    #[test]
    fn loops_are_counted_with_their_text() {
        let out = template("{% for x in items %}ab{% if x %}cde{% endif %}{% endfor %}");
        assert_eq!(
            out.source,
            "{% for x in __loop(items, 5, 1) %}ab{% if x %}cde{% endif %}{% endfor %}"
        );
        let nested = template("{% for a in x %}\n12{% for b in a %}345{% endfor %}{% endfor %}");
        assert_eq!(
            nested.source,
            "{% for a in __loop(x, 3, 1) %}\n12{% for b in __loop(a, 3, 2) %}345{% endfor %}{% endfor %}"
        );
        let recursive = template("{% for x in t recursive %}-{{ loop(x.c) }}{% endfor %}");
        assert_eq!(
            recursive.source,
            "{% for x in __loop(t, 1, 1) recursive %}-{{ loop(__loop(x.c, 1, 1)) }}{% endfor %}"
        );
    }

    #[test]
    fn positions_map_back_to_the_author_source() {
        let source = "{{ a ~ b }} {{ c }}";
        let out = template(source);
        let c_rewritten = out.source.rfind('c').unwrap();
        assert_eq!(out.map.original(c_rewritten), source.find('c').unwrap());
        let b_rewritten = out.source.find('b').unwrap();
        assert_eq!(out.map.original(b_rewritten), source.find('b').unwrap());
        // An inserted byte maps to where it was inserted.
        assert_eq!(out.map.original(3), 3);
        assert!(template("plain {{ x }}").map.is_identity());
    }

    #[test]
    fn conditions_and_broken_sources() {
        assert_eq!(
            expression("entity.a ~ 'x' == 'y'").source,
            "__cat(entity.a , 'x') == 'y'"
        );
        assert_eq!(template("{{ a ~ }}").source, "{{ a ~ }}");
    }

    #[test]
    fn names_of_the_budget_are_reserved() {
        for source in [
            "{% set __cat = 1 %}",
            "{% for __loop in x %}{% endfor %}",
            "{% macro __mul(a) %}{% endmacro %}",
            "{% set a, __add = [1, 2] %}",
            "{% with __charged = 1 %}{% endwith %}",
        ] {
            assert!(template(source).reserved.is_some(), "{source}");
        }
        assert_eq!(template("{% set cat = 1 %}").reserved, None);
    }
}

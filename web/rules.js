// The trigger editor's condition: a rule builder (groups of clauses on the event type's
// fields, list operators with a rule on each item, rules on what changed), the expression
// editor it compiles to, a dry run that colours each clause by what it saw, and the trigger's
// Activity tab.
//
// The rule is kept as a tree here and written as the API's `rules` JSON when saved or tested;
// the API checks it (a 422 names the clause by its path, `rules.all[1].any[0]`, which is
// where the error is shown). The operators each kind of field takes come from the server
// (`data-ops`), so the page offers exactly what saving accepts.
"use strict";

(function rules() {
  const box = document.getElementById("condition-box");
  if (!box) return;
  const form = document.getElementById("trigger-form");
  const readonly = form.hasAttribute("data-readonly");
  const root = document.getElementById("rule-root");
  const textarea = document.getElementById("t-condition");
  const compiledHint = document.getElementById("cond-compiled");
  const blocked = document.getElementById("rule-blocked");
  const builderTab = document.getElementById("cond-tab-builder");
  const expressionTab = document.getElementById("cond-tab-expression");
  const OPS = JSON.parse(box.dataset.ops);
  const KINDS = ["text", "number", "date", "boolean", "list", "object"];

  const api = window.hookflowApi;
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  };

  // ---- labels ----
  const LABELS = {
    equals: "is", notEquals: "is not", in: "is one of", notIn: "is none of",
    contains: "contains", notContains: "does not contain", startsWith: "starts with",
    endsWith: "ends with", isEmpty: "is empty", isNotEmpty: "is not empty",
    greaterThan: "is greater than", greaterThanOrEqual: "is at least", lessThan: "is less than",
    lessThanOrEqual: "is at most", between: "is between",
    anyItem: "has at least one item where", allItems: "has only items where", noItem: "has no item where",
    countEquals: "has exactly … items", countGreaterThan: "has more than … items",
    countLessThan: "has fewer than … items", countBetween: "has between … items",
    changed: "changed", changedTo: "changed to", changedFrom: "changed from",
  };
  const DATE_LABELS = {
    greaterThan: "is after", greaterThanOrEqual: "is on or after", lessThan: "is before",
    lessThanOrEqual: "is on or before",
  };
  const MODES = [["all", "All of these hold"], ["any", "Any of these holds"], ["none", "None of these holds"], ["notAll", "Not all of these hold"]];
  const NO_VALUE = ["isEmpty", "isNotEmpty", "changed", "anyItem", "allItems", "noItem"];
  const ITEM_OPS = ["anyItem", "allItems", "noItem"];

  // ---- the event type's fields ----
  // path → kind, from the type's merge fields (`entity.Lines[0].Sku` describes the items).
  let known = new Map();
  function kindOfType(t, path) {
    if (path === "event.occurredAt") return "date";
    return { integer: "number", number: "number", string: "text", boolean: "boolean", array: "list", object: "object" }[t] || null;
  }
  async function loadFields() {
    const type = form.querySelector('[data-path="eventType"]').value;
    const answer = await api("GET", "/event-types/" + encodeURIComponent(type) + "/merge-fields");
    known = new Map();
    if (answer.ok) {
      for (const f of answer.data.fields || []) {
        if (f.path.startsWith("entityData")) continue;
        const kind = kindOfType(f.type, f.path);
        if (kind) known.set(f.path, kind);
      }
    }
    render();
  }
  // The fields listed under a scope: "" for the event, `entity.Lines[0]` for a list's items.
  function fieldsUnder(prefix) {
    const out = [];
    for (const [path, kind] of known) {
      let rel;
      if (!prefix) rel = path;
      else if (path.startsWith(prefix + ".")) rel = path.slice(prefix.length + 1);
      else continue;
      if (rel.includes("[0]")) continue;
      out.push([rel, kind]);
    }
    return out;
  }

  // ---- the tree ----
  let nextId = 1;
  const group = (mode, children) => ({ id: nextId++, kind: "group", mode, children: children || [] });
  const clause = (c) => ({ id: nextId++, kind: "clause", field: c.field || "", op: c.op || "", value: c.value, type: c.type || "", where: c.where || null });
  function fromJson(j) {
    if (!j || typeof j !== "object") return group("all");
    if (Array.isArray(j.all)) return group("all", j.all.map(node));
    if (Array.isArray(j.any)) return group("any", j.any.map(node));
    if (j.not) {
      const inner = j.not;
      if (Array.isArray(inner.any)) return group("none", inner.any.map(node));
      if (Array.isArray(inner.all)) return group("notAll", inner.all.map(node));
      return group("notAll", [node(inner)]);
    }
    return group("all", [node(j)]);
  }
  function node(j) {
    if (j && (j.all || j.any || j.not)) return fromJson(j);
    const c = clause(j || {});
    if (j && j.where) c.where = fromJson(j.where);
    return c;
  }
  let tree = fromJson(box.dataset.rules ? JSON.parse(box.dataset.rules) : null);
  const index = new Map(); // id → { node, parent, scope, row }

  // The API's JSON for a group, and each node's path (set on `byPath`).
  const byPath = new Map();
  function toJson(g, path) {
    const key = { all: "all", any: "any", none: "any", notAll: "all" }[g.mode];
    const inner = g.mode === "none" || g.mode === "notAll";
    const base = inner ? path + ".not." + key : path + "." + key;
    const items = g.children.map((n, i) => nodeJson(n, base + "[" + i + "]"));
    byPath.set(path, g);
    const out = { [key]: items };
    return inner ? { not: out } : out;
  }
  function nodeJson(n, path) {
    if (n.kind === "group") return toJson(n, path);
    byPath.set(path, n);
    const c = { field: n.field.trim(), op: n.op };
    const value = valueJson(n);
    if (value !== undefined) c.value = value;
    if (ITEM_OPS.includes(n.op)) c.where = toJson(n.where || group("all"), path + ".where");
    if (n.type) c.type = n.type;
    return c;
  }
  // The rule as the API takes it (`null`: no conditions).
  function rulesJson() {
    byPath.clear();
    if (!tree.children.length) return null;
    return toJson(tree, "rules");
  }

  // ---- kinds and values ----
  function scopeOf(id) { const e = index.get(id); return e ? e.scope : ""; }
  function fullPath(scope, field) { return scope ? scope + "." + field : field; }
  function describedKind(n) {
    const scope = scopeOf(n.id);
    return known.get(fullPath(scope, n.field.trim())) || null;
  }
  function kindOf(n) {
    const described = describedKind(n);
    if (n.type) return n.type;
    return described || null;
  }
  function splitList(text, kind) {
    return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => (kind === "number" ? Number(s) : s));
  }
  function valueJson(n) {
    const kind = kindOf(n) || "text";
    const op = n.op;
    const v = n.value;
    if (NO_VALUE.includes(op)) return undefined;
    if (op === "in" || op === "notIn") return Array.isArray(v) ? v : splitList(String(v || ""), kind);
    if (op === "between" || op === "countBetween") {
      const pair = Array.isArray(v) ? v : ["", ""];
      const num = op === "countBetween" || kind === "number";
      return pair.map((x) => (num && x !== "" ? Number(x) : x));
    }
    if (op.startsWith("count")) return v === "" || v === undefined ? v : Number(v);
    if (kind === "number" && op !== "contains" && op !== "notContains") return v === "" || v === undefined || v === null ? v : Number(v);
    if (kind === "boolean") return v === true || v === "true";
    return v === undefined || v === null ? "" : v;
  }
  const shown = (v) => (Array.isArray(v) ? v.join(", ") : v === undefined || v === null ? "" : String(v));

  // ---- rendering ----
  let focusKey = null;
  function render() {
    index.clear();
    const datalists = [];
    root.replaceChildren(groupView(tree, null, "", 0, datalists));
    root.querySelectorAll("[data-move-to]").forEach(fillTargets);
    const holder = document.getElementById("rule-fields");
    holder.replaceChildren(...datalists);
    if (focusKey) {
      const again = root.querySelector('[data-key="' + focusKey + '"]');
      if (again) again.focus();
      focusKey = null;
    }
  }
  function changed(key) { focusKey = key || null; clearTrace(); render(); }

  function groupView(g, parent, scope, depth, datalists) {
    index.set(g.id, { node: g, parent, scope });
    const isRoot = parent === null;
    const fs = el("fieldset", { class: "rule-group", "data-rule-id": g.id, "data-scope": scope });
    const mode = el("select", { "aria-label": "How the conditions combine", "data-key": g.id + ":mode", disabled: readonly });
    for (const [value, label] of MODES) mode.append(el("option", { value, selected: g.mode === value, text: label }));
    mode.addEventListener("change", () => { g.mode = mode.value; changed(g.id + ":mode"); });
    const head = el("legend", { class: "rule-head" }, mode);
    fs.append(head);
    const body = el("div", { class: "rule-body" });
    if (!readonly) {
      body.addEventListener("dragover", (e) => { if (dragging && dragging.scope === scope) { e.preventDefault(); body.classList.add("drop"); } });
      body.addEventListener("dragleave", () => body.classList.remove("drop"));
      body.addEventListener("drop", (e) => {
        e.preventDefault();
        body.classList.remove("drop");
        if (dragging && dragging.scope === scope) moveInto(dragging.id, g.id);
      });
    }
    g.children.forEach((n, i) => {
      const row = n.kind === "group" ? groupView(n, g, scope, depth + 1, datalists) : clauseView(n, g, scope, depth, datalists);
      row.append(moveControls(n, g, i));
      body.append(row);
    });
    if (!g.children.length) body.append(el("p", { class: "hint", text: isRoot ? "No conditions yet: the trigger fires on every event." : "An empty group: add a condition." }));
    fs.append(body);
    if (!readonly) {
      const bar = el("p", { class: "toolbar rule-add" },
        el("button", { type: "button", "data-add-clause": g.id, "data-key": g.id + ":add", text: "Add condition", onclick: () => { g.children.push(clause({})); changed(); } }),
        depth < 6 ? el("button", { type: "button", "data-add-group": g.id, text: "Add group", onclick: () => { g.children.push(group("any", [clause({})])); changed(); } }) : null,
        !isRoot && parent.kind === "group" ? el("button", { type: "button", class: "link danger", "data-remove": g.id, text: "Remove group", onclick: () => remove(g.id) }) : null);
      fs.append(bar);
    }
    return fs;
  }

  function clauseView(n, parent, scope, depth, datalists) {
    index.set(n.id, { node: n, parent, scope });
    const row = el("div", { class: "rule-clause", "data-rule-id": n.id, draggable: readonly ? null : "true" });
    const listId = "rule-fields-" + n.id;
    const options = fieldsUnder(scope);
    const dl = el("datalist", { id: listId });
    for (const [path, kind] of options) dl.append(el("option", { value: path, label: kind }));
    datalists.push(dl);
    const fieldInput = el("input", { type: "text", list: listId, value: n.field, placeholder: scope ? "item field, e.g. Sku" : "field, e.g. entity.Status", "aria-label": "Field", "data-key": n.id + ":field", "data-rule-field": "", disabled: readonly, autocomplete: "off", spellcheck: "false" });
    fieldInput.addEventListener("change", () => {
      n.field = fieldInput.value.trim();
      const kind = kindOf(n) || "text";
      if (kind && !(OPS[kind] || []).includes(n.op)) n.op = (OPS[kind] || [])[0] || "";
      changed(n.id + ":op");
    });
    row.append(fieldInput);
    const described = describedKind(n);
    const typeSelect = el("select", { "aria-label": "Field type", "data-key": n.id + ":type", "data-rule-type": "", disabled: readonly });
    typeSelect.title = described ? "The field's type, as the event type describes it" : "The field's type: the event type does not describe this field";
    typeSelect.append(el("option", { value: "", text: described || "type?", selected: !n.type }));
    for (const k of KINDS) {
      if (described && !(k === described || (described === "text" && k === "date"))) continue;
      if (described === k) continue;
      typeSelect.append(el("option", { value: k, text: k, selected: n.type === k }));
    }
    typeSelect.addEventListener("change", () => {
      n.type = typeSelect.value;
      const kind = kindOf(n);
      if (kind && !(OPS[kind] || []).includes(n.op)) n.op = (OPS[kind] || [])[0] || "";
      changed(n.id + ":type");
    });
    row.append(typeSelect);
    // A field the type does not describe is offered text's operators until its type is
    // chosen (saving says which type is missing).
    const kind = kindOf(n) || (n.field ? "text" : null);
    const opSelect = el("select", { "aria-label": "Operator", "data-key": n.id + ":op", "data-rule-op": "", disabled: readonly || !kind });
    const ops = kind ? OPS[kind] : [];
    if (!kind) opSelect.append(el("option", { value: "", text: "pick a field" }));
    for (const op of ops) {
      const label = (kind === "date" && DATE_LABELS[op]) || LABELS[op] || op;
      opSelect.append(el("option", { value: op, selected: n.op === op, text: label }));
    }
    // The model is never changed by drawing it (fields may still be loading): an operator
    // that does not fit what is known now stays, and saving says what is wrong.
    if (n.op && !ops.includes(n.op)) opSelect.append(el("option", { value: n.op, selected: true, text: LABELS[n.op] || n.op }));
    if (!n.op && ops.length) n.op = ops[0];
    opSelect.addEventListener("change", () => { n.op = opSelect.value; n.value = undefined; changed(n.id + ":op"); });
    row.append(opSelect);
    row.append(...valueInputs(n, kind || "text"));
    if (!readonly) row.append(el("button", { type: "button", class: "link danger", "data-remove": n.id, "aria-label": "Remove this condition", text: "✕", onclick: () => remove(n.id) }));
    row.append(el("span", { class: "rule-result", "data-rule-result": "" }));
    if (!readonly) {
      row.addEventListener("dragstart", (e) => {
        if (e.target !== row) return;
        dragging = { id: n.id, scope };
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", String(n.id));
      });
      row.addEventListener("dragend", () => { dragging = null; });
    }
    if (ITEM_OPS.includes(n.op)) {
      if (!n.where) n.where = group("all", [clause({})]);
      const itemScope = fullPath(scope, n.field.trim()) + "[0]";
      const nested = el("div", { class: "rule-where" }, el("span", { class: "hint", text: "each item:" }), groupView(n.where, n, itemScope, depth + 1, datalists));
      row.append(nested);
    }
    return row;
  }

  function valueInputs(n, kind) {
    const op = n.op;
    const key = (k) => n.id + ":" + k;
    const input = (attrs, get, set) => {
      const i = el("input", Object.assign({ disabled: readonly, "data-rule-value": "", autocomplete: "off" }, attrs));
      i.value = get();
      i.addEventListener("change", () => { set(i.value); clearTrace(); });
      return i;
    };
    if (NO_VALUE.includes(op) || !op) return [];
    if (op === "between" || op === "countBetween") {
      const pair = Array.isArray(n.value) ? n.value.slice() : ["", ""];
      n.value = pair;
      const t = op === "countBetween" || kind === "number" ? "number" : "text";
      const ph = kind === "date" ? "YYYY-MM-DD" : "";
      return [
        input({ type: t, step: "any", "aria-label": "From", placeholder: ph, "data-key": key("v0") }, () => shown(pair[0]), (v) => { pair[0] = v; }),
        el("span", { class: "hint", text: "and" }),
        input({ type: t, step: "any", "aria-label": "To", placeholder: ph, "data-key": key("v1") }, () => shown(pair[1]), (v) => { pair[1] = v; }),
      ];
    }
    if (op === "in" || op === "notIn") {
      return [input({ type: "text", "aria-label": "Values, separated by commas", placeholder: "A, B, C", "data-key": key("v") }, () => shown(n.value), (v) => { n.value = splitList(v, kind); })];
    }
    if (op.startsWith("count")) {
      return [input({ type: "number", min: "0", step: "1", "aria-label": "Number of items", "data-key": key("v") }, () => shown(n.value), (v) => { n.value = v; })];
    }
    if (kind === "boolean") {
      const s = el("select", { "aria-label": "Value", disabled: readonly, "data-rule-value": "", "data-key": key("v") });
      if (n.value === undefined || n.value === "") n.value = true;
      for (const b of ["true", "false"]) s.append(el("option", { value: b, selected: String(n.value) === b, text: b }));
      s.addEventListener("change", () => { n.value = s.value === "true"; clearTrace(); });
      return [s];
    }
    if (kind === "number" && op !== "contains" && op !== "notContains") {
      return [input({ type: "number", step: "any", "aria-label": "Value", "data-key": key("v") }, () => shown(n.value), (v) => { n.value = v; })];
    }
    return [input({ type: "text", "aria-label": "Value", placeholder: kind === "date" ? "YYYY-MM-DD or 2026-01-31T12:00:00Z" : "", "data-key": key("v") }, () => shown(n.value), (v) => { n.value = v; })];
  }

  // ---- moving ----
  let dragging = null;
  function remove(id) {
    const e = index.get(id);
    if (!e || !e.parent) return;
    const list = e.parent.kind === "group" ? e.parent.children : null;
    if (list) list.splice(list.indexOf(e.node), 1);
    changed();
  }
  function detach(id) {
    const e = index.get(id);
    const list = e.parent.children;
    list.splice(list.indexOf(e.node), 1);
    return e.node;
  }
  function contains(outer, inner) {
    if (outer === inner) return true;
    if (outer.kind === "group") return outer.children.some((c) => contains(c, inner));
    return outer.where ? contains(outer.where, inner) : false;
  }
  function moveInto(id, groupId) {
    const target = index.get(groupId).node;
    const moving = index.get(id).node;
    if (contains(moving, target)) return;
    target.children.push(detach(id));
    changed();
  }
  // Groups a node may move into: those reading the same items (a where rule's fields mean
  // nothing elsewhere), other than its own parent and its own inside.
  function targets(n, parent, scope) {
    return [...index]
      .filter(([, e]) => e.node.kind === "group" && e.scope === scope && e.node !== parent && !contains(n, e.node))
      .map(([id, e]) => [id, label(e.node)]);
  }
  function label(g) {
    const where = [];
    let e = index.get(g.id);
    while (e && e.parent) {
      const siblings = e.parent.kind === "group" ? e.parent.children : null;
      where.unshift(siblings ? "#" + (siblings.indexOf(e.node) + 1) : "items");
      e = index.get(e.parent.id);
    }
    const name = { all: "All of", any: "Any of", none: "None of", notAll: "Not all of" }[g.mode];
    return name + " (" + (where.length ? "group " + where.join(" › ") : "top") + ")";
  }
  function moveControls(n, parent, i) {
    if (readonly) return null;
    const bar = el("span", { class: "rule-move" });
    bar.append(el("button", { type: "button", class: "link", "aria-label": "Move up", "data-move-up": n.id, disabled: i === 0, text: "↑", onclick: () => { const l = parent.children; [l[i - 1], l[i]] = [l[i], l[i - 1]]; changed(); } }));
    bar.append(el("button", { type: "button", class: "link", "aria-label": "Move down", "data-move-down": n.id, disabled: i === parent.children.length - 1, text: "↓", onclick: () => { const l = parent.children; [l[i + 1], l[i]] = [l[i], l[i + 1]]; changed(); } }));
    // Its groups are filled in by `render` once the whole tree is indexed.
    const select = el("select", { "aria-label": "Move to group", "data-move-to": n.id });
    select.addEventListener("change", () => { if (select.value) moveInto(n.id, Number(select.value)); });
    bar.append(select);
    return bar;
  }
  function fillTargets(select) {
    const e = index.get(Number(select.dataset.moveTo));
    const options = targets(e.node, e.parent, e.scope);
    select.replaceChildren(el("option", { value: "", text: "Move to…" }), ...options.map(([id, text]) => el("option", { value: id, text })));
    select.hidden = !options.length;
  }

  // ---- builder ⇄ expression ----
  let compiledFrom = box.dataset.expression || null;
  function show(tab) {
    for (const t of [builderTab, expressionTab]) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
  }
  const mode = () => (builderTab.getAttribute("aria-selected") === "true" ? "builder" : "expression");
  async function toExpression() {
    blocked.hidden = true;
    if (mode() === "expression") return;
    const rules = rulesJson();
    if (rules) {
      const type = form.querySelector('[data-path="eventType"]').value;
      const answer = await api("POST", "/triggers/rules/check", { eventType: type, rules });
      if (!answer.ok) {
        const err = (answer.data && answer.data.error) || {};
        if (window.hookflowEditor) window.hookflowEditor.showError(err);
        return;
      }
      compiledFrom = answer.data.expression;
      textarea.value = compiledFrom;
      compiledHint.hidden = false;
    }
    show(expressionTab);
  }
  function toBuilder() {
    if (mode() === "builder") return;
    const text = textarea.value.trim();
    if (text && text !== (compiledFrom || "").trim()) {
      // The expression stays what is saved until it is discarded.
      blocked.replaceChildren(
        document.createTextNode("This expression was written or changed by hand, and the builder cannot read it. "),
        el("button", { type: "button", id: "discard-expression", text: "Discard the expression and use the builder", onclick: () => { textarea.value = ""; compiledHint.hidden = true; blocked.hidden = true; show(builderTab); } }));
      blocked.hidden = false;
      return;
    }
    blocked.hidden = true;
    compiledHint.hidden = true;
    textarea.value = "";
    show(builderTab);
  }
  builderTab.addEventListener("click", toBuilder);
  expressionTab.addEventListener("click", toExpression);
  for (const t of [builderTab, expressionTab]) {
    t.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") { e.preventDefault(); (t === builderTab ? expressionTab : builderTab).click(); }
    });
  }
  show(builderTab.getAttribute("aria-selected") === "true" ? builderTab : expressionTab);
  if (mode() === "expression" && !textarea.value.trim() && !tree.children.length) show(builderTab);

  // ---- dry run ----
  function clearTrace() {
    root.querySelectorAll("[data-rule-result]").forEach((r) => { r.textContent = ""; r.className = "rule-result"; });
    root.querySelectorAll(".rule-clause.ok, .rule-clause.bad").forEach((r) => r.classList.remove("ok", "bad"));
  }
  const fmt = (v) => (v === null || v === undefined ? "no value" : typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v));
  function showTrace(trace) {
    rulesJson();
    clearTrace();
    const byNode = new Map();
    for (const step of trace) {
      const m = /^(.*?)(?: \(item (\d+)\))?$/.exec(step.path);
      const n = byPath.get(m[1]);
      if (!n) continue;
      if (!byNode.has(n.id)) byNode.set(n.id, []);
      byNode.get(n.id).push(Object.assign({ item: m[2] }, step));
    }
    for (const [id, steps] of byNode) {
      const row = root.querySelector('.rule-clause[data-rule-id="' + id + '"]');
      if (!row) continue;
      const out = row.querySelector(":scope > [data-rule-result]");
      const ok = steps.some((s) => s.result);
      row.classList.add(ok ? "ok" : "bad");
      out.className = "rule-result " + (ok ? "ok" : "bad");
      const parts = steps.map((s) => {
        const saw = ITEM_OPS.includes(s.op) || s.op.startsWith("count") ? String(s.actual) : fmt(s.actual);
        let text = (s.item !== undefined ? "item " + s.item + ": " : "") + (s.result ? "✓ " : "✗ ") + "saw " + saw;
        if (s.previous !== undefined) text += " (before: " + fmt(s.previous) + ")";
        if (s.note) text += " — " + s.note;
        return text;
      });
      out.textContent = parts.join("; ");
    }
  }
  const dryResult = document.getElementById("dry-run-result");
  const dryButton = document.getElementById("dry-run-go");
  function parseJson(id, what) {
    const text = document.getElementById(id).value.trim();
    if (!text) return undefined;
    try {
      const v = JSON.parse(text);
      if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
      return v;
    } catch (e) {
      throw new Error(what + " is not a JSON object: " + e.message);
    }
  }
  async function dryRun() {
    dryResult.replaceChildren(el("p", { class: "hint", text: "Testing…" }));
    let body;
    try {
      const draft = window.hookflowEditor.collect();
      body = { trigger: draft };
      if (window.hookflowEditor.triggerId) body.triggerId = window.hookflowEditor.triggerId;
      const data = parseJson("dry-data", "The entity");
      const previous = parseJson("dry-previous", "The entity before the change");
      const entity = document.getElementById("dry-entity").value.trim();
      const shop = document.getElementById("dry-shop");
      if (data) {
        body.entityData = data;
        if (previous) body.previousData = previous;
        if (entity) body.entityId = entity;
        if (shop && shop.value) body.shopId = Number(shop.value);
      } else if (entity) {
        body.entityId = entity;
        body.shopId = draft.shopId || (shop && shop.value ? Number(shop.value) : null);
      }
    } catch (e) {
      dryResult.replaceChildren(el("p", { class: "field-error", text: e.message }));
      return;
    }
    window.hookflowEditor.clearErrors();
    const answer = await api("POST", "/triggers/dry-run", body);
    if (!answer.ok) {
      const err = (answer.data && answer.data.error) || {};
      dryResult.replaceChildren(el("p", { class: "field-error", id: "dry-run-error", text: (err.field ? err.field + ": " : "") + (err.message || "The test failed.") }));
      if (err.field && err.field.startsWith("rules")) window.hookflowEditor.showError(err);
      return;
    }
    const run = answer.data;
    if (mode() === "builder") showTrace(run.trace);
    const out = [el("p", { id: "dry-run-verdict", class: run.matched ? "verdict ok" : "verdict bad", text: run.matched ? "The trigger fires for this entity." : "The trigger does not fire for this entity." })];
    if (mode() === "expression" && run.trace.length) {
      const s = run.trace[0];
      out.push(el("p", { class: "hint", text: "The expression is " + (s.result ? "true" : "false") + (s.note ? " — " + s.note : "") + "." }));
    }
    if (!run.calls.length && run.matched) out.push(el("p", { class: "hint", text: "No calls." }));
    if (!run.matched) out.push(el("p", { class: "hint", text: "No calls would be made." }));
    run.calls.forEach((c) => {
      const call = el("div", { class: "dry-call", "data-dry-call": c.actionIndex });
      call.append(el("h4", { text: "Action " + (c.actionIndex + 1) + ": " + c.method + " " + c.url }));
      if (c.error) call.append(el("p", { class: "field-error", text: c.error }));
      const table = el("table", { class: "small" }, el("tbody"));
      for (const [name, value] of c.headers) table.tBodies[0].append(el("tr", {}, el("th", { text: name }), el("td", {}, el("code", { text: value }))));
      call.append(table);
      if (c.body !== null && c.body !== undefined) call.append(el("pre", { class: "body", text: c.body }));
      out.push(call);
    });
    dryResult.replaceChildren(...out);
  }
  if (dryButton) dryButton.addEventListener("click", dryRun);

  // ---- what the editor reads ----
  window.hookflowRules = {
    // The condition as saved: the builder's rules, or the expression.
    collect() {
      if (mode() === "builder") return { rules: rulesJson(), condition: null };
      return { rules: null, condition: textarea.value.trim() || null };
    },
    // The control an error about `path` (`rules.all[1].any[0]`) is shown beside.
    find(path) {
      if (mode() !== "builder") show(builderTab);
      rulesJson();
      let p = path;
      while (p) {
        const n = byPath.get(p);
        if (n) {
          const row = root.querySelector('[data-rule-id="' + n.id + '"]');
          if (row) return row.querySelector("input, select") || row;
        }
        const cut = p.search(/(\.[a-z]+(\[\d+\])?)$/);
        if (cut <= 0) break;
        p = p.slice(0, cut);
      }
      return root.querySelector("select, input") || root;
    },
    // A clause in words (`entity.Status is "Shipped"`), for the Activity tab.
    describe(path) {
      rulesJson();
      const n = byPath.get(path);
      if (!n || n.kind !== "clause") return "";
      const kind = kindOf(n) || "text";
      const label = (kind === "date" && DATE_LABELS[n.op]) || LABELS[n.op] || n.op;
      const value = valueJson(n);
      return n.field + " " + label + (value === undefined ? "" : " " + JSON.stringify(value));
    },
    runDryRun(entityId, shopId) {
      const details = document.getElementById("dry-run");
      if (!details) return;
      details.open = true;
      document.getElementById("dry-entity").value = entityId;
      document.getElementById("dry-data").value = "";
      document.getElementById("dry-previous").value = "";
      const shop = document.getElementById("dry-shop");
      if (shop && shopId) shop.value = String(shopId);
      details.scrollIntoView({ block: "start" });
      return dryRun();
    },
  };

  form.querySelector('[data-path="eventType"]').addEventListener("change", loadFields);
  render();
  loadFields();
})();

// ---- the Activity tab ----
(function activity() {
  const panel = document.getElementById("page-activity");
  if (!panel) return;
  const triggerId = Number(panel.dataset.trigger);
  const tabs = [...document.querySelectorAll("#page-tabs [role=tab]")];
  const body = document.getElementById("activity-rows");
  const more = document.getElementById("activity-more");
  const filter = document.getElementById("activity-matched");
  const entity = document.getElementById("activity-entity");
  const status = document.getElementById("activity-status");
  let cursor = null;
  let loaded = false;
  function select(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (tab.id === "page-tab-activity" && !loaded) load(true);
    history.replaceState(null, "", tab.id === "page-tab-activity" ? "#activity" : location.pathname + location.search);
  }
  tabs.forEach((t) => t.addEventListener("click", () => select(t)));
  const cell = (...c) => { const td = document.createElement("td"); td.append(...c); return td; };
  const link = (href, text) => { const a = document.createElement("a"); a.href = href; a.textContent = text; return a; };
  const badge = (cls, text) => { const s = document.createElement("span"); s.className = "badge " + cls; s.textContent = text; return s; };
  async function load(fresh) {
    loaded = true;
    if (fresh) { cursor = null; body.replaceChildren(); }
    let q = "?limit=50";
    if (filter.value) q += "&matched=" + filter.value;
    if (entity.value.trim()) q += "&entityId=" + encodeURIComponent(entity.value.trim());
    if (cursor) q += "&cursor=" + cursor;
    status.textContent = "Loading…";
    const response = await fetch("/api/v1/triggers/" + triggerId + "/activity" + q, { credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) { status.textContent = (data.error && data.error.message) || "Could not load the activity."; return; }
    for (const a of data.items) {
      const tr = document.createElement("tr");
      tr.dataset.entity = a.entityId;
      tr.append(cell(new Date(a.evaluatedAt).toISOString().replace("T", " ").slice(0, 19)));
      tr.append(cell(link("/events/" + a.eventId, "#" + a.eventId)));
      tr.append(cell(a.entityId));
      tr.append(cell(a.matched ? badge("badge-succeeded", "fired") : badge("badge-skipped", "did not fire")));
      const decided = document.createElement("code");
      decided.textContent = a.decidedBy || "always fires";
      const words = a.decidedBy && window.hookflowRules ? window.hookflowRules.describe(a.decidedBy) : "";
      const said = document.createElement("span");
      said.className = "hint";
      said.textContent = words ? " " + words : "";
      tr.append(cell(decided, said));
      const calls = document.createElement("span");
      for (const c of a.calls) { const l = link("/queue/" + c.id, c.status + (c.statusCode ? " " + c.statusCode : "")); l.className = "badge badge-" + c.status; calls.append(l, " "); }
      tr.append(cell(calls));
      const why = document.createElement("button");
      why.type = "button";
      why.textContent = a.matched ? "Test again" : "Why not?";
      why.dataset.why = a.entityId;
      why.addEventListener("click", () => {
        select(tabs[0]);
        if (window.hookflowRules) window.hookflowRules.runDryRun(a.entityId, a.shopId);
      });
      tr.append(cell(document.getElementById("dry-run") ? why : ""));
      body.append(tr);
    }
    if (!body.children.length) {
      const tr = document.createElement("tr");
      const td = cell("No evaluations yet: every event of the trigger's type (in its shop) is listed here.");
      td.colSpan = 7;
      td.className = "empty";
      tr.append(td);
      body.append(tr);
    }
    cursor = data.next;
    more.hidden = !cursor;
    status.textContent = "";
  }
  filter.addEventListener("change", () => load(true));
  document.getElementById("activity-filter").addEventListener("submit", (e) => { e.preventDefault(); load(true); });
  more.addEventListener("click", () => load(false));
  if (location.hash === "#activity") select(tabs[1]);
})();

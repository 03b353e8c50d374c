// The trigger editor: tabs, line numbers, merge fields inserted at the cursor, preview, send
// test, and saving through the JSON API (with the session's CSRF token). Validation errors
// from the API are shown beside the field they name, on the tab that holds it, with the
// template's line and column.
//
// Secrets: "Generate a new secret" makes a Standard Webhooks secret here, in the browser, so
// Send test signs with the very secret the save stores; after the save it is shown once with
// a copy button. "Reveal the stored secret" asks the API (each reveal is logged there).
// After a save the page reloads with a fixed notice code (`?notice=saved`) and the tabs that
// were open (`#tabs=auth,payload`, one per action).
"use strict";

(function editor() {
  const form = document.getElementById("trigger-form");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const triggerId = form.dataset.id ? Number(form.dataset.id) : null;
  const actionsBox = document.getElementById("actions");
  const formError = document.getElementById("form-error");
  const readonly = form.hasAttribute("data-readonly");
  let nextIndex = actionsBox.querySelectorAll("[data-action]").length;
  let lastTemplateField = null;

  // ---- API ----
  const api = window.hookflowApi;

  const $ = (root, sel) => root.querySelector(sel);
  const field = (root, path) => root.querySelector('[data-path="' + path + '"]');
  const value = (root, path) => { const el = field(root, path); return el ? el.value.trim() : ""; };

  // ---- tabs ----
  function selectTab(tab, focus) {
    const list = tab.closest("[role=tablist]");
    for (const t of list.querySelectorAll("[role=tab]")) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
  }
  function setupTabs(root) {
    // The condition's and the page's tabs are driven by rules.js.
    for (const list of root.querySelectorAll("[role=tablist]:not([data-own-tabs])")) {
      const tabs = [...list.querySelectorAll("[role=tab]")];
      tabs.forEach((tab) => {
        tab.addEventListener("click", () => selectTab(tab, false));
        tab.addEventListener("keydown", (e) => {
          const i = tabs.indexOf(tab);
          let j = null;
          if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
          if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
          if (e.key === "Home") j = 0;
          if (e.key === "End") j = tabs.length - 1;
          if (j !== null) { e.preventDefault(); selectTab(tabs[j], true); }
        });
      });
      selectTab(tabs.find((t) => t.getAttribute("aria-selected") === "true") || tabs[0], false);
    }
  }

  // ---- line numbers ----
  function setupGutter(textarea) {
    const gutter = textarea.parentElement.querySelector(".gutter");
    if (!gutter) return;
    const draw = () => {
      const lines = textarea.value.split("\n").length;
      const errLine = Number(textarea.dataset.errorLine || 0);
      let html = "";
      for (let n = 1; n <= lines; n++) html += (n === errLine ? '<span class="err">' + n + "</span>" : n) + "\n";
      gutter.innerHTML = html;
      gutter.scrollTop = textarea.scrollTop;
    };
    textarea.addEventListener("input", draw);
    textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
    textarea._drawGutter = draw;
    draw();
  }

  // ---- per-action controls ----
  function setupAction(fs) {
    setupTabs(fs);
    fs.querySelectorAll("textarea[data-body]").forEach(setupGutter);
    const mode = $(fs, "[data-hmac-mode]");
    const scheme = $(fs, "[data-hmac-scheme]");
    const secretBox = $(fs, "[data-hmac-value]");
    const secretInput = field(fs, "hmacSecret.value");
    const copyButton = $(secretBox, "[data-copy]");
    const generatedHint = $(secretBox, "[data-generated-hint]");
    const syncHmac = () => {
      const m = mode.value;
      secretBox.hidden = m !== "set" && m !== "generate";
      const generating = m === "generate";
      if (generating && !fs.dataset.generated) {
        fs.dataset.generated = newSecret();
        secretInput.value = fs.dataset.generated;
      } else if (!generating && fs.dataset.generated) {
        if (secretInput.value === fs.dataset.generated) secretInput.value = "";
        delete fs.dataset.generated;
      }
      secretInput.readOnly = generating;
      secretInput.type = generating ? "text" : "password";
      copyButton.hidden = !generating;
      generatedHint.hidden = !generating;
    };
    // The rotation note of the chosen scheme, while the action signs.
    const syncScheme = () => {
      fs.querySelectorAll("[data-rotation], [data-secret-label]").forEach((e) => {
        e.hidden = (e.dataset.rotation || e.dataset.secretLabel) !== scheme.value
          || (e.dataset.rotation !== undefined && mode.value === "none");
      });
    };
    mode.addEventListener("change", syncScheme);
    mode.addEventListener("change", syncHmac);
    scheme.addEventListener("change", syncScheme);
    syncHmac();
    syncScheme();
    const retry = $(fs, "[data-retry-mode]");
    const custom = $(fs, "[data-retry-custom]");
    retry.addEventListener("change", () => { custom.hidden = retry.value !== "custom"; });
    fs.querySelectorAll("[data-copy]").forEach((b) => b.addEventListener("click", () => copyFrom(b)));
    const reveal = $(fs, "[data-reveal]");
    if (reveal) reveal.addEventListener("click", () => revealSecret(fs, reveal));
    $(fs, "[data-merge-fields]").addEventListener("click", () => openMergeFields(fs));
    $(fs, "[data-preview]").addEventListener("click", () => preview(fs));
    const test = $(fs, "[data-send-test]");
    if (test) test.addEventListener("click", () => sendTest(fs));
    const remove = $(fs, "[data-remove-action]");
    if (remove) remove.addEventListener("click", () => {
      if (window.confirm("Remove this action? It is gone once you save.")) { fs.remove(); renumber(); }
    });
  }

  // ---- secrets ----
  // A Standard Webhooks secret: whsec_ and 32 random bytes in base64 (what the server makes).
  function newSecret() {
    const bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    return "whsec_" + btoa(String.fromCharCode(...bytes));
  }
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // Without the clipboard API (an insecure origin): a selected text field and copy.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      return ok;
    }
  }
  async function copyFrom(button) {
    const target = document.getElementById(button.dataset.copy);
    const text = "value" in target ? target.value : target.textContent;
    const ok = await copyText(text);
    button.textContent = ok ? "Copied" : "Copy failed: select and copy it";
    button.dataset.copied = ok ? "true" : "false";
  }
  async function revealSecret(fs, button) {
    const box = $(fs, "[data-revealed]");
    button.disabled = true;
    try {
      const answer = await api("POST", "/triggers/" + triggerId + "/actions/" + fs.dataset.index + "/reveal-secret", {});
      if (!answer.ok) { showError(Object.assign(errorOf(answer.data), { field: null })); return; }
      $(box, "code").textContent = answer.data.hmacSecret;
      box.hidden = false;
    } finally {
      button.disabled = false;
    }
  }
  function renumber() {
    const all = actionsBox.querySelectorAll("[data-action]");
    all.forEach((fs, i) => { $(fs, ".action-num").textContent = all.length > 1 ? "#" + (i + 1) : ""; });
  }
  const addAction = document.getElementById("add-action");
  if (addAction) addAction.addEventListener("click", () => {
    const html = document.getElementById("action-template").innerHTML.replaceAll("__i__", String(nextIndex++));
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const fs = holder.querySelector("[data-action]");
    actionsBox.appendChild(fs);
    setupAction(fs);
    renumber();
    $(fs, '[data-path="url"]').focus();
  });
  actionsBox.querySelectorAll("[data-action]").forEach(setupAction);

  // A shop's triggers use its catalog's event types: the others are offered but disabled.
  const shopSelect = field(form, "shopId");
  const eventSelect = field(form, "eventType");
  function syncCatalog() {
    const chosen = shopSelect.selectedOptions[0];
    const catalog = chosen ? chosen.dataset.catalog || "" : "";
    for (const group of eventSelect.querySelectorAll("optgroup")) {
      group.disabled = Boolean(catalog) && group.dataset.catalog !== catalog;
    }
    const selected = eventSelect.selectedOptions[0];
    if (selected && selected.parentElement.disabled) {
      const first = eventSelect.querySelector("optgroup:not([disabled]) option");
      if (first) eventSelect.value = first.value;
    }
  }
  shopSelect.addEventListener("change", syncCatalog);
  syncCatalog();
  setupTabs(document);
  renumber();
  // The tabs that were open before a save (`#tabs=auth,payload`, one per action).
  const openTabs = /tabs=([a-z,]+)/.exec(window.location.hash);
  if (openTabs) {
    const kinds = openTabs[1].split(",");
    actionsBox.querySelectorAll("[data-action]").forEach((fs, i) => {
      const tab = kinds[i] && fs.querySelector('[role=tab][id$="-tab-' + kinds[i] + '"]');
      if (tab) selectTab(tab, false);
    });
  }
  form.addEventListener("focusin", (e) => {
    if (e.target.matches("[data-template]")) lastTemplateField = e.target;
  });

  // ---- the draft, as the API takes it ----
  function collectAction(fs) {
    const a = { type: "callWebhook", url: value(fs, "url"), method: value(fs, "method") || "POST" };
    if (field(fs, "uniqueQueueItems").checked) a.uniqueQueueItems = true;
    if (!field(fs, "ordered").checked) a.ordered = false;
    const hmac = value(fs, "hmacSecret");
    if (hmac === "none") a.hmacSecret = "";
    // Generated in the page: the secret itself goes out, so a send test signs with it too.
    else if (hmac === "generate" || hmac === "set") a.hmacSecret = field(fs, "hmacSecret.value").value;
    if (value(fs, "signatureScheme") !== "standardWebhooks") a.signatureScheme = value(fs, "signatureScheme");
    // PEM text as it was given (a trailing newline included).
    const raw = (path) => { const v = field(fs, path).value; return v.trim() ? v : ""; };
    const cert = raw("clientCertificate.certPem");
    if (cert) {
      a.clientCertificate = { certPem: cert };
      const key = raw("clientCertificate.keyPem");
      if (key) a.clientCertificate.keyPem = key;
    }
    const ca = raw("caPem");
    if (ca) a.caPem = ca;
    const retry = value(fs, "retryPolicy");
    if (retry === "custom") {
      const policy = {};
      for (const k of ["maxRetries", "initialDelay", "maxDelay", "timeout", "maxAge", "deactivateAfterFailures"]) {
        const v = value(fs, "retryPolicy." + k);
        if (v !== "") policy[k] = Number(v);
      }
      const statuses = value(fs, "retryPolicy.retryOn4xx").split(/[\s,]+/).filter(Boolean);
      if (statuses.length) policy.retryOn4xx = statuses.map((v) => (/^\d+$/.test(v) ? Number(v) : v));
      a.retryPolicy = policy;
    } else if (retry) {
      a.retryPolicy = retry;
    }
    const headers = {};
    for (const line of field(fs, "headers").value.split("\n")) {
      if (!line.trim()) continue;
      const at = line.indexOf(":");
      if (at < 0) headers[line.trim()] = "";
      else headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    if (Object.keys(headers).length) a.headers = headers;
    const user = value(fs, "basicAuth.username");
    if (user) {
      a.basicAuth = { username: user };
      const pass = field(fs, "basicAuth.password").value;
      if (pass) a.basicAuth.password = pass;
    }
    const mime = value(fs, "payload.mimeType");
    if (mime) a.payload = { mimeType: mime, body: field(fs, "payload.body").value };
    return a;
  }
  function collect() {
    const shop = value(form, "shopId");
    return {
      name: value(form, "name"),
      eventType: value(form, "eventType"),
      shopId: shop ? Number(shop) : null,
      enabled: field(form, "enabled").checked,
      priority: Number(value(form, "priority") || 5),
      ...(window.hookflowRules ? window.hookflowRules.collect() : { condition: value(form, "condition") || null }),
      actions: [...actionsBox.querySelectorAll("[data-action]")].map(collectAction),
    };
  }

  // ---- errors beside their fields ----
  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    form.querySelectorAll(".field-error").forEach((e) => e.remove());
    form.querySelectorAll("[aria-invalid]").forEach((el) => {
      el.removeAttribute("aria-invalid");
      const described = (el.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.startsWith("err-")).join(" ");
      if (described) el.setAttribute("aria-describedby", described); else el.removeAttribute("aria-describedby");
      if (el.dataset.errorLine) { delete el.dataset.errorLine; if (el._drawGutter) el._drawGutter(); }
    });
  }
  // The API names the field (`actions[0].payload.body`); older answers carry it as the
  // message's prefix.
  function errorOf(data) {
    const err = (data && data.error) || {};
    let fieldName = err.field || null;
    let message = err.message || "The request failed.";
    if (!fieldName) {
      const m = /^([A-Za-z0-9_.\[\]-]+): (.*)$/s.exec(message);
      if (m && /^(name|eventType|shopId|priority|condition|rules|actions|body|actionIndex)/.test(m[1])) { fieldName = m[1]; message = m[2]; }
    } else if (message.startsWith(fieldName + ": ")) {
      message = message.slice(fieldName.length + 2);
    }
    return { field: fieldName, message, code: err.code };
  }
  function findField(path, fs) {
    let root = form;
    let rest = path;
    const m = /^actions\[(\d+)\]\.?(.*)$/.exec(path);
    if (m) {
      root = actionsBox.querySelectorAll("[data-action]")[Number(m[1])];
      rest = m[2];
      if (!root) return null;
      if (!rest) return $(root, '[data-path="url"]');
    } else if (fs) {
      root = fs;
    }
    if (path === "actions") return document.getElementById("add-action");
    if (/^rules(\.|$)/.test(path) && window.hookflowRules) return window.hookflowRules.find(path);
    if (path === "shopId" || path === "eventType" || path === "name" || path === "condition") return field(form, path);
    let parts = rest.split(".");
    while (parts.length) {
      const p = parts.join(".");
      const el = root.querySelector('[data-path="' + p + '"]') || root.querySelector('[data-alias="' + p + '"]');
      if (el) return el;
      parts = parts.slice(0, -1);
    }
    return null;
  }
  function showError(err, fs) {
    const el = err.field ? findField(err.field, fs) : null;
    if (!el) {
      formError.textContent = (err.field ? err.field + ": " : "") + err.message;
      formError.hidden = false;
      formError.scrollIntoView({ block: "center" });
      return;
    }
    const panel = el.closest("[role=tabpanel]");
    if (panel) selectTab(document.getElementById(panel.getAttribute("aria-labelledby")), false);
    const details = el.closest("details");
    if (details) details.open = true;
    const id = "err-" + (el.id || Math.random().toString(36).slice(2));
    const p = document.createElement("p");
    p.className = "field-error";
    p.id = id;
    p.textContent = err.message;
    const anchor = el.closest(".code-editor") || el;
    anchor.insertAdjacentElement("afterend", p);
    el.setAttribute("aria-invalid", "true");
    el.setAttribute("aria-describedby", ((el.getAttribute("aria-describedby") || "") + " " + id).trim());
    const pos = /line (\d+)(?:, column (\d+))?/.exec(err.message);
    if (pos && el.tagName === "TEXTAREA") {
      el.dataset.errorLine = pos[1];
      if (el._drawGutter) el._drawGutter();
      const lines = el.value.split("\n");
      const line = Math.min(Number(pos[1]), lines.length);
      let offset = 0;
      for (let i = 0; i < line - 1; i++) offset += lines[i].length + 1;
      offset += Math.max(0, Math.min(Number(pos[2] || 1) - 1, (lines[line - 1] || "").length));
      el.focus();
      el.setSelectionRange(offset, offset);
    } else {
      el.focus();
    }
  }

  // What the condition's script (rules.js) uses: the draft as it would be saved, and the
  // errors shown beside their fields.
  window.hookflowEditor = {
    collect,
    triggerId,
    clearErrors,
    showError: (err) => showError(errorOf({ error: err })),
  };

  // ---- save ----
  const saveStatus = document.getElementById("save-status");
  async function save(close) {
    clearErrors();
    const buttons = form.querySelectorAll(".save-bar button");
    buttons.forEach((b) => { b.disabled = true; });
    saveStatus.textContent = "Saving…";
    try {
      const draft = collect();
      const answer = triggerId ? await api("PUT", "/triggers/" + triggerId, draft) : await api("POST", "/triggers", draft);
      if (answer.ok) {
        saveStatus.textContent = "Saved.";
        const panels = [...actionsBox.querySelectorAll("[data-action]")];
        const tabs = panels.map((fs) => {
          const tab = fs.querySelector("[role=tab][aria-selected=true]");
          return tab ? tab.id.replace(/^.*-tab-/, "") : "general";
        });
        const hash = tabs.some((t) => t !== "general") ? "#tabs=" + tabs.join(",") : "";
        const dest = close ? "/triggers?notice=saved" : "/triggers/" + answer.data.id + "?notice=saved" + hash;
        const generated = panels
          .map((fs, i) => (fs.dataset.generated && value(fs, "hmacSecret") === "generate" ? { n: i + 1, secret: fs.dataset.generated } : null))
          .filter(Boolean);
        if (generated.length) showGenerated(generated, dest);
        else go(dest);
        return;
      }
      saveStatus.textContent = "Not saved.";
      showError(errorOf(answer.data));
    } catch (e) {
      saveStatus.textContent = "Not saved: " + e.message;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
  // Another page, or this one again (a reload: only the notice or the hash would change).
  function go(dest) {
    const url = new URL(dest, window.location.href);
    if (url.pathname === window.location.pathname && url.search === window.location.search) {
      window.history.replaceState(null, "", url.href);
      window.location.reload();
    } else {
      window.location.assign(url.href);
    }
  }
  // The secrets this save stored, shown once, with copy buttons, before going on.
  function showGenerated(generated, dest) {
    const dialog = document.getElementById("secret-dialog");
    const list = document.getElementById("secret-list");
    list.replaceChildren(...generated.map((g) => {
      const li = el("li");
      const code = el("code", { class: "secret", id: "generated-secret-" + g.n }, g.secret);
      const copy = el("button", { type: "button", "data-copy": "generated-secret-" + g.n }, "Copy");
      copy.addEventListener("click", () => copyFrom(copy));
      li.append("Action #" + g.n + ": ", code, " ", copy);
      return li;
    }));
    // However it is closed (Continue, Escape), the page goes on to the saved trigger.
    dialog.onclose = () => go(dest);
    document.getElementById("secret-continue").onclick = () => dialog.close();
    dialog.showModal();
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); if (saveStatus && !readonly) save(false); });
  const saveClose = document.getElementById("save-close");
  if (saveClose) saveClose.addEventListener("click", () => save(true));

  // ---- preview and send test ----
  function entityOf(fs) {
    const entity = $(fs, "[data-entity]").value.trim();
    const shop = value(form, "shopId");
    return entity && shop ? { shopId: Number(shop), entityId: entity } : {};
  }
  function resultBox(fs) { return $(fs, "[data-result]"); }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function pretty(text, contentType) {
    if ((contentType || "").includes("json")) { try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* as is */ } }
    return text;
  }
  async function preview(fs) {
    clearErrors();
    const box = resultBox(fs);
    const mime = value(fs, "payload.mimeType");
    box.replaceChildren(el("p", { class: "hint" }, "Rendering…"));
    if (!mime) {
      box.replaceChildren(el("p", { class: "hint" }, "No template: the event type's default payload is sent (see GET /api/v1/event-types/" + value(form, "eventType") + "/schema). Choose a mime type to write your own."));
      return;
    }
    const entity = $(fs, "[data-entity]").value.trim();
    const shop = value(form, "shopId");
    const body = { eventType: value(form, "eventType"), mimeType: mime, body: field(fs, "payload.body").value };
    if (shop) body.shopId = Number(shop);
    if (entity) body.entityId = entity;
    if (entity && !shop) { box.replaceChildren(el("p", { class: "error-text" }, "Choose a shop to preview a stored entity.")); return; }
    const answer = await api("POST", "/payloads/preview", body);
    if (!answer.ok) {
      box.replaceChildren();
      const err = errorOf(answer.data);
      if (err.field === "body" || err.code === "validation_failed") { err.field = "payload.body"; showError(err, fs); }
      else box.replaceChildren(el("p", { class: "error-text" }, err.message));
      return;
    }
    box.replaceChildren(
      el("h4", {}, "Preview (" + answer.data.contentType + ")"),
      el("pre", { class: "code-block", tabindex: "0", "data-preview-output": "" }, pretty(answer.data.body, answer.data.contentType)),
    );
  }
  async function sendTest(fs) {
    clearErrors();
    const box = resultBox(fs);
    const index = [...actionsBox.querySelectorAll("[data-action]")].indexOf(fs);
    const button = $(fs, "[data-send-test]");
    button.disabled = true;
    box.replaceChildren(el("p", { class: "hint" }, "Sending…"));
    try {
      const body = Object.assign({ trigger: collect(), actionIndex: index }, entityOf(fs));
      if (triggerId) body.triggerId = triggerId;
      const answer = await api("POST", "/triggers/send-test", body);
      if (!answer.ok) {
        box.replaceChildren();
        showError(errorOf(answer.data), fs);
        return;
      }
      const r = answer.data;
      const head = el("p", { "data-test-status": r.status === null ? "none" : String(r.status) });
      head.append(el("span", { class: "badge badge-" + (r.success ? "succeeded" : "failed") }, r.success ? "delivered" : "failed"));
      head.append(" " + (r.status !== null ? "HTTP " + r.status : "no response") + " · " + r.durationMs + " ms · " + r.request.method + " " + r.request.url);
      const parts = [el("h4", {}, "Send test"), head];
      if (r.error) parts.push(el("p", { class: "error-text" }, r.error));
      if (r.responseHeaders.length) {
        const table = el("table", { class: "headers" });
        const tbody = el("tbody");
        r.responseHeaders.forEach(([k, v]) => { const tr = el("tr"); tr.append(el("th", { scope: "row" }, k), el("td", { class: "break" }, v)); tbody.append(tr); });
        table.append(tbody);
        parts.push(el("h4", {}, "Response headers"), table);
      }
      const ct = (r.responseHeaders.find(([k]) => k.toLowerCase() === "content-type") || [])[1];
      parts.push(el("h4", {}, "Response body"), el("pre", { class: "code-block", tabindex: "0" }, pretty(r.responseBody, ct) || "(empty)"));
      if (r.request.body !== null) parts.push(el("details", {}, ""));
      const sent = parts[parts.length - 1];
      if (r.request.body !== null) { sent.append(el("summary", {}, "Request body sent"), el("pre", { class: "code-block" }, pretty(r.request.body, "json"))); }
      box.replaceChildren(...parts);
    } catch (e) {
      box.replaceChildren(el("p", { class: "error-text" }, "Send test failed: " + e.message));
    } finally {
      button.disabled = false;
    }
  }

  // ---- merge fields ----
  const dialog = document.getElementById("merge-dialog");
  const list = document.getElementById("merge-list");
  const mergeStatus = document.getElementById("merge-status");
  let mergeTarget = null;
  async function loadMergeFields(entity) {
    const type = value(form, "eventType");
    const shop = value(form, "shopId");
    let path = "/event-types/" + encodeURIComponent(type) + "/merge-fields";
    if (entity) {
      if (!shop) { mergeStatus.textContent = "Choose the trigger's shop first: an entity id belongs to a shop."; return; }
      path += "?shopId=" + encodeURIComponent(shop) + "&entityId=" + encodeURIComponent(entity);
    }
    mergeStatus.textContent = "Loading…";
    list.replaceChildren();
    const answer = await api("GET", path);
    if (!answer.ok) { mergeStatus.textContent = errorOf(answer.data).message; return; }
    const fields = answer.data.fields || [];
    mergeStatus.textContent = fields.length + " fields of " + type + (entity ? " for entity " + entity : "") + (answer.data.truncated ? " (more exist; the list is cut)" : "") + ".";
    for (const f of fields) {
      const li = el("li");
      const b = el("button", { type: "button", class: "merge-field", "data-merge-path": f.path });
      b.append(el("code", {}, f.path), el("span", { class: "type" }, f.type || ""));
      const extra = f.value !== undefined ? "= " + JSON.stringify(f.value) : (f.description || "");
      if (extra) b.append(el("span", { class: "desc" }, extra));
      b.addEventListener("click", () => insertField(f.path));
      li.append(b);
      list.append(li);
    }
  }
  function openMergeFields(fs) {
    mergeTarget = lastTemplateField && fs.contains(lastTemplateField) ? lastTemplateField : field(fs, "payload.body");
    document.getElementById("merge-entity").value = $(fs, "[data-entity]").value;
    dialog.showModal();
    loadMergeFields(document.getElementById("merge-entity").value.trim());
  }
  function insertField(path) {
    const target = mergeTarget;
    dialog.close();
    if (!target) return;
    const text = "{{ " + path + " }}";
    const start = target.selectionStart ?? target.value.length;
    const end = target.selectionEnd ?? start;
    target.focus();
    target.setRangeText(text, start, end, "end");
    target.dispatchEvent(new Event("input", { bubbles: true }));
  }
  document.getElementById("merge-entity-form").addEventListener("submit", (e) => {
    e.preventDefault();
    loadMergeFields(document.getElementById("merge-entity").value.trim());
  });
  document.getElementById("merge-all").addEventListener("click", () => {
    document.getElementById("merge-entity").value = "";
    loadMergeFields("");
  });
  document.getElementById("merge-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { if (mergeTarget) mergeTarget.focus(); });
})();

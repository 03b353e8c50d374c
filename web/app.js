// hookflow web UI: small enhancements on top of pages that work without JavaScript.
// - Buttons with data-confirm ask before their form is sent.
// - The Event types page's search box filters the catalogs' types.
// - The Webhook Queue page refreshes its table every few seconds, keeping the filter (it
//   reloads its own URL) and pausing while the user is typing in the filter.
// - An error page's "Go back" returns to the page before.
// - Content-Security-Policy violations are said in the console, each one.
// No page has inline script or event handlers: the Content-Security-Policy (`script-src
// 'self'`) refuses them, so every behaviour is wired here or in editor.js.
"use strict";

// The JSON API as the signed-in page calls it (the session's cookie and CSRF token): the
// trigger editor's scripts (editor.js, rules.js) share it. `path` is below `/api/v1`.
window.hookflowApi = async function api(method, path, body) {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const response = await fetch("/api/v1" + path, {
    method,
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": meta ? meta.content : "" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: { message: text } }; }
  return { ok: response.ok, status: response.status, data };
};

// The browser says most violations in the console itself, but not all (Chromium reports a
// refused `eval` only among its developer tools' issues): every one is said here too, where
// the browser tests, which fail on any, read the console.
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("Content Security Policy violation: " + event.effectiveDirective + " blocked " +
    (event.blockedURI || "(unknown)") + " at " + event.sourceFile + ":" + event.lineNumber);
});

document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// The Event types page: a search box filters every catalog's rows (opening the catalogs that
// have matches), since a catalog lists dozens of types.
(function eventTypeSearch() {
  const box = document.getElementById("type-search-box");
  const input = document.getElementById("type-search");
  if (!box || !input) return;
  box.hidden = false;
  const count = document.getElementById("type-search-count");
  const sections = Array.from(document.querySelectorAll("details.catalog"));
  const initiallyOpen = new Map(sections.map((s) => [s, s.open]));
  input.addEventListener("input", () => {
    const words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const section of sections) {
      let matches = 0;
      for (const row of section.querySelectorAll("tr[data-search]")) {
        const hit = words.every((w) => row.dataset.search.includes(w));
        row.hidden = !hit;
        if (hit) matches += 1;
      }
      shown += matches;
      section.hidden = words.length > 0 && matches === 0;
      section.open = words.length > 0 ? matches > 0 : initiallyOpen.get(section);
    }
    count.textContent = words.length ? shown + (shown === 1 ? " type matches" : " types match") : "";
  });
})();

(function queueRefresh() {
  const rows = document.getElementById("queue-rows");
  if (!rows) return;
  const status = document.getElementById("refresh-status");
  const filter = document.getElementById("queue-filter");
  const everyMs = 5000;
  let busy = false;

  async function refresh() {
    if (busy || document.hidden) return;
    if (filter && filter.contains(document.activeElement) && document.activeElement.tagName !== "BUTTON") return;
    busy = true;
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "x-requested-with": "hookflow-refresh" },
      });
      if (response.redirected && new URL(response.url).pathname === "/login") {
        status.textContent = "Signed out: reload the page to sign in again.";
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("queue-rows");
      if (fresh && fresh.innerHTML !== rows.innerHTML) rows.innerHTML = fresh.innerHTML;
      const pager = document.getElementById("queue-pager");
      const freshPager = page.getElementById("queue-pager");
      if (pager && freshPager) pager.innerHTML = freshPager.innerHTML;
      status.textContent = "Updated " + new Date().toLocaleTimeString() + "; refreshes every 5 seconds.";
    } catch (err) {
      status.textContent = "Refresh failed (" + err.message + "); trying again.";
    } finally {
      busy = false;
    }
  }
  setInterval(refresh, everyMs);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
})();

// A filter's event-type select follows its shop select: only the chosen shop's catalog is
// offered (every catalog while no shop is chosen). The server does the same on load.
document.querySelectorAll("select[data-follows-shop]").forEach((types) => {
  const shop = document.getElementById(types.dataset.followsShop);
  if (!shop) return;
  const follow = () => {
    const chosen = shop.selectedOptions[0];
    const catalog = chosen && chosen.dataset.catalog;
    types.querySelectorAll("optgroup[data-catalog]").forEach((group) => {
      const shown = !catalog || group.dataset.catalog === catalog;
      group.hidden = !shown;
      group.disabled = !shown;
    });
    const picked = types.selectedOptions[0];
    if (picked && picked.parentElement.disabled) types.value = "";
  };
  shop.addEventListener("change", follow);
});

// Buttons with data-copy="<id>" copy that element's text; where the clipboard is not
// available (plain HTTP on another host), the text is selected for Ctrl+C instead.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  // The trigger editor's secrets are copied by the editor's own script.
  if (!button || button.closest("#trigger-form, #secret-dialog")) return;
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.id + "-status");
  if (!source) return;
  const text = source.textContent.replace(/^\n/, "");
  try {
    await navigator.clipboard.writeText(text);
    if (status) status.textContent = "Copied.";
  } catch (err) {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (status) status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
});

// Error pages: "Go back" (shown only where there is a page to go back to) instead of a
// `javascript:` link.
document.querySelectorAll("[data-history-back]").forEach((holder) => {
  if (window.history.length < 2) return;
  holder.hidden = false;
  holder.querySelector("button").addEventListener("click", () => window.history.back());
});

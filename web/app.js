// hookflow web UI: small enhancements on top of pages that work without JavaScript.
// - Buttons with data-confirm ask before their form is sent.
// - The Event types page's search box filters the catalogs' types.
// - The Webhook Queue page refreshes its table every few seconds, keeping the filter (it
//   reloads its own URL) and pausing while the user is typing in the filter.
"use strict";

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

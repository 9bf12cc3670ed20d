// The stats page: figures and two bar charts drawn with plain elements (text via textContent).
"use strict";

(() => {
  const form = document.getElementById("stats-range");
  const daysInput = document.getElementById("stats-days");
  const exportJson = document.getElementById("export-json");
  const exportCsv = document.getElementById("export-csv");
  const figures = document.getElementById("stats-figures");
  const routes = document.getElementById("stats-routes");
  const reasons = document.getElementById("stats-reasons");
  const statusLine = document.getElementById("stats-status");

  const { element } = common;

  function seconds(value) {
    if (value === null || value === undefined) return "—";
    return value < 90 ? `${Math.round(value)} s` : `${(value / 60).toFixed(1)} min`;
  }

  function figure(label, value) {
    figures.appendChild(element("dt", "", label));
    figures.appendChild(element("dd", "", value));
  }

  // One bar per row; the width is set through the style object, which the page's CSP allows.
  function bars(list, rows) {
    list.replaceChildren();
    const most = Math.max(1, ...rows.map((row) => row.count));
    if (!rows.length) list.appendChild(element("li", "muted", "None in this period."));
    for (const row of rows) {
      const item = element("li", "bar-row");
      item.appendChild(element("span", "bar-label", row.label));
      const bar = element("span", "bar");
      bar.style.width = `${(100 * row.count) / most}%`;
      item.appendChild(bar);
      item.appendChild(element("span", "bar-count", row.count));
      list.appendChild(item);
    }
  }

  async function load() {
    const days = Math.max(1, Number(daysInput.value) || 30);
    exportJson.href = `/desk/api/stats?days=${days}`;
    exportCsv.href = `/desk/api/stats.csv?days=${days}`;
    statusLine.hidden = true;
    try {
      const response = await fetch(`/desk/api/stats?days=${days}`, { credentials: "same-origin" });
      if (response.status === 401) {
        window.location.assign("/desk/login?next=/desk/stats");
        return;
      }
      if (!response.ok) throw new Error(`The desk answered ${response.status}.`);
      const stats = await response.json();
      figures.replaceChildren();
      figure("Handoffs to a human", stats.desk_handoffs);
      figure("Answered by a human", stats.answered);
      figure("First human reply, median", seconds(stats.first_reply_seconds.median));
      figure("First human reply, 90th percentile", seconds(stats.first_reply_seconds.p90));
      figure("Handed back to a bot", stats.hand_back_rate === null ? "—" : `${Math.round(100 * stats.hand_back_rate)} % of ${stats.ended} ended`);
      bars(routes, stats.routes);
      bars(reasons, stats.reasons.map((row) => ({ label: row.reason || "(no reason given)", count: row.count })));
    } catch (error) {
      statusLine.textContent = error.message;
      statusLine.hidden = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
})();

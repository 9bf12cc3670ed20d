// The stats page: figures, a chart over time and bar charts, drawn with plain elements (text via textContent).
// Sizes are set through the style object, which the page's Content-Security-Policy allows.
"use strict";

(() => {
  const form = document.getElementById("stats-range");
  const daysInput = document.getElementById("stats-days");
  const byChoice = document.getElementById("stats-by");
  const period = document.getElementById("stats-period");
  const figures = document.getElementById("stats-figures");
  const timeline = document.getElementById("stats-timeline");
  const routes = document.getElementById("stats-routes");
  const reasons = document.getElementById("stats-reasons");
  const exports = document.querySelectorAll("a.export");
  const statusLine = document.getElementById("stats-status");
  // Hours and days are cut in the operator's own time zone.
  const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  const { element } = common;

  function seconds(value) {
    if (value === null || value === undefined) return "—";
    return value < 90 ? `${Math.round(value)} s` : `${(value / 60).toFixed(1)} min`;
  }

  function share(part, whole, what) {
    if (!whole) return `none ${what}`;
    return `${part} of ${whole} ${what} (${Math.round((100 * part) / whole)} %)`;
  }

  function figure(label, value) {
    figures.appendChild(element("dt", "", label));
    figures.appendChild(element("dd", "", value));
  }

  // One horizontal bar per row.
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

  // Each start is an ISO time in the zone asked for, so its wall-clock digits are already local.
  // Hours are labelled every 3, 6 or 12 hours as they get narrower, midnight by its date.
  function slotLabel(start, bucket, index, count) {
    if (bucket === "hour") {
      const hour = Number(start.slice(11, 13));
      const every = count > 48 ? 12 : count > 24 ? 6 : 3;
      if (hour % every !== 0) return "";
      return hour === 0 ? start.slice(5, 10) : start.slice(11, 16);
    }
    const every = count > 14 ? 7 : 1;
    return index % every === 0 ? start.slice(5, 10) : "";
  }

  // One column per hour or day: the part that went to a human desk stacked on the part between bots.
  function drawTimeline(rows, bucket) {
    timeline.replaceChildren();
    const most = Math.max(1, ...rows.map((row) => row.handoffs));
    rows.forEach((row, index) => {
      const slot = element("div", "slot");
      slot.dataset.start = row.start;
      slot.title = `${row.start.slice(0, 16).replace("T", " ")}: ${row.handoffs} handoffs, ${row.to_human} to a human`;
      const column = element("div", "slot-bars");
      const human = element("div", "slot-human");
      human.style.height = `${(100 * row.to_human) / most}%`;
      const bot = element("div", "slot-bot");
      bot.style.height = `${(100 * (row.handoffs - row.to_human)) / most}%`;
      column.append(bot, human);
      slot.appendChild(column);
      slot.appendChild(element("span", "slot-label", slotLabel(row.start, bucket, index, rows.length)));
      timeline.appendChild(slot);
    });
  }

  function query() {
    const params = new URLSearchParams({ days: Math.max(1, Number(daysInput.value) || 30), tz: TIME_ZONE });
    if (byChoice.value) params.set("by", byChoice.value);
    return params;
  }

  function show(stats) {
    period.textContent = `${stats.since.slice(0, 16).replace("T", " ")} to ${stats.until.slice(0, 16).replace("T", " ")} (${stats.timezone}), per ${stats.bucket}`;
    figures.replaceChildren();
    figure("Handoffs", stats.handoffs);
    figure("Never reached a human", share(stats.containment.contained, stats.containment.conversations, "conversations"));
    figure("First human reply, median", seconds(stats.first_reply.median_seconds));
    figure("First human reply, 90th percentile", seconds(stats.first_reply.p90_seconds));
    figure("Left before a human answered", share(stats.abandonment.abandoned, stats.abandonment.stays, "desk stays"));
    figure("Handed back to a bot", share(stats.bounce.handed_back, stats.bounce.ended, "ended desk stays"));
    drawTimeline(stats.timeline, stats.bucket);
    bars(reasons, stats.reasons.map((row) => ({ label: row.reason.replaceAll("_", " "), count: row.count })));
    bars(routes, stats.routes);
  }

  async function load() {
    const params = query();
    for (const link of exports) {
      link.href = `/desk/api/stats/${link.dataset.figure}.${link.dataset.kind}?${params}`;
    }
    statusLine.hidden = true;
    try {
      const response = await fetch(`/desk/api/stats?${params}`, { credentials: "same-origin" });
      if (response.status === 401) {
        window.location.assign("/desk/login?next=/desk/stats");
        return;
      }
      show(await common.readJson(response));
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

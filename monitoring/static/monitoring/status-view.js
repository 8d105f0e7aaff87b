/** The status document on the page: overall status, summary tiles, per-source tables, anomalies. */

import {
  STATUS_LABELS,
  ago,
  badge,
  duration,
  formatCount,
  formatRate,
  h,
  parseTime,
  setBadge,
  timeAgo,
} from "./format.js";

const label = (status) => STATUS_LABELS[status] ?? status;
const utcHour = (iso) => (parseTime(iso) === null ? "?" : `${new Date(iso).toISOString().slice(11, 16)} UTC`);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

const STALE_BECAUSE = {
  no_update: "the monitor's status updates have stopped",
  database_unavailable: "the monitor cannot reach its database",
  status_failed: "the monitor could not compute it",
};

/**
 * What the page may honestly claim. The server's status stands only while the data behind it is fresh:
 * stale metric reports are shown as "Stale"; when the server says its status is not being updated
 * (`stale`: a `status_stale` notice and the time it arrived), or with the feed down and no fresh
 * answer for two poll intervals, the status is "Unknown", never the last healthy verdict.
 */
export function honestStatus({ doc, live, lastDataAt, now, pollMs, stale = null }) {
  if (!doc) return { status: "unknown", reason: "No status received yet." };
  if (stale) {
    const since = typeof stale.age_seconds === "number" ? ` for ${duration(stale.age_seconds * 1000 + now - stale.at)}` : "";
    const because = STALE_BECAUSE[stale.reason] ?? "the monitor is not updating it";
    return {
      status: "unknown",
      reason: `The status has not been updated${since}: ${because}. Last known: ${label(doc.overall_status)}.`,
    };
  }
  const age = now - lastDataAt;
  if (!live && age > 2 * pollMs) {
    return {
      status: "unknown",
      reason: `No fresh status for ${duration(age)}: the live feed is down and polling gets no answer. Last known: ${label(doc.overall_status)}.`,
    };
  }
  const quality = doc.data_quality ?? {};
  const scraping = doc.scraping_health ?? {};
  const parts = [];
  if (quality.stale) {
    const last = parseTime(quality.last_updated);
    parts.push(`The newest metric report is ${last === null ? "missing" : ago(now - last)}; reports may have stopped`);
  }
  parts.push(`Data quality: ${label(quality.status)}`);
  const staleSources = scraping.stale_sources ? ` (${plural(scraping.stale_sources, "stale source")})` : "";
  parts.push(`Scraping: ${label(scraping.status)}${staleSources}`);
  // The open alerts put a floor under the overall status (docs/status.md): say so when they set it.
  const floor = doc.alerts_floor ?? {};
  const raising = floor.status ? ` (${floor.alerts.length} raising the status to ${label(floor.status)})` : "";
  parts.push(`${plural((doc.alerts ?? []).length, "active alert")}${raising}`);
  const reason = `${parts.join(". ")}.`;
  if (quality.stale && doc.overall_status !== "critical") return { status: "stale", reason };
  if (doc.overall_status === "no_data") {
    const alerts = doc.alerts?.length ? ` ${plural(doc.alerts.length, "active alert")}.` : "";
    return { status: "no_data", reason: `No pipeline reports or scrape runs in the last ${doc.window_hours} h.${alerts}` };
  }
  return { status: doc.overall_status, reason };
}

function table(headers, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map(([text, cls]) => h("th", { scope: "col", class: cls }, text)))),
    h("tbody", {}, rows),
  );
}

function scrapingRows(sources) {
  return sources.map((s) =>
    h(
      "tr",
      { dataset: { source: s.source } },
      h("th", { scope: "row" }, s.source),
      h(
        "td",
        {},
        badge(s.status),
        s.stale ? [" ", badge("stale")] : null,
        // Onboarding: no success yet, first run recent; its staleness and failures do not page.
        s.new ? [" ", badge("new", "new")] : null,
      ),
      h("td", {}, timeAgo(s.last_run)),
      h("td", {}, timeAgo(s.last_success)),
      h("td", { class: "num" }, s.finished_runs ? `${s.failure_rate.toFixed(1)}%` : "—"),
      h("td", { class: "num" }, `${s.failed_runs} / ${s.finished_runs}`),
      h("td", { class: "num" }, s.stuck_runs ? `${s.running_runs} (${s.stuck_runs} stuck)` : String(s.running_runs)),
      h("td", { class: "error-text" }, s.last_error ? s.last_error : ""),
    ),
  );
}

function qualityRows(bySource) {
  return bySource.map((s) =>
    h(
      "tr",
      { dataset: { source: s.source } },
      h("th", { scope: "row" }, s.source),
      h("td", {}, badge(s.status), learning(s.anomaly_detection)),
      h("td", { class: "num" }, formatRate(s.geocoding_success_rate, s.geocoding_attempts)),
      h("td", { class: "num" }, formatRate(s.validation_pass_rate, s.validation_attempts)),
      h("td", { class: "num" }, formatCount(s.geocoding_attempts)),
      h("td", { class: "num" }, formatCount(s.reports)),
      h("td", {}, timeAgo(s.last_updated)),
    ),
  );
}

/** The anomaly detector's state when it does not judge a source: being built, or still learning. */
function learning(detection) {
  if (detection?.state === "starting") {
    return [" ", h("span", { class: "muted learning", title: "The server is building its anomaly detectors." }, "detector starting")];
  }
  if (!detection || detection.state !== "learning") return null;
  return [
    " ",
    h(
      "span",
      { class: "muted learning", title: "The anomaly detector needs this much history before it judges the source." },
      `learning (${detection.hours_seen} of ${detection.hours_needed} h)`,
    ),
  ];
}

function anomalyItem(a) {
  const arrow = a.direction === "spike" ? "above" : "below";
  const value = (x) => (a.metric === "volume" ? formatCount(Math.round(x)) : `${Number(x).toFixed(1)}%`);
  const metric = { volume: "Volume", geocoding_success_rate: "Geocoding", validation_pass_rate: "Validation" };
  return h(
    "li",
    { dataset: { source: a.source, metric: a.metric } },
    h("strong", {}, `${a.source} · ${metric[a.metric] ?? a.metric}`),
    ` ${value(a.observed)} observed, ${arrow} the expected ${value(a.expected)} `,
    h(
      "span",
      { class: "muted" },
      `(range ${value(a.expected_low)}–${value(a.expected_high)}, score ${Number(a.score).toFixed(1)}, ` +
        `hour ${utcHour(a.hour)}${a.partial ? " so far" : ""}${a.rule ? `, rule ${a.rule}` : ""})`,
    ),
    a.explanation ? h("div", { class: "muted anomaly-explanation" }, a.explanation) : null,
  );
}

/** Replace a container's content only when its data changed, so a steady feed does not churn the DOM. */
function replaceIfChanged(container, key, build) {
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  container.replaceChildren(build());
}

export class StatusView {
  constructor(root = document) {
    this.overall = root.getElementById("overall-status");
    this.reason = root.getElementById("overall-reason");
    this.window = root.getElementById("overall-window");
    this.announcer = root.getElementById("status-announcer");
    this.scrapingBadge = root.getElementById("scraping-status");
    this.scrapingTable = root.getElementById("scraping-table");
    this.qualityTable = root.getElementById("quality-table");
    this.anomalies = root.getElementById("anomalies-list");
    this.hint = root.getElementById("no-data-hint");
    this.fields = Object.fromEntries([...root.querySelectorAll("[data-field]")].map((el) => [el.dataset.field, el]));
    this.shown = null;
  }

  /** The overall line; called on every document and every second (staleness grows with time). */
  renderOverall(verdict) {
    this.overall.closest(".overall").dataset.status = verdict.status;
    setBadge(this.overall, verdict.status);
    this.reason.textContent = verdict.reason;
    this.hint.hidden = verdict.status !== "no_data";
    if (this.shown !== null && this.shown !== verdict.status) {
      this.announcer.textContent = `Overall status changed to ${label(verdict.status)}.`;
    }
    this.shown = verdict.status;
  }

  render(doc) {
    const quality = doc.data_quality;
    const scraping = doc.scraping_health;
    const f = this.fields;
    this.window.textContent = `last ${doc.window_hours} h`;
    f["geocoding-rate"].textContent = formatRate(quality.geocoding_success_rate, quality.geocoding_attempts);
    f["validation-rate"].textContent = formatRate(quality.validation_pass_rate, quality.validation_attempts);
    f.geocoded.textContent = `${formatCount(quality.geocoding_successes)} of ${formatCount(quality.geocoding_attempts)}`;
    f.validated.textContent = `${formatCount(quality.validation_passes)} of ${formatCount(quality.validation_attempts)}`;
    f.reports.textContent = formatCount(quality.reports);
    setBadge(f["quality-status"], quality.stale && quality.status !== "critical" ? "stale" : quality.status);
    setBadge(f["scraping-status"], scraping.status);
    setBadge(this.scrapingBadge, scraping.status);
    f["last-report"].replaceChildren(timeAgo(quality.last_updated));

    replaceIfChanged(this.scrapingTable, JSON.stringify(scraping.sources), () =>
      scraping.sources.length
        ? table(
            [
              ["Source"],
              ["Status"],
              ["Last run"],
              ["Last success"],
              ["Failure rate", "num"],
              ["Failed / finished", "num"],
              ["Running", "num"],
              ["Last error"],
            ],
            scrapingRows(scraping.sources),
          )
        : h("p", { class: "empty" }, "No scrape runs reported in the last week."),
    );
    replaceIfChanged(this.qualityTable, JSON.stringify(quality.by_source), () =>
      quality.by_source.length
        ? table(
            [
              ["Source"],
              ["Status"],
              ["Geocoding", "num"],
              ["Validation", "num"],
              ["Records", "num"],
              ["Reports", "num"],
              ["Last report"],
            ],
            qualityRows(quality.by_source),
          )
        : h("p", { class: "empty" }, `No metric reports in the last ${doc.window_hours} h.`),
    );
    replaceIfChanged(this.anomalies, JSON.stringify(doc.anomalies), () =>
      doc.anomalies.length
        ? h("ul", { class: "anomaly-list" }, doc.anomalies.map(anomalyItem))
        : h("p", { class: "empty" }, "No anomalies in the last complete hour or the current one."),
    );
  }
}

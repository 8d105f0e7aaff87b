/**
 * Trend charts from GET /api/v1/monitoring/trends (docs/trends.md), drawn by the vendored Chart.js:
 * the two data-quality rates over all sources, and records per source.
 */

import { formatCount, getJson } from "./format.js";

export const RANGES = {
  "24h": { bucket: "hour", window: 24, label: "24 h" },
  "7d": { bucket: "hour", window: 168, label: "7 days" },
  "30d": { bucket: "day", window: 720, label: "30 days" },
};
// Okabe–Ito: colours that stay distinct with the common colour-vision deficiencies.
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"];
// The records chart gives each of the largest sources a colour of its own and stacks the rest as one
// grey "other": cycling eight colours over thirteen sources made two of them look alike. One request
// per source shown, so the bound also keeps a pipeline with many sources from flooding the API.
export const MAX_SOURCES = PALETTE.length;
export const OTHER_COLOUR = "#8C8C8C";
const RATE_METRICS = "geocoding_success_rate,validation_pass_rate,volume";

const hourOnly = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
const dayHour = new Intl.DateTimeFormat("en-GB", { weekday: "short", hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
const dayOnly = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });

function bucketLabel(iso, range) {
  const date = new Date(iso);
  if (range.bucket === "day") return dayOnly.format(date);
  return range.window <= 24 ? hourOnly.format(date) : dayHour.format(date);
}

function signed(value, unit) {
  const sign = value > 0 ? "+" : value < 0 ? "−" : "±";
  return `${sign}${Math.abs(value).toFixed(1)}${unit}`;
}

function describeRate(name, metric) {
  if (metric.current.rate === null) return `${name}: no data in complete hours`;
  const change = metric.change === null ? "no earlier data" : `${signed(metric.change, " points")}, ${metric.direction}`;
  return `${name} ${metric.current.rate.toFixed(1)}% (${change})`;
}

function describeVolume(metric) {
  const change = metric.change === null ? metric.direction : `${signed(metric.change, "%")}, ${metric.direction}`;
  return `records ${formatCount(metric.current.records)} (${change})`;
}

function chartOptions({ stacked = false, percent = false } = {}) {
  // A rate chart's legend shows line samples with each dataset's dash, so it does not rely on colour alone.
  const labels = percent ? { usePointStyle: true, pointStyle: "line", pointStyleWidth: 28 } : { boxWidth: 14 };
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom", labels } },
    scales: {
      x: { stacked, ticks: { autoSkip: true, maxRotation: 0 } },
      y: {
        stacked,
        beginAtZero: true,
        ...(percent ? { max: 100, ticks: { callback: (value) => `${value}%` } } : {}),
      },
    },
  };
}

export class TrendCharts {
  constructor({ trendsUrl, ratesCanvas, volumeCanvas, summary, minGapMs = 30000 }) {
    this.trendsUrl = trendsUrl;
    this.ratesCanvas = ratesCanvas;
    this.volumeCanvas = volumeCanvas;
    this.summary = summary;
    this.minGapMs = minGapMs;
    this.range = "24h";
    this.sources = [];
    this.records = new Map(); // source → records in the status window: which sources are the largest
    this.colours = new Map(); // source → colour, kept while the source stays shown
    this.lastFetch = -Infinity;
    this.inFlight = false;
    this.again = false;
    this.charts = { rates: null, volume: null };
    this.Chart = globalThis.Chart ?? null;
  }

  setRange(key) {
    if (!(key in RANGES)) return;
    this.range = key;
    this.refresh();
  }

  /**
   * The sources of the latest status, each with its records in the status window (0 when unknown); a new or
   * vanished source redraws at once, a changed ranking at the next refresh.
   */
  setSources(rows) {
    const records = new Map();
    for (const { source, records: count } of rows) records.set(source, Math.max(records.get(source) ?? 0, count ?? 0));
    this.records = records;
    const next = [...records.keys()].sort();
    if (next.join("\n") === this.sources.join("\n")) return;
    this.sources = next;
    this.refresh();
  }

  /** The sources the records chart shows on their own: the largest first, all of them when they fit. */
  shownSources() {
    const ranked = [...this.sources].sort((a, b) => (this.records.get(b) ?? 0) - (this.records.get(a) ?? 0) || a.localeCompare(b));
    // With more sources than colours, one colour goes to "other".
    return ranked.length <= MAX_SOURCES ? ranked : ranked.slice(0, MAX_SOURCES - 1);
  }

  /** A colour per shown source, stable while it stays shown: a ranking change does not repaint the chart. */
  assignColours(shown) {
    for (const source of [...this.colours.keys()]) if (!shown.includes(source)) this.colours.delete(source);
    const free = PALETTE.filter((colour) => ![...this.colours.values()].includes(colour));
    for (const source of shown) if (!this.colours.has(source)) this.colours.set(source, free.shift());
    return shown.map((source) => this.colours.get(source));
  }

  /** Called on every status update; fetches at most once per `minGapMs`. */
  maybeRefresh() {
    if (Date.now() - this.lastFetch >= this.minGapMs) this.refresh();
  }

  async refresh() {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    this.lastFetch = Date.now();
    try {
      await this._load();
    } catch (error) {
      this.summary.textContent = `Trends unavailable: ${error.message}`;
    } finally {
      this.inFlight = false;
    }
    if (this.again) {
      this.again = false;
      this.refresh();
    }
  }

  destroy() {
    for (const chart of Object.values(this.charts)) chart?.destroy();
    this.charts = { rates: null, volume: null };
  }

  async _load() {
    if (!this.Chart) {
      this.summary.textContent = "Charts unavailable: the chart library did not load.";
      return;
    }
    const range = RANGES[this.range];
    const query = `bucket=${range.bucket}&window_hours=${range.window}`;
    const shown = this.shownSources();
    const [overall, ...perSource] = await Promise.all([
      getJson(`${this.trendsUrl}?metric=${RATE_METRICS}&${query}`),
      ...shown.map((source) => getJson(`${this.trendsUrl}?metric=volume&source=${encodeURIComponent(source)}&${query}`)),
    ]);
    const labels = overall.metrics.geocoding_success_rate.points.map((p) => bucketLabel(p.start, range));
    const dense = labels.length > 48;
    this._draw("rates", this.ratesCanvas, "line", labels, chartOptions({ percent: true }), [
      {
        label: "Geocoding success",
        data: overall.metrics.geocoding_success_rate.points.map((p) => p.rate),
        borderColor: PALETTE[0],
        backgroundColor: PALETTE[0],
        pointRadius: dense ? 0 : 2,
        spanGaps: false,
      },
      {
        label: "Validation pass",
        data: overall.metrics.validation_pass_rate.points.map((p) => p.rate),
        borderColor: PALETTE[1],
        backgroundColor: PALETTE[1],
        borderDash: [6, 4], // a second line told apart by its dash as well as its colour
        pointRadius: dense ? 0 : 2,
        spanGaps: false,
      },
    ]);
    const colours = this.assignColours(shown);
    const volume = perSource.map((trend, i) => ({
      label: trend.source,
      data: trend.metrics.volume.points.map((p) => p.records),
      backgroundColor: colours[i],
    }));
    const others = this.sources.length - shown.length;
    if (others > 0) {
      // The rest is the total less the sources shown, so the stack adds up to the records over all sources.
      const total = overall.metrics.volume.points.map((p) => p.records);
      volume.push({
        label: `other (${others} ${others === 1 ? "source" : "sources"})`,
        data: total.map((records, b) => Math.max(records - volume.reduce((sum, d) => sum + (d.data[b] ?? 0), 0), 0)),
        backgroundColor: OTHER_COLOUR,
      });
    }
    this._draw("volume", this.volumeCanvas, "bar", labels, chartOptions({ stacked: true }), volume);
    const more = others > 0 ? ` Records chart: the ${shown.length} largest sources, the other ${others} together.` : "";
    const text =
      `Last ${range.label} vs the ${range.label} before: ` +
      `${describeRate("geocoding", overall.metrics.geocoding_success_rate)}; ` +
      `${describeRate("validation", overall.metrics.validation_pass_rate)}; ` +
      `${describeVolume(overall.metrics.volume)}.${more}`;
    this.summary.textContent = text;
    this.ratesCanvas.setAttribute("aria-label", `Data-quality rates per ${range.bucket}, last ${range.label}. ${text}`);
    this.volumeCanvas.setAttribute("aria-label", `Records per source per ${range.bucket}, last ${range.label}.`);
  }

  _draw(name, canvas, type, labels, options, datasets) {
    const chart = this.charts[name];
    if (chart && chart.config.type === type) {
      chart.data.labels = labels;
      chart.data.datasets = datasets;
      chart.update("none");
      return;
    }
    this.charts[name] = new this.Chart(canvas, { type, data: { labels, datasets }, options });
  }
}

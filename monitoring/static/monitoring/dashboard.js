/** The dashboard page: wires the feed connection to the views, the ticker and the page lifecycle. */

import { AlertsPanel } from "./alerts-panel.js";
import { FeedClient, feedUrl } from "./feed-client.js";
import { ago, h, parseTime, postJson, refreshTimes, setChildren } from "./format.js";
import { StatusView, honestStatus } from "./status-view.js";
import { TrendCharts } from "./trends.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const byId = (id) => document.getElementById(id);
const pollMs = config.pollInterval * 1000;
const canRead = config.publicRead || config.user.authenticated;

let current = null; // the newest status document
let lastDataAt = null; // when it arrived (this browser's clock: the server's may differ)
let lastVia = null;
let staleNotice = null; // the server's latest `status_stale` data and when it arrived, until a status ends it
let connection = { state: "connecting", attempt: 0, polling: false, nextRetryAt: null };
let renderQueued = false;
let ticker = null;

const view = new StatusView(document);
const trends = new TrendCharts({
  trendsUrl: config.trendsUrl,
  ratesCanvas: byId("rates-chart"),
  volumeCanvas: byId("volume-chart"),
  summary: byId("trends-summary"),
});
const alerts = new AlertsPanel({
  list: byId("alerts-list"),
  count: byId("alerts-count"),
  alertsUrl: config.alertsUrl,
  canAct: config.user.authenticated,
  csrfCookieName: config.csrfCookieName,
  onNewCritical: announceCritical,
});
const client = new FeedClient({
  url: feedUrl({ base: config.wsBaseUrl, path: config.wsPath, location: window.location }),
  statusUrl: config.statusUrl,
  heartbeatMs: config.heartbeatTimeout * 1000,
  pollMs,
  // Without public read the socket needs a session cookie, which another host never gets: a ticket works anywhere.
  getTicket: config.publicRead ? null : async () => (await postJson(config.ticketUrl, {}, config.csrfCookieName)).ticket,
  onStatus,
  onStale: (data) => {
    staleNotice = { ...data, at: Date.now() };
    renderOverall();
  },
  // A resync needs nothing here: the snapshot that follows replaces the state like any newer document or list.
  onAlerts: (frame) => alerts.applyFrame(frame),
  onState: (next) => {
    connection = next;
    renderConnection();
    renderOverall();
  },
  onRestError: (status) => {
    if (status === 401 || status === 403) showBanner("Log in to see the pipeline status.", config.loginUrl);
    else if (status === 503) showBanner("The monitor cannot reach its database; the figures below are not current. Retrying.");
    else if (status === 0 || status >= 500) showBanner("The monitor does not answer; the figures below are not current. Retrying.");
  },
});

// --- data -------------------------------------------------------------------------------------
function onStatus(doc, meta) {
  // A REST answer and socket frames can cross: keep the newest document by its own timestamp.
  if (current && parseTime(doc.timestamp) < parseTime(current.timestamp)) return;
  current = doc;
  staleNotice = null;
  lastDataAt = Date.now();
  lastVia = meta.via;
  hideBanner();
  alerts.replaceAll(doc.alerts ?? []);
  trends.setSources([
    ...doc.scraping_health.sources.map((s) => ({ source: s.source, records: 0 })),
    ...doc.data_quality.by_source.map((s) => ({ source: s.source, records: s.geocoding_attempts })),
  ]);
  trends.maybeRefresh();
  if (!renderQueued) {
    // Replayed frames arrive in a burst after a resume: draw once per animation frame, with the newest.
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      view.render(current);
      renderOverall();
      renderUpdated();
    });
  }
}

// --- rendering --------------------------------------------------------------------------------
function renderOverall() {
  view.renderOverall(
    honestStatus({ doc: current, live: connection.state === "live", lastDataAt, now: Date.now(), pollMs, stale: staleNotice }),
  );
}

function renderConnection() {
  const element = byId("connection");
  const { state, attempt, nextRetryAt } = connection;
  const labels = {
    connecting: "Connecting",
    live: "Live",
    reconnecting: `Reconnecting (attempt ${attempt})`,
    polling: "Polling",
    paused: "Paused",
    stopped: "Stopped",
  };
  element.dataset.state = state;
  element.querySelector(".connection-label").textContent = labels[state] ?? state;
  let detail = "";
  if (state === "polling") detail = `every ${config.pollInterval} s; live feed retry ${retryIn(nextRetryAt)}`;
  else if (state === "reconnecting") detail = retryIn(nextRetryAt);
  element.querySelector(".connection-detail").textContent = detail;
}

function retryIn(at) {
  if (at === null) return "";
  const seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
  return seconds ? `in ${seconds} s` : "now";
}

function renderUpdated() {
  const element = byId("updated");
  if (lastDataAt === null) {
    element.textContent = "Waiting for data…";
    return;
  }
  const via = lastVia === "rest" ? "REST" : "live feed";
  element.textContent = `Updated ${ago(Date.now() - lastDataAt)} via ${via}`;
  element.title = current ? `Status computed at ${current.timestamp}` : "";
}

function tick() {
  renderUpdated();
  renderOverall();
  if (connection.state === "polling" || connection.state === "reconnecting") renderConnection();
  refreshTimes(document.body);
}

// --- notices ----------------------------------------------------------------------------------
function announceCritical(alert) {
  const title = `Critical alert: ${alert.source ?? "all sources"}`;
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(title, { body: alert.summary, tag: `alert-${alert.id}` });
    return;
  }
  toast(title, alert.summary);
}

function toast(title, text) {
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  const element = h("div", { class: "toast", role: "alert", "data-testid": "toast" }, h("strong", {}, title), h("p", {}, text), close);
  close.addEventListener("click", () => element.remove());
  byId("toasts").append(element);
  setTimeout(() => element.remove(), 30000);
}

function showBanner(text, link) {
  const banner = byId("banner");
  setChildren(banner, text, link && [" ", h("a", { href: link }, "Log in")]);
  banner.hidden = false;
}

function hideBanner() {
  byId("banner").hidden = true;
}

function setupNotifications() {
  const button = byId("enable-notifications");
  if (!("Notification" in window) || Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await Notification.requestPermission();
    button.hidden = Notification.permission === "default";
  });
}

// --- lifecycle --------------------------------------------------------------------------------
function start() {
  if (ticker === null) ticker = setInterval(tick, 1000);
  client.start();
}

function pause(stop) {
  clearInterval(ticker);
  ticker = null;
  if (stop) client.stop();
  else client.pause();
}

function refreshNow() {
  client.refresh();
  trends.refresh();
}

byId("refresh").addEventListener("click", refreshNow);
for (const button of document.querySelectorAll("[data-range]")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll("[data-range]")) other.setAttribute("aria-pressed", String(other === button));
    trends.setRange(button.dataset.range);
  });
}
// A hidden tab keeps no socket or timer; coming back reconnects and resumes from the last seq.
document.addEventListener("visibilitychange", () => (document.hidden ? pause(false) : start()));
window.addEventListener("pagehide", () => pause(true));
window.addEventListener("pageshow", (event) => {
  if (event.persisted) start();
});
window.addEventListener("online", () => client.retryNow());

setupNotifications();
renderConnection();
if (canRead) {
  if (!document.hidden) start();
} else {
  showBanner("Log in to see the pipeline status.", config.loginUrl);
  byId("connection").hidden = true;
}

// Operators: prove paging works. The server posts a marked test notification and reports the receiver's answer.
const testButton = byId("send-test-notification");
if (testButton) {
  const testResult = byId("test-notification-result");
  testButton.addEventListener("click", async () => {
    testButton.disabled = true;
    testResult.textContent = "Sending…";
    try {
      const r = await postJson(testButton.dataset.url, {}, config.csrfCookieName);
      const ms = `${Math.round(r.elapsed_ms)} ms`;
      const where = r.url_host ? ` (${r.url_host})` : "";
      if (r.ok) testResult.textContent = `Delivered${where}: HTTP ${r.status_code} in ${ms}.`;
      else if (r.status_code !== null) testResult.textContent = `Failed${where}: HTTP ${r.status_code} in ${ms}: ${r.error}`;
      else testResult.textContent = `Failed${where}: ${r.error}`;
    } catch (error) {
      testResult.textContent = `Could not send: ${error.message}`;
    } finally {
      testButton.disabled = false;
    }
  });
}

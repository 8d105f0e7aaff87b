/** Formatting and DOM helpers for the dashboard. Data only ever reaches the page as text (textContent). */

export const STATUS_LABELS = {
  healthy: "Healthy",
  degraded: "Degraded",
  critical: "Critical",
  no_data: "No data",
  stale: "Stale",
  unknown: "Unknown",
};

export const SEVERITY_LABELS = { critical: "Critical", high: "High", medium: "Medium" };

const numbers = new Intl.NumberFormat("en-US");

/** Create an element: h("td", {class: "num", dataset: {time: iso}}, "text", childNode). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  return setChildren(element, ...children);
}

/** Replace an element's children; arrays are flattened and null, undefined and false are skipped. */
export function setChildren(element, ...children) {
  const nodes = children
    .flat(Infinity)
    .filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : String(child)));
  element.replaceChildren(...nodes);
  return element;
}

/** A status badge: a shape and a word, never colour alone. */
export function badge(status, label = STATUS_LABELS[status] ?? status, size = "small") {
  return h(
    "span",
    { class: `badge badge-${size}`, dataset: { status } },
    h("span", { class: "shape", "aria-hidden": "true" }),
    h("span", { class: "badge-text" }, label),
  );
}

export function setBadge(element, status, label = STATUS_LABELS[status] ?? status) {
  element.dataset.status = status;
  element.querySelector(".badge-text").textContent = label;
}

/** A rate with one decimal, as the API rounds it; a dash when nothing was attempted (0.0 would mislead). */
export function formatRate(rate, attempts) {
  if (rate === null || rate === undefined || !attempts) return "—";
  return `${Number(rate).toFixed(1)}%`;
}

export function formatCount(value) {
  return value === null || value === undefined ? "—" : numbers.format(value);
}

export function parseTime(iso) {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(ms) ? ms : null;
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function ago(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

export function duration(ms) {
  return ago(ms).replace(" ago", "");
}

/** An element whose text is "… ago" and stays current: the ticker rewrites every [data-time]. */
export function timeAgo(iso, fallback = "never") {
  const at = parseTime(iso);
  if (at === null) return h("span", { class: "muted" }, fallback);
  return h("time", { datetime: iso, title: iso, dataset: { time: iso } }, ago(Date.now() - at));
}

export function refreshTimes(root, now = Date.now()) {
  for (const element of root.querySelectorAll("[data-time]")) {
    const at = parseTime(element.dataset.time);
    if (at !== null) element.textContent = ago(now - at);
  }
}

/** Read a cookie by name (the CSRF token for POSTs). */
export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** GET JSON; throws an Error carrying `status` (0 when the server did not answer). */
export async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  } catch {
    throw Object.assign(new Error("The server did not answer."), { status: 0 });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw Object.assign(new Error(body?.detail ?? `HTTP ${response.status}`), { status: response.status, body });
  }
  return body;
}

/** POST JSON with the CSRF token of the session. */
export async function postJson(url, data, csrfCookieName) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": cookie(csrfCookieName) },
      body: JSON.stringify(data),
    });
  } catch {
    throw Object.assign(new Error("The server did not answer."), { status: 0 });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw Object.assign(new Error(body?.detail ?? `HTTP ${response.status}`), { status: response.status, body });
  }
  return body;
}

/**
 * The live feed connection (docs/protocol.md, docs/dashboard.md): one WebSocket, resumed after every drop,
 * and REST polling while the socket stays down. It renders nothing; it reports status documents, alerts
 * frames and its own state through callbacks.
 */

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 30000;
// A single refused connect is usually a restart; three in a row mean the feed is really away.
export const POLL_AFTER_FAILURES = 3;
// A handshake gets at least this long even when the broadcast interval is short.
const MIN_CONNECT_TIMEOUT_MS = 5000;
const CLOSE_RECONNECT = 4000;
const CONNECTING = 0;
const OPEN = 1;
const STATUS_TOPIC = "status";
const ALERTS_TOPIC = "alerts";
const noop = () => {};

/** Delay before reconnect attempt `attempt` (1, 2, ...): doubling from 1 s, capped at 30 s, with jitter. */
export function backoffDelay(attempt, random = Math.random) {
  const step = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  // Half fixed, half random: clients dropped together spread out, and none retries sooner than half a step.
  return step / 2 + random() * (step / 2);
}

/** The socket URL: the configured base, or the page's own host with ws: on http and wss: on https. */
export function feedUrl({ base, path, location }) {
  if (base) return base.replace(/\/+$/, "") + path;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class FeedClient {
  /**
   * @param {object} o
   * @param {string} o.url          socket URL without query
   * @param {string} o.statusUrl    REST status document, polled while the socket is down
   * @param {number} o.heartbeatMs  silence after which an open socket counts as dead
   * @param {number} o.pollMs       REST poll interval
   * @param {Function} [o.getTicket] async () => ticket, when the feed needs one (public read off)
   * @param {Function} [o.onStatus]  (document, {via: "socket" | "rest"})
   * @param {Function} [o.onAlerts]  (frame) for every new frame of the alerts topic
   * @param {Function} [o.onStale]   (data of a `status_stale` frame) the server says the status is not current
   * @param {Function} [o.onResync]  (topic) the client dropped its position on `topic`
   * @param {Function} [o.onState]   ({state, attempt, polling, nextRetryAt})
   * @param {Function} [o.onRestError] (httpStatus or 0)
   */
  constructor(o) {
    this.url = o.url;
    this.statusUrl = o.statusUrl;
    this.heartbeatMs = o.heartbeatMs;
    this.pollMs = o.pollMs;
    this.getTicket = o.getTicket ?? null;
    this.onStatus = o.onStatus ?? noop;
    this.onAlerts = o.onAlerts ?? noop;
    this.onStale = o.onStale ?? noop;
    this.onResync = o.onResync ?? noop;
    this.onState = o.onState ?? noop;
    this.onRestError = o.onRestError ?? noop;
    this.WebSocket = o.WebSocketImpl ?? globalThis.WebSocket;
    this.fetch = o.fetchImpl ?? globalThis.fetch.bind(globalThis);
    this.random = o.random ?? Math.random;
    this.topics = new Map(); // topic -> {epoch, seq} of the last frame accepted
    this.failures = 0;
    this.polling = false;
    this.active = false;
    this.ws = null;
    this.opened = false;
    this.nextRetryAt = null;
    this.timers = { reconnect: null, heartbeat: null, poll: null };
    this.state = "idle";
  }

  start() {
    if (this.active) return;
    this.active = true;
    this.failures = 0;
    this._setState("connecting");
    this._connect();
  }

  /** Tab hidden: drop the socket and every timer; `resume` reconnects (with the last seq). */
  pause() {
    this._shutdown("paused");
  }

  resume() {
    this.start();
  }

  /** Page closed: like pause, for good unless the page comes back from the back/forward cache. */
  stop() {
    this._shutdown("stopped");
  }

  /** Retry the socket now instead of waiting out the backoff (manual refresh, browser back online). */
  retryNow() {
    if (this.active && this.ws === null) this._connect();
  }

  /** Fetch the REST document once, whatever the socket does; resolves to whether it arrived. */
  refresh() {
    this.retryNow();
    return this._fetchStatus();
  }

  // --- socket ---------------------------------------------------------------------------------
  async _connect() {
    this._clearTimer("reconnect");
    if (!this.active || this.ws !== null) return;
    const params = new URLSearchParams();
    const status = this.topics.get(STATUS_TOPIC);
    if (status) {
      // Resume on the URL: the server replays what was missed (or resyncs) instead of a snapshot.
      params.set("since_seq", String(status.seq));
      params.set("epoch", status.epoch);
    }
    const pending = {};
    this.ws = pending; // a placeholder, so that nothing else connects while a ticket is on its way
    if (this.getTicket) {
      let ticket;
      try {
        ticket = await this.getTicket();
      } catch {
        ticket = null;
      }
      if (this.ws !== pending) return; // paused or stopped meanwhile
      if (!ticket) {
        this.ws = null;
        this._lost(null);
        return;
      }
      params.set("ticket", ticket);
    }
    const query = params.toString();
    let ws;
    try {
      ws = new this.WebSocket(query ? `${this.url}?${query}` : this.url);
    } catch {
      this.ws = null; // a malformed URL (DASHBOARD_WS_BASE_URL) fails like a refused connection
      this._lost(null);
      return;
    }
    this.ws = ws;
    this.opened = false;
    ws.onopen = () => this._opened(ws);
    ws.onmessage = (event) => this._message(ws, event);
    ws.onclose = (event) => this._closed(ws, event.code);
    this._setTimer("heartbeat", () => this._dead(ws), Math.max(this.heartbeatMs, MIN_CONNECT_TIMEOUT_MS));
  }

  _opened(ws) {
    if (ws !== this.ws) return;
    this.opened = true;
    this._stopPolling();
    this.nextRetryAt = null;
    this._setTimer("heartbeat", () => this._dead(ws), this.heartbeatMs);
    ws.send(JSON.stringify({ type: "subscribe", topic: ALERTS_TOPIC }));
    this._setState("live");
  }

  _message(ws, event) {
    if (ws !== this.ws) return;
    this._setTimer("heartbeat", () => this._dead(ws), this.heartbeatMs);
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "resync") {
      // History cannot fill the gap: forget the position; the next frame on the topic is a snapshot.
      const topic = frame.data?.topic;
      this.topics.delete(topic);
      this.onResync(topic);
      return;
    }
    if (frame.type === "status_stale") {
      // Only about the status this client has: a notice older than it (a crossing) is void.
      const last = this.topics.get(STATUS_TOPIC);
      const lastSeq = frame.data?.last_seq;
      if (last && last.epoch === frame.epoch && typeof lastSeq === "number" && lastSeq < last.seq) return;
      this.onStale(frame.data ?? {});
      return;
    }
    if (typeof frame.topic !== "string" || !this._accept(frame)) return; // direct replies, duplicates
    this.failures = 0; // new data flows: the connection is good, not merely open
    if (frame.topic === STATUS_TOPIC) this.onStatus(frame.data, { via: "socket", seq: frame.seq });
    else if (frame.topic === ALERTS_TOPIC) this.onAlerts(frame);
  }

  /** Keep a frame only if it is newer than the last one on its topic (same epoch) or starts a new epoch. */
  _accept(frame) {
    const last = this.topics.get(frame.topic);
    if (last && last.epoch === frame.epoch && frame.seq <= last.seq) return false;
    this.topics.set(frame.topic, { epoch: frame.epoch, seq: frame.seq });
    return true;
  }

  _closed(ws, code) {
    if (ws === this.ws) this._lost(code);
  }

  _dead(ws) {
    if (ws === this.ws) this._lost(null);
  }

  _lost(code) {
    const wasOpen = this.opened;
    this._retire();
    if (!this.active) return;
    if (code === CLOSE_RECONNECT && wasOpen) {
      this._connect(); // a planned recycle (connection age, drain): come back at once and resume
      return;
    }
    this.failures += 1;
    if (this.failures >= POLL_AFTER_FAILURES) this._startPolling();
    const delay = backoffDelay(this.failures, this.random);
    this.nextRetryAt = Date.now() + delay;
    this._setTimer("reconnect", () => this._connect(), delay);
    this._setState(this.polling ? "polling" : "reconnecting");
  }

  /** Forget the current socket; it may still be connecting, open or half-dead. */
  _retire() {
    const ws = this.ws;
    this.ws = null;
    this.opened = false;
    this._clearTimer("heartbeat");
    if (!ws || typeof ws.close !== "function") return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws.readyState === CONNECTING) {
      // Closing a socket mid-handshake makes the browser log an error; close it once it opens instead.
      ws.onopen = () => ws.close(1000);
    } else if (ws.readyState === OPEN) {
      ws.close(1000);
    }
  }

  // --- polling --------------------------------------------------------------------------------
  _startPolling() {
    if (this.polling) return;
    this.polling = true;
    this._poll();
  }

  async _poll() {
    this._clearTimer("poll");
    if (!this.polling) return;
    await this._fetchStatus();
    if (this.polling) this._setTimer("poll", () => this._poll(), this.pollMs);
  }

  _stopPolling() {
    this.polling = false;
    this._clearTimer("poll");
  }

  async _fetchStatus() {
    let response;
    try {
      response = await this.fetch(this.statusUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      this.onRestError(0);
      return false;
    }
    if (!response.ok) {
      this.onRestError(response.status);
      return false;
    }
    let document;
    try {
      document = await response.json();
    } catch {
      this.onRestError(response.status);
      return false;
    }
    this.onStatus(document, { via: "rest" });
    return true;
  }

  // --- bookkeeping ----------------------------------------------------------------------------
  _shutdown(state) {
    this.active = false;
    this._stopPolling();
    this._clearTimer("reconnect");
    this._retire();
    this.nextRetryAt = null;
    this._setState(state);
  }

  _setTimer(name, callback, ms) {
    this._clearTimer(name);
    this.timers[name] = setTimeout(callback, ms);
  }

  _clearTimer(name) {
    if (this.timers[name] !== null) clearTimeout(this.timers[name]);
    this.timers[name] = null;
  }

  _setState(state) {
    this.state = state;
    this.onState({ state, attempt: this.failures, polling: this.polling, nextRetryAt: this.nextRetryAt });
  }
}

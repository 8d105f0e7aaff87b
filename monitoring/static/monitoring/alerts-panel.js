/**
 * Active alerts by severity, kept from two sources: full lists (the status document's `alerts`, the
 * alerts topic's `alerts_update`) and single changes (`alert_fired` ... `alert_resolved`). Lists and
 * changes can cross on the wire (a status computed just before an acknowledgement may arrive after it),
 * so an alert never moves back: acknowledged stays acknowledged and resolved stays gone.
 */

import { SEVERITY_LABELS, badge, h, postJson, setChildren, timeAgo } from "./format.js";

const SEVERITIES = ["critical", "high", "medium"];
const STATE_RANK = { firing: 0, acknowledged: 1, resolved: 2 };
const STATE_LABELS = { firing: "Firing", acknowledged: "Acknowledged", resolved: "Resolved" };

function newer(existing, incoming) {
  if (!existing) return incoming;
  const later = Date.parse(incoming.last_seen) >= Date.parse(existing.last_seen) ? incoming : existing;
  if (STATE_RANK[existing.state] > STATE_RANK[later.state]) {
    const { state, acknowledged_by, acknowledged_at, acknowledge_comment } = existing;
    return { ...later, state, acknowledged_by, acknowledged_at, acknowledge_comment };
  }
  return later;
}

export class AlertsPanel {
  /**
   * @param {object} o
   * @param {HTMLElement} o.list     container of the severity groups
   * @param {HTMLElement} o.count    active-alert counter
   * @param {string} o.alertsUrl     /api/v1/monitoring/alerts
   * @param {boolean} o.canAct       logged in: acknowledge / resolve buttons
   * @param {string} o.csrfCookieName
   * @param {Function} o.onNewCritical (alert) a critical alert appeared after the first list
   */
  constructor(o) {
    Object.assign(this, o);
    this.alerts = new Map(); // id -> alert
    this.resolved = new Set(); // ids that resolved: terminal, never shown again
    this.critical = new Set(); // ids already announced as critical
    this.baseline = false; // alerts present at page load are not "new"
    this.items = new Map(); // id -> {element, key}
    this.groups = this._buildGroups();
    this.list.addEventListener("click", (event) => this._onClick(event));
  }

  /** A full list of the active alerts. */
  replaceAll(list) {
    const next = new Map();
    for (const alert of list) {
      if (!this.resolved.has(alert.id)) next.set(alert.id, newer(this.alerts.get(alert.id), alert));
    }
    this.alerts = next;
    this._changed();
  }

  /** One alerts-topic frame. */
  applyFrame(frame) {
    if (frame.type === "alerts_update") this.replaceAll(frame.data.alerts ?? []);
    else if (frame.type === "alert_resolved") this.upsert({ ...frame.data, state: "resolved" });
    else if (frame.type.startsWith("alert_")) this.upsert(frame.data);
  }

  upsert(alert) {
    if (alert.state === "resolved") {
      this.resolved.add(alert.id);
      this.alerts.delete(alert.id);
    } else if (!this.resolved.has(alert.id)) {
      this.alerts.set(alert.id, newer(this.alerts.get(alert.id), alert));
    }
    this._changed();
  }

  _changed() {
    for (const alert of this.alerts.values()) {
      const loud = alert.severity === "critical" && !alert.silenced && !alert.inhibited && alert.state === "firing";
      if (loud && !this.critical.has(alert.id)) {
        this.critical.add(alert.id);
        if (this.baseline) this.onNewCritical(alert);
      }
    }
    this.baseline = true;
    this._render();
  }

  // --- rendering ------------------------------------------------------------------------------
  _buildGroups() {
    const groups = {};
    this.empty = h("p", { class: "empty" }, "No active alerts.");
    const nodes = SEVERITIES.map((severity) => {
      const heading = h("h3", { class: "group-title" }, badge(severity, SEVERITY_LABELS[severity]), " ", h("span", { class: "count" }, "0"));
      const items = h("div", { class: "group-items" });
      const section = h("section", { class: "alert-group", dataset: { severity }, hidden: true }, heading, items);
      groups[severity] = { section, items, count: heading.querySelector(".count") };
      return section;
    });
    this.list.replaceChildren(this.empty, ...nodes);
    return groups;
  }

  _render() {
    for (const [id, item] of this.items) {
      if (!this.alerts.has(id)) {
        item.element.remove();
        this.items.delete(id);
      }
    }
    const ordered = [...this.alerts.values()].sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen));
    for (const severity of SEVERITIES) {
      const group = this.groups[severity];
      const members = ordered.filter((a) => a.severity === severity);
      const elements = members.map((alert) => this._item(alert));
      // Re-append only when the order changed: moving a node drops the focus of a comment being typed.
      const current = [...group.items.children];
      if (current.length !== elements.length || current.some((el, i) => el !== elements[i])) {
        group.items.append(...elements);
      }
      group.count.textContent = String(members.length);
      group.section.hidden = members.length === 0;
    }
    this.empty.hidden = this.alerts.size > 0;
    this.count.textContent = String(this.alerts.size);
  }

  _item(alert) {
    const key = JSON.stringify(alert);
    let item = this.items.get(alert.id);
    if (item && item.key === key) return item.element;
    if (!item) {
      item = { element: this._skeleton(alert), key: null };
      this.items.set(alert.id, item);
    }
    item.key = key;
    this._fill(item.element, alert);
    return item.element;
  }

  _skeleton(alert) {
    const actions = this.canAct
      ? h(
          "form",
          { class: "alert-actions", "data-testid": "alert-actions" },
          h(
            "label",
            {},
            h("span", { class: "visually-hidden" }, `Comment for alert ${alert.id}`),
            h("input", { type: "text", name: "comment", maxlength: "2000", placeholder: "Comment (optional)", autocomplete: "off" }),
          ),
          h("button", { type: "button", class: "button", dataset: { action: "acknowledge" } }, "Acknowledge"),
          h("button", { type: "button", class: "button button-quiet", dataset: { action: "resolve" } }, "Resolve"),
          h("span", { class: "alert-feedback", role: "status" }),
        )
      : null;
    return h(
      "article",
      { class: "alert", dataset: { alertId: String(alert.id) }, "data-testid": "alert" },
      h("div", { class: "alert-head" }, h("span", { class: "alert-badges" }), h("h4", { class: "alert-summary" })),
      h("p", { class: "alert-meta" }),
      h("p", { class: "alert-ack" }),
      actions,
    );
  }

  _fill(element, alert) {
    element.dataset.severity = alert.severity;
    element.dataset.state = alert.state;
    setChildren(
      element.querySelector(".alert-badges"),
      badge(alert.severity, SEVERITY_LABELS[alert.severity]),
      " ",
      h("span", { class: "state", dataset: { state: alert.state }, "data-testid": "alert-state" }, STATE_LABELS[alert.state]),
      alert.silenced ? [" ", h("span", { class: "flag" }, "Silenced")] : null,
      alert.inhibited ? [" ", h("span", { class: "flag" }, "Inhibited")] : null,
    );
    element.querySelector(".alert-summary").textContent = alert.summary;
    setChildren(
      element.querySelector(".alert-meta"),
      `${alert.rule} · ${alert.source ?? "all sources"} · since `,
      timeAgo(alert.first_seen),
      ` · seen ${alert.occurrences}× · last `,
      timeAgo(alert.last_seen),
    );
    const ack = element.querySelector(".alert-ack");
    ack.hidden = alert.state !== "acknowledged";
    if (alert.state === "acknowledged") {
      const comment = alert.acknowledge_comment ? `: “${alert.acknowledge_comment}”` : "";
      setChildren(ack, `Acknowledged by ${alert.acknowledged_by ?? "someone"} `, timeAgo(alert.acknowledged_at), comment);
    }
    const acknowledge = element.querySelector('[data-action="acknowledge"]');
    if (acknowledge) acknowledge.hidden = alert.state !== "firing";
  }

  // --- actions --------------------------------------------------------------------------------
  async _onClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const element = button.closest("[data-alert-id]");
    const id = Number(element.dataset.alertId);
    const action = button.dataset.action;
    const input = element.querySelector('input[name="comment"]');
    const feedback = element.querySelector(".alert-feedback");
    const buttons = element.querySelectorAll("button[data-action]");
    buttons.forEach((b) => (b.disabled = true));
    feedback.textContent = action === "acknowledge" ? "Acknowledging…" : "Resolving…";
    try {
      const alert = await postJson(`${this.alertsUrl}/${id}/${action}`, { comment: input.value }, this.csrfCookieName);
      input.value = "";
      feedback.textContent = "";
      this.upsert(alert);
    } catch (error) {
      feedback.textContent = error.status === 403 ? "Log in again to change alerts." : `Failed: ${error.message}`;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }
}

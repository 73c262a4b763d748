// asterisk-cb panel: times in the viewer's zone, "pick all", and the supervisor's live rows.
// No framework and no build step; every page works without this script, only less conveniently.
"use strict";

function localTimes(root) {
  const format = new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "short" });
  for (const node of root.querySelectorAll("time[data-viewer]")) {
    node.textContent = format.format(new Date(node.getAttribute("datetime")));
    node.title = "your time; the contact's is beside it";
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf"]');
  return meta ? meta.content : "";
}

function pickAll() {
  const all = document.getElementById("pick-all");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll('#live input[name="id"]')) box.checked = all.checked;
  });
}

// The API's event stream names each event by its kind; every kind changes a row.
const KINDS = ["created", "edited", "rescheduled", "cancelled", "held", "outside_hours", "agent_unavailable",
  "agent_ringing", "agent_answered", "agent_missed", "contact_ringing", "contact_answered", "queue_entered",
  "member_answered", "attempt_failed", "call_lost", "resumed", "failover", "completed", "exhausted", "expired"];

function live() {
  const table = document.getElementById("live");
  const status = document.getElementById("live-status");
  if (!table || !status) return;
  let since = "";
  let unseen = 0;
  async function refresh(callbackId) {
    const row = document.getElementById("cb-" + callbackId);
    if (!row) {
      unseen += 1;
      status.textContent = `Live: ${unseen} new or changed callback(s) not listed: reload to see them.`;
      return;
    }
    const response = await fetch("/panel/rows/" + encodeURIComponent(callbackId), { credentials: "same-origin" });
    if (!response.ok) return;
    const holder = document.createElement("tbody");
    holder.innerHTML = (await response.text()).trim();
    const fresh = holder.querySelector("tr");
    if (!fresh) return;
    const picked = row.querySelector('input[name="id"]');
    const box = fresh.querySelector('input[name="id"]');
    if (picked && box) box.checked = picked.checked;
    localTimes(fresh);
    row.replaceWith(fresh);  // same cells, same fixed columns: nothing moves around it
  }
  async function connect() {
    const response = await fetch("/panel/ticket", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() } });
    if (!response.ok) {
      status.textContent = "Live updates stopped: reload the page (your session may have ended).";
      return;
    }
    const { ticket } = await response.json();
    const query = new URLSearchParams({ ticket });
    if (since) query.set("since", since);
    const source = new EventSource(table.dataset.events + "?" + query.toString());
    source.onopen = () => { status.textContent = "Live updates: on"; };
    const handle = (message) => {
      since = message.lastEventId || since;
      refresh(JSON.parse(message.data).callback_id);
    };
    for (const kind of KINDS) source.addEventListener(kind, handle);
    source.addEventListener("reset", () => { status.textContent = "Live updates: missed some: reload the page."; });
    source.onerror = () => {  // a ticket is single-use: reconnect with a new one, from the last event seen
      source.close();
      status.textContent = "Live updates: reconnecting…";
      setTimeout(connect, 2000);
    };
  }
  connect();
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  pickAll();
  live();
});

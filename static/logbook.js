/* The logbook: practice entries and the quick log, goals, repertoire status, the practice-time
 * chart and streak. Reads and writes the IndexedDB replica (store.js), which syncs with the
 * server; a `sync:poke` from another device of the user pulls its change without a reload.
 */

import { LogbookReplica } from "./store.js";
import { api, randomHex } from "./session.js";
import { S, on } from "./state.js";
import { $, el, guard, svg, toast } from "./ui.js";

// -- pure helpers (tested in Node) ---------------------------------------------------------

const MAX_LOG_MINUTES = 7 * 24 * 60; // server/services/logbook.py MAX_DURATION_S

/**
 * The body of POST /api/practice/quick-log (server/rest/logbook.py): activity_type and
 * duration_seconds are required; blank optional fields are left out rather than sent as "".
 */
export function quickLogBody({ minutes, activity, instrument, work, notes }, id) {
  const m = Number(minutes);
  if (!Number.isFinite(m) || m <= 0 || m > MAX_LOG_MINUTES) {
    throw new RangeError(`minutes must be more than 0 and at most ${MAX_LOG_MINUTES}`);
  }
  const body = { activity_type: activity || "other", duration_seconds: Math.round(m * 60) };
  if (id) body.id = id;
  const text = { instrument, work_title: work, notes };
  for (const [name, value] of Object.entries(text)) {
    const trimmed = String(value === null || value === undefined ? "" : value).trim();
    if (trimmed) body[name] = trimmed;
  }
  return body;
}

/**
 * The fields of a quick log as a sync mutation (a `logbook_entry` put): the REST body's fields
 * plus source "quick_log" and start_time = end − duration, `endMs` on the server clock (the
 * device's clock corrected by the clock sync; it is data, the server orders by version).
 */
export function quickLogFields(form, endMs) {
  const body = quickLogBody(form);
  const start = new Date(endMs - body.duration_seconds * 1000).toISOString();
  return { ...body, source: "quick_log", start_time: start };
}

/** A practice duration: "45 s", "25 min", "1 h 05 min". */
export function formatPracticeTime(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** The local calendar day "YYYY-MM-DD" of an ISO time (or Date), in `tzOffsetMin` (Date's sign). */
export function dayOf(time, tzOffsetMin = new Date(time).getTimezoneOffset()) {
  const d = new Date(new Date(time).getTime() - tzOffsetMin * 60000);
  return d.toISOString().slice(0, 10);
}

/**
 * Practice seconds per day for the `days` days ending on `today` ("YYYY-MM-DD"), oldest first:
 * [{day, seconds}]. Entries count on the local day they started.
 */
export function practiceByDay(entries, today, days = 14, tzOffsetMin) {
  const totals = new Map();
  for (const e of entries) {
    if (!e.start_time || !Number.isFinite(e.duration_seconds)) continue;
    const day = dayOf(e.start_time, tzOffsetMin);
    totals.set(day, (totals.get(day) || 0) + e.duration_seconds);
  }
  const out = [];
  const end = new Date(today + "T00:00:00Z");
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(end.getTime() - i * 86400000).toISOString().slice(0, 10);
    out.push({ day, seconds: totals.get(day) || 0 });
  }
  return out;
}

/**
 * The practice streak: consecutive days with practice ending today, or yesterday when nothing
 * is logged today yet (the streak is not broken before the day is over).
 */
export function practiceStreak(entries, today, tzOffsetMin) {
  const days = new Set(entries.filter((e) => e.start_time && e.duration_seconds > 0).map((e) => dayOf(e.start_time, tzOffsetMin)));
  let cursor = new Date(today + "T00:00:00Z").getTime();
  if (!days.has(today)) cursor -= 86400000;
  let streak = 0;
  while (days.has(new Date(cursor).toISOString().slice(0, 10))) {
    streak += 1;
    cursor -= 86400000;
  }
  return streak;
}

// -- the page ---------------------------------------------------------------------------------

const LIST_LIMIT = 20;
const RETRY_MS = 5000;
let replica = null;
let retryTimer = null;
export const logbook = { get replica() { return replica; } };

/** Open this user's replica, show it, then sync with the server. */
async function openFor(user) {
  if (replica) replica.close();
  replica = null;
  if (!user) return;
  const mine = new LogbookReplica(user.id);
  await mine.open();
  if (!S.user || S.user.id !== user.id) return mine.close();
  replica = mine;
  replica.onChange(() => render().catch(console.warn));
  await render();
  syncNow();
}

/** Sync when possible; while the outbox is not empty, retry every few seconds. */
export function syncNow() {
  if (!replica) return Promise.resolve();
  clearTimeout(retryTimer);
  const mine = replica;
  const run = mine.sync(api).then(
    () => setSyncStatus(),
    (err) => setSyncStatus(err),
  );
  return run.then(async () => {
    if (replica === mine && (await mine.outbox()).length) retryTimer = setTimeout(syncNow, RETRY_MS);
  });
}

async function setSyncStatus(err) {
  const waiting = replica ? (await replica.outbox()).length : 0;
  const box = $("sync-status");
  box.dataset.state = err ? "offline" : waiting ? "pending" : "synced";
  box.textContent = waiting ? `${waiting} change${waiting > 1 ? "s" : ""} waiting to sync${err ? " (offline)" : ""}` : err ? "offline" : "synced";
}

const todayLocal = () => dayOf(new Date());

const activityLabel = (type) => {
  const option = [...$("log-activity").options].find((o) => o.value === type);
  return option ? option.textContent : type;
};
const SOURCE_LABELS = { room: "room", quick_log: "quick log", timer: "timer", manual: "manual" };

async function render() {
  if (!replica) return;
  const entries = (await replica.rows("logbook_entry")).sort((a, b) => String(b.start_time).localeCompare(String(a.start_time)));
  $("log-empty").hidden = entries.length > 0;
  $("log-count").textContent = entries.length > LIST_LIMIT ? `newest ${LIST_LIMIT} of ${entries.length}` : "";
  $("log-list").replaceChildren(...entries.slice(0, LIST_LIMIT).map(logItem));
  renderChart(entries);
  const goals = (await replica.rows("goal")).sort((a, b) => String(a.created_at || "~").localeCompare(String(b.created_at || "~")));
  $("goal-list").replaceChildren(...goals.filter((g) => g.status !== "abandoned").map(goalItem));
  const items = (await replica.rows("repertoire_item")).sort((a, b) => String(a.work_title).localeCompare(String(b.work_title)));
  $("repertoire-list").replaceChildren(...items.map(repertoireItem));
  setSyncStatus();
}

function logItem(log) {
  const title = log.work_title || activityLabel(log.activity_type);
  const when = log.start_time ? new Date(log.start_time).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "—";
  const bits = [
    when,
    formatPracticeTime(log.duration_seconds),
    log.work_title ? activityLabel(log.activity_type) : null,
    log.part,
    log.instrument,
    log.accuracy_percentage !== null && log.accuracy_percentage !== undefined ? `accuracy ${Math.round(log.accuracy_percentage)}%` : null,
  ];
  return el(
    "li",
    { class: "log-entry", "data-source": log.source, "data-id": log.id, "data-pending": log.pending ? "true" : "false" },
    el("div", null, el("b", null, title), " ", el("span", { class: "badge" }, SOURCE_LABELS[log.source] || log.source || "log"),
      log.pending ? el("span", { class: "badge pending", title: "kept on this device; it syncs when the server is reachable" }, "not synced yet") : null),
    el("div", { class: "muted small" }, bits.filter(Boolean).join(" · ")),
    log.notes ? el("div", { class: "small log-notes" }, log.notes) : null,
  );
}

function renderChart(entries) {
  const days = practiceByDay(entries, todayLocal(), 14);
  const streak = practiceStreak(entries, todayLocal());
  const total = days.reduce((s, d) => s + d.seconds, 0);
  $("streak").textContent = `Streak: ${streak} day${streak === 1 ? "" : "s"} · last 14 days: ${formatPracticeTime(total)}`;
  const W = 420;
  const H = 90;
  const max = Math.max(1800, ...days.map((d) => d.seconds));
  const bw = W / days.length;
  $("practice-chart").replaceChildren(
    svg(
      "svg",
      { viewBox: `0 0 ${W} ${H + 14}`, class: "chart", role: "img", "aria-label": "Practice time per day, last 14 days" },
      days.map((d, i) => {
        const h = (d.seconds / max) * H;
        return svg("g", null,
          svg("rect", { x: i * bw + 2, y: H - h, width: bw - 4, height: Math.max(h, d.seconds ? 1 : 0), fill: "#17bebb" },
            svg("title", null, `${d.day}: ${formatPracticeTime(d.seconds)}`)),
          svg("text", { x: i * bw + bw / 2, y: H + 12, "text-anchor": "middle", "font-size": 9, fill: "#aaa" }, d.day.slice(8)));
      }),
    ),
  );
}

function goalItem(goal) {
  const done = goal.status === "completed";
  const label = `Goal done: ${goal.title}`;
  return el(
    "li",
    { "data-id": goal.id, class: done ? "done" : "" },
    el("label", { class: "inline" },
      el("input", { type: "checkbox", checked: done, "aria-label": label,
        onchange: guard((ev) => replica.write("goal", "put", goal.id, { status: ev.target.checked ? "completed" : "active", progress: ev.target.checked ? 100 : goal.progress || 0 }).then(syncNow)) }),
      " ", goal.title),
    goal.target_date ? el("span", { class: "muted small" }, ` by ${goal.target_date}`) : null,
    goal.pending ? el("span", { class: "badge pending" }, "not synced yet") : null,
  );
}

const REPERTOIRE_STATUSES = ["planned", "learning", "working", "polished", "performance_ready", "archived"];

function repertoireItem(item) {
  const select = el(
    "select",
    { "aria-label": `Status of ${item.work_title}`,
      onchange: guard((ev) => replica.write("repertoire_item", "put", item.id, { status: ev.target.value }).then(syncNow)) },
    ...REPERTOIRE_STATUSES.map((s) => el("option", { value: s, selected: s === item.status }, s.replace("_", " "))),
  );
  return el("li", { "data-id": item.id }, el("b", null, item.work_title), item.composer ? ` — ${item.composer} ` : " ", select,
    item.pending ? el("span", { class: "badge pending" }, "not synced yet") : null);
}

async function submitQuickLog() {
  const fields = quickLogFields(
    {
      minutes: $("log-minutes").value,
      activity: $("log-activity").value,
      instrument: $("log-instrument").value,
      work: $("log-work").value,
      notes: $("log-notes").value,
    },
    S.clock.toServer(Date.now()),
  );
  await replica.write("logbook_entry", "put", randomHex(32), fields);
  $("log-notes").value = "";
  $("log-work").value = "";
  localStorage.setItem("tutti.instrument", $("log-instrument").value.trim());
  toast(navigator.onLine ? "Practice logged." : "Practice logged on this device; it syncs when you are back online.");
  syncNow();
}

async function addGoal() {
  const fields = { title: $("goal-title").value.trim(), status: "active", progress: 0 };
  if ($("goal-date").value) fields.target_date = $("goal-date").value;
  await replica.write("goal", "put", randomHex(32), fields);
  $("goal-title").value = "";
  syncNow();
}

async function addRepertoire() {
  const fields = { work_title: $("rep-title").value.trim(), status: $("rep-status").value };
  if ($("rep-composer").value.trim()) fields.composer = $("rep-composer").value.trim();
  await replica.write("repertoire_item", "put", randomHex(32), fields);
  $("rep-title").value = "";
  $("rep-composer").value = "";
  syncNow();
}

export function initLogbook() {
  $("log-instrument").value = localStorage.getItem("tutti.instrument") || "";
  $("quick-log-form").addEventListener("submit", guard(submitQuickLog));
  $("goal-form").addEventListener("submit", guard(addGoal));
  $("repertoire-form").addEventListener("submit", guard(addRepertoire));
  $("refresh-logs").addEventListener("click", guard(syncNow));
  on("session:adopted", (auth, changedUser) => changedUser && openFor(auth.user).catch(console.warn));
  on("session:teardown", () => {
    if (replica) replica.close();
    replica = null;
  });
  on("sync:poke", () => syncNow());
  on("connected", () => syncNow());
  window.addEventListener("online", () => syncNow());
}

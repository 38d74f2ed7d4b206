/* The room: joining and leaving, the host's start/end, members with their latency and
 * presence, the live scores, the count-in display, and sending this player's notes.
 */

import { localMs } from "./clock.js";
import { call, isConnected } from "./connection.js";
import { noteOn, noteOff, resetClicks, silenceAll, beatGrid, beatsPerBar, unlock } from "./audio.js";
import { buildPiano, releaseAll, soundingAdd, soundingRemove, soundingClear } from "./input.js";
import { pitchName } from "./music.js";
import { presenceMetas } from "./presence.js";
import { clearRoll } from "./roll.js";
import { partnerLabel } from "./practice.js";
import { S, colorOf, emit, nameOf, on, serverNow } from "./state.js";
import { $, el, fmt, invalidate, onRender, pct, showError, toast } from "./ui.js";

const sentOn = new Set(); // pitches whose note-on went to the server

export const isHost = () => S.room && S.user && S.room.host === S.user.id;
const myRole = () => (S.joinedAs ? S.joinedAs.role : null);

export function phase() {
  if (S.finished) return "finished";
  if (!S.started) return S.room ? S.room.phase : "waiting";
  return serverNow() < S.started.start_at ? "counting_in" : "playing";
}

export async function joinRoom(roomId, role, part) {
  clearRoom();
  const joinedAs = { role, part: role === "player" ? part || null : null };
  const ack = await call("room:join", { room_id: roomId, ...joinedAs });
  S.roomId = roomId;
  S.joinedAs = joinedAs;
  history.replaceState(null, "", "#room=" + encodeURIComponent(roomId));
  onRoomState(ack.room);
  emit("view", "room");
  buildPiano();
  invalidate("all");
  $("room-name").focus();
}

async function rejoin() {
  // After a reconnect the server has taken us out: a player gets the same part back.
  const me = S.room && S.room.members.find((m) => m.user_id === S.user.id);
  const part = (me && me.part) || S.joinedAs.part;
  try {
    const ack = await call("room:join", { room_id: S.roomId, role: S.joinedAs.role, part });
    onRoomState(ack.room);
    toast("Reconnected to the room.");
  } catch (err) {
    if (err.code === "already_joined") return;
    showError(err);
    if (["unknown_room", "room_finished"].includes(err.code)) backToLobby();
  }
}

export async function leaveRoom() {
  if (S.roomId && !S.finished && isConnected()) {
    try {
      await call("room:leave", { room_id: S.roomId });
    } catch (err) {
      if (!["not_in_room", "unknown_room"].includes(err.code)) showError(err);
    }
  }
  backToLobby();
}

export function backToLobby() {
  clearRoom();
  history.replaceState(null, "", location.pathname);
  emit("view", "lobby");
}

export function clearRoom() {
  releaseAll();
  silenceAll();
  soundingClear();
  clearRoll();
  S.roomId = null;
  S.joinedAs = null;
  S.room = null;
  S.started = null;
  S.finished = null;
  S.scores = {};
  S.lastNote = {};
  S.transit = {};
  S.partner = null;
  S.passes = [];
  S.wait = {};
  sentOn.clear();
  for (const topic of [...S.presence.keys()]) if (topic.startsWith("room:")) S.presence.delete(topic);
  $("note-log").replaceChildren();
  $("results-card").hidden = true;
  resetClicks();
}

// -- room events ------------------------------------------------------------------------------

function onRoomState(state) {
  if (!state || state.room_id !== S.roomId) return;
  S.room = state;
  for (const m of state.members) {
    S.names[m.user_id] = m.display_name;
    colorOf(m.user_id);
  }
  if (state.start_at && !S.started) {
    S.started = { room_id: state.room_id, start_at: state.start_at, tempo_bpm: state.tempo_bpm };
    resetClicks();
  }
  emit("room:state:applied", state);
  invalidate("room", "members", "buttons", "hint");
}

function onPartnerNotes(data, events) {
  if (data.room_id !== S.roomId || (S.user && data.user_id === S.user.id)) return;
  const arrival = serverNow();
  const color = colorOf(data.user_id);
  for (const e of events) {
    if (e.type === "on") {
      soundingAdd(e.pitch, data.user_id, color);
      S.lastNote[data.user_id] = { pitch: e.pitch, delay: arrival - e.t };
    } else {
      soundingRemove(e.pitch, data.user_id);
    }
    logNote(data, e, arrival - e.t, color);
  }
  emit("partner-events", { userId: data.user_id, events, arrival });
  invalidate("members");
}

function logNote(data, e, delay, color) {
  const list = $("note-log");
  const at = new Date(e.t);
  const stamp = at.toLocaleTimeString([], { hour12: false }) + "." + String(at.getMilliseconds()).padStart(3, "0");
  list.prepend(
    el(
      "li",
      { class: e.type, "data-user": data.user_id },
      el("span", { class: "muted" }, stamp),
      " ",
      el("b", { style: `color:${color}` }, nameOf(data.user_id)),
      data.part ? el("span", { class: "muted" }, ` (${data.part})`) : null,
      ` ${pitchName(e.pitch)} ${e.type}`,
      e.type === "on" ? el("span", { class: "muted" }, ` v${e.velocity}`) : null,
      el("span", { class: "delay" }, ` ${delay >= 0 ? "+" : ""}${delay.toFixed(0)} ms`),
    ),
  );
  while (list.childElementCount > 40) list.lastElementChild.remove();
}

// -- sending notes ------------------------------------------------------------------------------

const canSend = () => S.roomId && myRole() === "player" && S.started && !S.finished && isConnected();
let outbox = [];
let flushQueued = false;

/** A note from this page (keyboard, mouse or MIDI). */
function onLocalNote({ type, pitch, velocity, stampLocalMs }) {
  if (!S.roomId) return;
  const me = S.user ? S.user.id : "me";
  if (type === "on") {
    soundingAdd(pitch, me, colorOf(me));
    if ($("sound-own").checked) noteOn("me:" + pitch, pitch, velocity, "triangle");
  } else {
    soundingRemove(pitch, me);
    noteOff("me:" + pitch);
  }
  const event = { type, pitch, velocity, t: S.clock.toServer(stampLocalMs) };
  emit("local-sent", event);
  if (!canSend()) return;
  if (type === "off" && !sentOn.has(pitch)) return;
  if (type === "on") sentOn.add(pitch);
  else sentOn.delete(pitch);
  outbox.push(event);
  if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flushNotes); // the events of one task (a MIDI chord) go out as one batch
  }
}

function flushNotes() {
  flushQueued = false;
  const events = outbox;
  outbox = [];
  const roomId = S.roomId;
  for (let i = 0; i < events.length; i += 64) {
    const chunk = events.slice(i, i + 64);
    const sent =
      chunk.length === 1
        ? call("note", { room_id: roomId, ...chunk[0] }, 5000)
        : call("notes", { room_id: roomId, events: chunk }, 5000);
    sent.catch((err) => {
      if (S.finished || roomId !== S.roomId) return; // the room ended under the note
      showError(err);
    });
  }
}

// -- rendering --------------------------------------------------------------------------------

function renderRoomHead() {
  const r = S.room;
  if (!r) return;
  $("room-name").textContent = r.name || "Room";
  const bits = [r.mode, r.piece_title, `${fmt(r.tempo_bpm, 0)} BPM`, `count-in ${r.count_in_beats}`, phase()];
  $("room-meta").textContent = bits.filter(Boolean).join(" · ");
  const link = `${location.origin}/#room=${r.room_id}`;
  $("room-link").href = link;
  $("room-link").textContent = link;
  $("room-link").dataset.url = link;
}

const STATUS_TEXT = { idle: "idle", practicing: "practicing", listening: "listening" };

function presenceCell(userId) {
  const state = S.roomId ? S.presence.get("room:" + S.roomId) : null;
  const metas = presenceMetas(state, userId);
  if (!metas.length) return el("td", { class: "muted", title: "no device of this member is in the room" }, "offline");
  const detail = metas.map((m) => `${m.device_name || m.device_id}: ${STATUS_TEXT[m.status] || m.status}`);
  return el(
    "td",
    { title: detail.join("\n") },
    el("span", { class: "dot", "data-status": metas[0].status }),
    " ",
    STATUS_TEXT[metas[0].status] || metas[0].status,
    metas.length > 1 ? el("span", { class: "muted" }, ` · ${metas.length} devices`) : null,
  );
}

function renderMembers() {
  const r = S.room;
  if (!r) return;
  $("members-table").querySelector("tbody").replaceChildren(
    ...r.members.map((m) => {
      const last = S.lastNote[m.user_id];
      return el(
        "tr",
        { "data-user": m.user_id, "data-bot": m.bot ? "true" : null },
        el("td", null, el("span", { class: "swatch", style: `background:${colorOf(m.user_id)}` }), r.host === m.user_id ? " ★" : ""),
        el("td", { title: r.host === m.user_id ? "host" : null }, nameOf(m.user_id), m.bot ? el("span", { class: "badge" }, "computer") : null),
        m.bot ? el("td", { class: "muted" }, partnerLabel(m)) : presenceCell(m.user_id),
        el("td", null, m.role),
        el("td", null, [m.part, m.instrument].filter(Boolean).join(" · ") || "—"),
        el("td", { class: "rtt" }, fmt(m.rtt_ms, 0, " ms")),
        el("td", null, last ? pitchName(last.pitch) : "—"),
        el("td", null, last ? fmt(last.delay, 0, " ms") : "—"),
      );
    }),
  );
}

function renderButtons() {
  const p = phase();
  $("start-btn").hidden = !(isHost() && p === "waiting");
  $("end-btn").hidden = !(isHost() && (p === "counting_in" || p === "playing"));
  $("leave-btn").hidden = !!S.finished;
}

function renderHint() {
  let text;
  if (myRole() === "spectator") text = "You are listening as a spectator: your keys sound only here.";
  else if (S.finished) text = "The room has finished.";
  else if (!S.started) text = "Warm up: your notes sound only here until the host starts.";
  else text = "You're on: every note you play goes to the room.";
  $("play-state").textContent = text;
}

const SCORE_COLUMNS = [
  ["Player", (u) => nameOf(u)],
  ["Part", (u, r) => r.part || "—"],
  ["Played", (u, r) => r.notes_played],
  ["Matched", (u, r) => `${r.notes_matched}/${r.notes_expected}`],
  ["Accuracy", (u, r) => pct(r.accuracy)],
  ["Judgements", (u, r) => judgements(r)],
  ["Timing", (u, r) => timing(r)],
  ["Tempo", (u, r) => fmt(r.tempo_bpm_played, 0, " BPM")],
];
const FREE_COLUMNS = [["Player", (u) => nameOf(u)], ["Notes played", (u, r) => r.notes_played]];

export function judgements(r) {
  if (!r.judgements) return "—";
  return ["perfect", "great", "good", "poor", "miss"].map((k) => `${k[0].toUpperCase()}${r.judgements[k] || 0}`).join(" ");
}

export function timing(r) {
  if (r.onset_mean_ms === null || r.onset_mean_ms === undefined) return "—";
  const sign = r.onset_mean_ms >= 0 ? "+" : "";
  return `${sign}${r.onset_mean_ms.toFixed(0)} ± ${fmt(r.onset_std_ms, 0)} ms`;
}

export function fillTable(table, columns, rows) {
  table.querySelector("thead").replaceChildren(el("tr", null, ...columns.map(([h]) => el("th", { scope: "col" }, h))));
  table.querySelector("tbody").replaceChildren(
    ...rows.map(([userId, result]) =>
      el(
        "tr",
        { "data-user": userId },
        ...columns.map(([, get], i) =>
          el("td", i === 0 ? { style: `border-left:4px solid ${colorOf(userId)}` } : null, get(userId, result)),
        ),
      ),
    ),
  );
}

function renderScore() {
  const rows = Object.entries(S.scores);
  $("score-empty").hidden = rows.length > 0;
  const free = S.room && S.room.mode === "free";
  fillTable($("score-table"), free ? FREE_COLUMNS : SCORE_COLUMNS, rows);
}

let lastBeatShown = null;

/** The count-in number and the bar:beat display, every frame. */
function tick() {
  requestAnimationFrame(tick);
  if (!S.roomId) return;
  const grid = beatGrid();
  const box = $("countin");
  if (!grid || S.finished) {
    box.textContent = S.finished ? "fin" : "—";
    $("beat-display").textContent = "";
    return;
  }
  const now = serverNow();
  const k = Math.floor((now - grid.first) / grid.beatMs);
  if (k === lastBeatShown) return;
  lastBeatShown = k;
  if (k < 0) box.textContent = "…";
  else if (k < grid.countIn) box.textContent = String(k + 1);
  else box.textContent = "♪";
  const beat = k - grid.countIn;
  const perBar = beatsPerBar();
  const loop = S.room.practice && S.room.practice.loop;
  const firstBar = loop ? loop.from_bar : 1; // a loop's pass starts at its first bar
  $("beat-display").textContent = beat >= 0 ? `bar ${Math.floor(beat / perBar) + firstBar} · beat ${(beat % perBar) + 1}` : "count-in";
  invalidate("buttons", "room", "hint");
}

export function initRoom() {
  on("room:state", onRoomState);
  on("room:started", (data) => {
    if (data.room_id !== S.roomId) return;
    S.started = data;
    resetClicks();
    invalidate("buttons", "hint");
  });
  on("score:update", (data) => {
    if (data.room_id !== S.roomId) return;
    S.scores[data.user_id] = data;
    invalidate("score");
  });
  on("room:finished", (data) => {
    if (data.room_id !== S.roomId) return;
    S.finished = data;
    releaseAll();
    soundingClear();
    emit("room:results", data);
    invalidate("buttons", "hint", "members", "room");
  });
  on("note", (d) => onPartnerNotes(d, [d]));
  on("notes", (d) => onPartnerNotes(d, d.events || []));
  on("local-note", onLocalNote);
  on("connected", () => S.roomId && S.joinedAs && !S.finished && rejoin());
  onRender("room", renderRoomHead);
  onRender("members", renderMembers);
  onRender("buttons", renderButtons);
  onRender("hint", renderHint);
  onRender("score", renderScore);
  $("start-btn").addEventListener("click", () => {
    unlock();
    call("room:start", { room_id: S.roomId }).catch((err) => {
      showError(err);
      emit("room:refused", err); // the practice card says why in plain words (wait_mode_solo…)
    });
  });
  $("end-btn").addEventListener("click", () => call("room:end", { room_id: S.roomId }).catch(showError));
  $("leave-btn").addEventListener("click", () => leaveRoom().catch(showError));
  $("copy-link").addEventListener("click", () =>
    navigator.clipboard.writeText($("room-link").dataset.url).then(() => toast("Invite link copied."), showError),
  );
  requestAnimationFrame(tick);
}

export { localMs };

/* Live cursors in the score, and the score in the results.
 *
 * While playing: one cursor per player, in the player's colour, on the player's staff at the
 * note the server matched last. Each score:update's `marks` ([[index, mark]], index into the
 * part's notes in score order) colour the engraved notes by judgement (perfect / great / good
 * / poor / miss / wrong_pitch). Between two updates (at most every 250 ms) a played note — the
 * own ones as sent, the partners' as relayed — moves the cursor on to the next unmarked note
 * of that pitch within two beats, and the notes it passes without a note are marked missed.
 * The own cursor turns the pages: the score scrolls to keep it in view.
 *
 * After the piece: the results card holds the score, every note of every part played
 * coloured by the final per-note list (room:finished results[user].notes); a note is a button
 * (its accessible name says pitch, beat and judgement; arrow keys move between them) that
 * shows its expected and played time and its deviation (ms).
 *
 * Cursor moves are written once per animation frame (transforms only, no layout in between).
 */

import { pitchName } from "./music.js";
import { score } from "./notation.js";
import { pieceNotes } from "./roll.js";
import { S, colorOf, nameOf, on } from "./state.js";
import { $, el, fmt } from "./ui.js";

const LOOKAHEAD_BEATS = 2;
const MATCHED = new Set(["perfect", "great", "good", "poor"]);

// user id -> {part: index, cursor: note index or -1, marks: Map(index -> mark)}
let players = new Map();
let roomId = null;
let notes = null; // the piece's notes (GET /api/pieces/{id}/notes)
const dirty = new Set(); // users whose cursor moved since the last frame
const stats = { moves: 0, marks: 0, frames: 0 };
export const cursors = { players: () => players, stats };

function partIndex(userId) {
  return S.room ? (S.room.parts || []).findIndex((p) => p.user_id === userId) : -1;
}

function player(userId) {
  let p = players.get(userId);
  if (!p) {
    const part = partIndex(userId);
    if (part < 0) return null;
    p = { part, cursor: -1, marks: new Map() };
    players.set(userId, p);
  }
  return p;
}

function reset() {
  players = new Map();
  dirty.clear();
  const view = $("notation");
  if (view) {
    for (const n of view.querySelectorAll("g.note[data-judgement]")) n.removeAttribute("data-judgement");
    for (const n of view.querySelectorAll("g.note[role=button]")) {
      for (const a of ["role", "tabindex", "aria-label"]) n.removeAttribute(a);
      n.classList.remove("chosen");
    }
    for (const c of view.querySelectorAll(".cursor")) c.remove();
  }
}

function element(p, i) {
  const part = score.parts[p.part];
  return part ? part[i] || null : null;
}

function paint(p, i) {
  const node = element(p, i);
  if (node) node.dataset.judgement = p.marks.get(i);
}

/** A score:update's marks: colour, and move the cursor to the latest matched note. */
function onMarks(data) {
  if (data.room_id !== S.roomId || !data.marks || !data.marks.length) return;
  const p = player(data.user_id);
  if (!p) return;
  for (const [i, mark] of data.marks) {
    p.marks.set(i, mark);
    paint(p, i);
    if (MATCHED.has(mark) && i > p.cursor) p.cursor = i;
    stats.marks++;
  }
  moved(data.user_id);
}

/** A played note-on: the cursor moves on to the next unmarked note of its pitch nearby. */
function onPlayed(userId, pitch) {
  const p = player(userId);
  const part = notes && p ? notes.parts[p.part] : null;
  if (!part || S.finished) return;
  const from = p.cursor;
  const here = from >= 0 ? part.notes[from][4] : part.notes.length ? part.notes[0][4] : 0;
  for (let k = from + 1; k < part.notes.length; k++) {
    const [, , notePitch, , beat] = part.notes[k];
    if (beat > here + LOOKAHEAD_BEATS) return;
    if (notePitch !== pitch || p.marks.has(k)) continue;
    // Notes strictly before this one's onset were passed without being played.
    for (let j = from + 1; j < k; j++) {
      if (!p.marks.has(j) && part.notes[j][4] < beat) {
        p.marks.set(j, "miss");
        paint(p, j);
      }
    }
    p.cursor = k;
    moved(userId);
    return;
  }
}

let framePending = false;
function moved(userId) {
  dirty.add(userId);
  if (!framePending) {
    framePending = true;
    requestAnimationFrame(drawCursors);
  }
}

/** Place the moved cursors: read every position first, then write (one layout per frame). */
function drawCursors() {
  framePending = false;
  const view = $("notation");
  if (!view || !score.ready) return;
  stats.frames++;
  const box = view.getBoundingClientRect();
  const places = [];
  for (const userId of dirty) {
    const p = players.get(userId);
    const node = p && p.cursor >= 0 ? element(p, p.cursor) : null;
    if (!node) continue;
    const head = (node.querySelector(".notehead") || node).getBoundingClientRect();
    const staff = (node.closest("g.staff") || node).getBoundingClientRect();
    places.push({
      userId,
      x: head.left + head.width / 2 - box.left + view.scrollLeft,
      y: staff.top - box.top + view.scrollTop - 6,
      h: staff.height + 12,
    });
  }
  dirty.clear();
  for (const { userId, x, y, h } of places) {
    let c = view.querySelector(`.cursor[data-user="${userId}"]`);
    if (!c) {
      c = el("div", { class: "cursor", "data-user": userId, "aria-hidden": "true" });
      c.style.setProperty("--cursor", colorOf(userId));
      view.append(c);
    }
    c.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px)`;
    c.style.height = `${h.toFixed(0)}px`;
    c.dataset.index = String(players.get(userId).cursor);
    stats.moves++;
    if (S.user && userId === S.user.id) turnPage(view, y, h);
  }
}

/** Keep the own cursor's system in view: scroll the score as a page turn. */
function turnPage(view, y, h) {
  const top = view.scrollTop;
  const bottom = top + view.clientHeight;
  if (y >= top && y + h <= bottom) return;
  view.scrollTo({ top: Math.max(0, y - view.clientHeight * 0.2), behavior: "smooth" });
}

/** The note map is (re)built: colour what is known and put the cursors back. */
function onReady() {
  if (S.finished) return paintResults(S.finished);
  for (const [userId, p] of players) {
    for (const i of p.marks.keys()) paint(p, i);
    moved(userId);
  }
}

// -- after the piece ---------------------------------------------------------------------

let resultNotes = []; // [{node, userId, part, note}] in the order the arrow keys walk

function detailText({ userId, partName, note }) {
  const what = note.played_pitch !== undefined ? `wrong pitch (played ${pitchName(note.played_pitch)})` : note.judgement;
  const head = `${nameOf(userId)}, ${partName}: ${pitchName(note.pitch)} at beat ${fmt(note.onset_beat + 1, 2)}`;
  if (note.played_ms === null || note.played_ms === undefined) {
    return `${head} — ${what}: expected at ${fmt(note.expected_ms, 0, " ms")}, not played`;
  }
  const dev = note.deviation_ms;
  const side = dev < 0 ? "early" : "late";
  return `${head} — ${what}: expected at ${fmt(note.expected_ms, 0, " ms")}, played at ${fmt(note.played_ms, 0, " ms")}, ${dev >= 0 ? "+" : ""}${fmt(dev, 0, " ms")} (${side})`;
}

function showDetail(entry) {
  $("note-detail").textContent = detailText(entry);
  for (const r of resultNotes) r.node.classList.toggle("chosen", r === entry);
}

/** Every note of every played part coloured by its final judgement, each a button. */
function paintResults(f) {
  const slot = $("results-score");
  const view = $("notation");
  if (!slot || !view || !f || !f.results || !score.pieceId) return;
  slot.hidden = false;
  if (view.parentElement !== slot) slot.append(view);
  view.setAttribute("role", "group");
  view.setAttribute("aria-label", "The score, every note coloured by its judgement");
  if (!score.ready) return; // onReady paints once the note map is there
  for (const c of view.querySelectorAll(".cursor")) c.remove();
  const partNames = (S.room && S.room.parts ? S.room.parts.map((p) => p.name) : []);
  resultNotes = [];
  const rows = Object.entries(f.results).sort(([a], [b]) => (b === (S.user && S.user.id)) - (a === (S.user && S.user.id)));
  for (const [userId, result] of rows) {
    const part = partNames.indexOf(result.part);
    if (part < 0 || !result.notes) continue;
    result.notes.forEach((note, i) => {
      const node = score.parts[part] && score.parts[part][i];
      if (!node) return;
      const judgement = note.played_pitch !== undefined ? "wrong_pitch" : note.judgement;
      node.dataset.judgement = judgement;
      const entry = { node, userId, partName: result.part, note };
      node.setAttribute("role", "button");
      node.setAttribute("tabindex", resultNotes.length ? "-1" : "0");
      node.setAttribute("aria-label", detailText(entry));
      resultNotes.push(entry);
    });
  }
  $("note-detail").textContent = resultNotes.length
    ? "Choose a note to see its expected and played time."
    : "No note of this score could be shown.";
}

function entryOf(target) {
  const node = target && target.closest ? target.closest("g.note[role=button]") : null;
  return node ? resultNotes.find((r) => r.node === node) : null;
}

function onResultKey(ev) {
  const entry = entryOf(ev.target);
  if (!entry) return;
  const k = resultNotes.indexOf(entry);
  let next = null;
  if (ev.key === "ArrowRight" || ev.key === "ArrowDown") next = resultNotes[Math.min(resultNotes.length - 1, k + 1)];
  else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") next = resultNotes[Math.max(0, k - 1)];
  else if (ev.key === "Home") next = resultNotes[0];
  else if (ev.key === "End") next = resultNotes[resultNotes.length - 1];
  else if (ev.key === "Enter" || ev.key === " ") {
    ev.preventDefault();
    ev.stopPropagation();
    return showDetail(entry);
  } else return;
  ev.preventDefault();
  ev.stopPropagation();
  entry.node.setAttribute("tabindex", "-1");
  next.node.setAttribute("tabindex", "0");
  next.node.focus();
  showDetail(next);
}

export function initCursors() {
  on("room:state:applied", (state) => {
    if (state.room_id !== roomId) {
      roomId = state.room_id;
      reset();
      notes = null;
      resultNotes = [];
      const view = $("notation");
      if (view) {
        view.setAttribute("role", "img");
        view.removeAttribute("aria-label");
      }
      if ($("results-score")) $("results-score").hidden = true;
    }
    if (state.piece_id) pieceNotes(state.piece_id).then((n) => state.room_id === roomId && (notes = n), console.warn);
    for (const [userId, p] of players) p.part = partIndex(userId);
  });
  on("score:update", onMarks);
  on("partner-events", ({ userId, events }) => {
    if (!S.started) return;
    for (const e of events) if (e.type === "on") onPlayed(userId, e.pitch);
  });
  on("local-sent", (e) => {
    const me = S.user && S.user.id;
    if (me && e.type === "on" && S.started && S.joinedAs && S.joinedAs.role === "player") onPlayed(me, e.pitch);
  });
  on("notation:ready", onReady);
  on("room:results", paintResults);
  const view = $("notation");
  view.addEventListener("click", (ev) => {
    const entry = entryOf(ev.target);
    if (entry) showDetail(entry);
  });
  view.addEventListener("keydown", onResultKey);
}

/* The falling-notes piano roll: the player's own part and the partners' parts fall towards the
 * "now" line on the shared beat grid (count-in and bars), driven by the server clock; notes
 * played (own and arrived from partners) are drawn at their timestamps under them.
 */

import { localMs } from "./clock.js";
import { beatGrid, beatsPerBar } from "./audio.js";
import { api } from "./session.js";
import { S, colorOf, on } from "./state.js";
import { $ } from "./ui.js";

const AHEAD_MS = 3000; // visible future
const BEHIND_MS = 800; // visible past, under the now line
const MAX_PLAYED = 2000;

const roll = { piece: null, pieceId: null, played: [], open: new Map() };
export { roll };

const notesCache = new Map(); // piece id -> Promise of GET /api/pieces/{id}/notes (the last few)

/** A piece's notes per part (GET /api/pieces/{id}/notes), fetched once: the roll and the score's cursors share them. */
export function pieceNotes(pieceId) {
  if (!notesCache.has(pieceId)) {
    const p = api("GET", `/api/pieces/${encodeURIComponent(pieceId)}/notes`);
    p.catch(() => notesCache.delete(pieceId));
    notesCache.set(pieceId, p);
    if (notesCache.size > 4) notesCache.delete(notesCache.keys().next().value);
  }
  return notesCache.get(pieceId);
}

async function loadPiece(pieceId) {
  if (!pieceId || roll.pieceId === pieceId) return;
  roll.pieceId = pieceId;
  roll.piece = await pieceNotes(pieceId);
}

/** A note played (own or a partner's), `t` on the server clock. */
function addPlayed(userId, e) {
  const key = userId + ":" + e.pitch;
  if (e.type === "on") {
    const note = { userId, pitch: e.pitch, on: e.t, off: null };
    roll.played.push(note);
    roll.open.set(key, note);
    if (roll.played.length > MAX_PLAYED) roll.played.shift();
  } else {
    const note = roll.open.get(key);
    if (note) note.off = e.t;
    roll.open.delete(key);
  }
}

export function clearRoll() {
  roll.played = [];
  roll.open.clear();
}

/** Which parts to draw: {name, owner, mine} for parts with a player (own part first). */
function shownParts() {
  if (!S.room || !roll.piece) return [];
  const me = S.user && S.user.id;
  const taken = Object.fromEntries((S.room.parts || []).map((p) => [p.name, p.user_id]));
  return roll.piece.parts
    .filter((p) => taken[p.name])
    .map((p) => ({ ...p, owner: taken[p.name], mine: taken[p.name] === me }))
    .sort((a, b) => b.mine - a.mine);
}

function draw() {
  requestAnimationFrame(draw);
  const canvas = $("roll");
  if (!S.roomId || !canvas || canvas.offsetParent === null) return;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const now = S.clock.toServer(localMs());
  const nowY = h * (AHEAD_MS / (AHEAD_MS + BEHIND_MS));
  const yOf = (t) => nowY - ((t - now) / AHEAD_MS) * nowY;
  const parts = shownParts();
  let lo = 48;
  let hi = 84;
  const pitches = parts.flatMap((p) => p.notes.map((n) => n[2])).concat(roll.played.map((n) => n.pitch));
  if (pitches.length) {
    lo = Math.min(...pitches) - 2;
    hi = Math.max(...pitches) + 2;
  }
  const laneW = w / (hi - lo + 1);
  const xOf = (pitch) => (pitch - lo) * laneW;

  // The beat grid: count-in beats numbered, bar lines stronger.
  const grid = beatGrid();
  if (grid) {
    const first = Math.ceil((now - BEHIND_MS - grid.first) / grid.beatMs);
    const last = Math.floor((now + AHEAD_MS - grid.first) / grid.beatMs);
    g.font = "12px system-ui, sans-serif";
    for (let k = Math.max(0, first); k <= last; k++) {
      const y = yOf(grid.first + k * grid.beatMs);
      const bar = (k - grid.countIn) % beatsPerBar() === 0;
      g.strokeStyle = k < grid.countIn ? "#f0a" : bar ? "#667" : "#334";
      g.lineWidth = bar ? 1.5 : 1;
      g.beginPath();
      g.moveTo(0, y);
      g.lineTo(w, y);
      g.stroke();
      if (k < grid.countIn) {
        g.fillStyle = "#f0a";
        g.fillText(String(k + 1), 4, y - 3);
      }
    }
  }

  // Expected notes, on the room's grid (the file's seconds scaled to the room tempo).
  if (grid && roll.piece) {
    const scale = roll.piece.tempo_bpm / (S.started.tempo_bpm || S.room.tempo_bpm || roll.piece.tempo_bpm);
    for (const part of parts) {
      const color = colorOf(part.owner);
      for (const [onS, offS, pitch] of part.notes) {
        const t0 = grid.startAt + onS * 1000 * scale;
        const t1 = grid.startAt + offS * 1000 * scale;
        if (t1 < now - BEHIND_MS || t0 > now + AHEAD_MS) continue;
        const y0 = yOf(t1);
        const y1 = yOf(t0);
        g.globalAlpha = part.mine ? 0.9 : 0.45;
        g.strokeStyle = color;
        g.lineWidth = part.mine ? 2 : 1;
        g.strokeRect(xOf(pitch) + 1, y0, laneW - 2, Math.max(2, y1 - y0));
      }
    }
    g.globalAlpha = 1;
  }

  // Notes played, filled, at their timestamps.
  for (const n of roll.played) {
    const end = n.off === null ? now : n.off;
    if (end < now - BEHIND_MS) continue;
    const y0 = yOf(end);
    const y1 = yOf(n.on);
    g.fillStyle = colorOf(n.userId);
    g.globalAlpha = 0.85;
    g.fillRect(xOf(n.pitch) + 2, y0, laneW - 4, Math.max(3, y1 - y0));
  }
  g.globalAlpha = 1;

  g.strokeStyle = "#fff";
  g.lineWidth = 2;
  g.beginPath();
  g.moveTo(0, nowY);
  g.lineTo(w, nowY);
  g.stroke();
}

export function initRoll() {
  on("room:state", (state) => loadPiece(state && state.piece_id).catch(console.warn));
  on("local-sent", (e) => S.user && addPlayed(S.user.id, e));
  on("partner-events", ({ userId, events }) => events.forEach((e) => addPlayed(userId, e)));
  requestAnimationFrame(draw);
}

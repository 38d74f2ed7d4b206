/* The lobby: open rooms (GET /api/rooms) with their piece, mode and members; the piece library;
 * creating a room from a piece or an uploaded MIDI file; joining as a player (picking a part)
 * or as a spectator; an invite link (#room=ID) opens the join form for that room.
 */

import { call } from "./connection.js";
import { joinRoom } from "./room.js";
import { api } from "./session.js";
import { S, on } from "./state.js";
import { $, el, fmt, formatDuration, guard, toast } from "./ui.js";

const ROOMS_REFRESH_MS = 4000;
let roomsTimer = null;
let openRooms = [];

export async function loadPieces() {
  const data = await api("GET", "/api/pieces");
  S.pieces = data.pieces || [];
  $("pieces-table").querySelector("tbody").replaceChildren(
    ...S.pieces.map((p) =>
      el(
        "tr",
        null,
        el("td", null, el("button", { type: "button", class: "link", onclick: () => choosePiece(p.id), "aria-label": `Use ${p.title} for a new room` }, p.title)),
        el("td", null, p.composer || "—"),
        el("td", null, p.parts.map((part) => part.name).join(", ")),
        el("td", null, fmt(p.tempo_bpm, 0, " BPM")),
        el("td", null, formatDuration(p.duration_seconds)),
        el("td", null, p.difficulty + "/10"),
      ),
    ),
  );
  $("pieces-empty").hidden = S.pieces.length > 0;
  const select = $("create-piece");
  const chosen = select.value;
  select.replaceChildren(
    el("option", { value: "" }, "— none: free jam —"),
    ...S.pieces.map((p) => el("option", { value: p.id }, `${p.title}${p.composer ? " — " + p.composer : ""}`)),
  );
  if (S.pieces.some((p) => p.id === chosen)) select.value = chosen;
  onPieceChange();
}

const pieceById = (id) => S.pieces.find((p) => p.id === id) || null;

function choosePiece(id) {
  $("create-piece").value = id;
  onPieceChange();
  $("create-piece").focus();
}

function onPieceChange() {
  const piece = pieceById($("create-piece").value);
  const mode = $("create-mode");
  if (!piece) mode.value = "free";
  else if (mode.value === "free") mode.value = piece.parts.length === 2 ? "duet" : "ensemble";
  mode.querySelector('option[value="duet"]').disabled = !piece || piece.parts.length < 2;
  mode.querySelector('option[value="ensemble"]').disabled = !piece;
  $("create-tempo").placeholder = piece ? `${Math.round(piece.tempo_bpm)} (piece)` : "120";
  const parts = $("create-part");
  parts.replaceChildren(
    el("option", { value: "" }, piece ? "any free part" : "— (free jam has no parts)"),
    ...(piece ? piece.parts.map((p) => el("option", { value: p.name }, `${p.name} (${p.notes} notes)`)) : []),
  );
  parts.disabled = !piece;
  $("create-wait").disabled = !piece; // a free jam has no score to wait at
  if (!piece) $("create-wait").checked = false;
}

async function createRoom() {
  const tempo = $("create-tempo").value.trim();
  const body = {
    piece_id: $("create-piece").value || null,
    mode: $("create-mode").value,
    tempo_bpm: tempo === "" ? null : Number(tempo),
    count_in_beats: Number($("create-count-in").value || 0),
    name: $("create-name").value.trim(),
  };
  if ($("create-wait").checked) body.wait = true; // wait mode: only room:create sets it
  const created = await call("room:create", body);
  await joinRoom(created.room.room_id, "player", $("create-part").value || null);
}

/** Upload a MIDI file to the library (POST /api/pieces) and pick it for a new room. */
async function uploadPiece() {
  const file = $("upload-file").files[0];
  if (!file) throw new Error("choose a MIDI file first");
  const q = new URLSearchParams();
  if ($("upload-title").value.trim()) q.set("title", $("upload-title").value.trim());
  if ($("upload-split").checked) {
    q.set("split_hands", "true");
    q.set("split_pitch", $("upload-split-pitch").value || "60");
  }
  const piece = await api("POST", "/api/pieces?" + q.toString(), await file.arrayBuffer());
  toast(`Added “${piece.title}” to the library.`);
  $("upload-form").reset();
  await loadPieces();
  choosePiece(piece.id);
}

export async function loadRooms() {
  if (!S.auth || $("lobby-view").hidden) return;
  const data = await api("GET", "/api/rooms");
  openRooms = data.rooms || [];
  renderRooms();
}

/** The part picked in each row, and the focused control, so that a refresh keeps them. */
function picks(tbody) {
  const chosen = new Map();
  for (const row of tbody.querySelectorAll("tr[data-room]")) {
    const select = row.querySelector("select.part-pick");
    if (select && select.value) chosen.set(row.dataset.room, select.value);
  }
  const active = document.activeElement;
  const row = active && tbody.contains(active) ? active.closest("tr[data-room]") : null;
  const focus = row ? { room: row.dataset.room, label: active.getAttribute("aria-label") } : null;
  return { chosen, focus };
}

function renderRooms() {
  $("rooms-empty").hidden = openRooms.length > 0;
  const tbody = $("rooms-table").querySelector("tbody");
  const { chosen, focus } = picks(tbody);
  tbody.replaceChildren(
    ...openRooms.map((r) => {
      const players = r.members.filter((m) => m.role === "player");
      const free = r.parts.filter((p) => !p.user_id);
      const canPlay = r.phase === "waiting" && players.length < r.max_players && (r.mode === "free" || free.length > 0);
      const partSelect = el(
        "select",
        { "aria-label": `Part to play in ${r.name}`, class: "part-pick", disabled: !canPlay || r.mode === "free" },
        el("option", { value: "" }, r.mode === "free" ? "—" : "any free part"),
        ...free.map((p) => el("option", { value: p.name }, p.name)),
      );
      // The periodic refresh must not undo a pick: the part is kept while it is free.
      if (free.some((p) => p.name === chosen.get(r.room_id))) partSelect.value = chosen.get(r.room_id);
      return el(
        "tr",
        { "data-room": r.room_id, "data-piece": r.piece_id },
        el("td", null, el("b", null, r.name), el("div", { class: "muted small" }, r.room_id)),
        el("td", null, r.piece_title || "—"),
        el("td", null, r.mode),
        el("td", null, r.members.map((m) => `${m.display_name}${m.part ? " (" + m.part + ")" : m.role === "spectator" ? " (listening)" : ""}`).join(", ") || "—"),
        el("td", null, r.phase.replace("_", " ")),
        el("td", { class: "actions" },
          partSelect,
          el("button", { type: "button", class: "small", disabled: !canPlay, "aria-label": `Join ${r.name} as a player`,
            onclick: guard(() => joinRoom(r.room_id, "player", partSelect.value || null)) }, "Play"),
          el("button", { type: "button", class: "small secondary", "aria-label": `Watch ${r.name} as a spectator`,
            onclick: guard(() => joinRoom(r.room_id, "spectator", null)) }, "Watch")),
      );
    }),
  );
  if (focus) {
    const row = tbody.querySelector(`tr[data-room="${CSS.escape(focus.room)}"]`);
    const again = row && [...row.querySelectorAll("select, button")].find((c) => c.getAttribute("aria-label") === focus.label);
    if (again) again.focus();
  }
}

export function enterLobby() {
  loadPieces().catch(console.warn);
  loadRooms().catch(console.warn);
  clearInterval(roomsTimer);
  roomsTimer = setInterval(() => loadRooms().catch(() => {}), ROOMS_REFRESH_MS);
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("room")) {
    $("join-room-id").value = hash.get("room");
    $("join-room-id").focus();
  }
}

export function leaveLobby() {
  clearInterval(roomsTimer);
}

export function initLobby() {
  $("refresh-pieces").addEventListener("click", guard(loadPieces));
  $("refresh-rooms").addEventListener("click", guard(loadRooms));
  $("create-piece").addEventListener("change", onPieceChange);
  $("create-mode").addEventListener("change", () => {
    if ($("create-mode").value === "free") {
      $("create-piece").value = "";
      onPieceChange();
    }
  });
  $("create-form").addEventListener("submit", guard(createRoom));
  $("upload-form").addEventListener("submit", guard(uploadPiece));
  $("join-form").addEventListener(
    "submit",
    guard(() => joinRoom($("join-room-id").value.trim(), $("join-role").value, $("join-part").value.trim() || null)),
  );
  on("connected", () => loadRooms().catch(() => {}));
}

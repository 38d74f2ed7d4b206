/* After the piece: each player's final result, a per-note early/late chart, a loop's passes
 * (passes.js) and the download of the session's MIDI recording
 * (GET /api/sessions/{id}/recording.mid).
 */

import { backToLobby, fillTable, judgements, timing } from "./room.js";
import { practiceResults } from "./passes.js";
import { api } from "./session.js";
import { S, colorOf, nameOf, on } from "./state.js";
import { $, el, fmt, pct, showError, svg } from "./ui.js";

const REASONS = {
  piece_ended: "The piece has ended.",
  host_ended: "The host ended the room.",
  all_left: "Every player left.",
  server_shutdown: "The server shut down.",
};

const COLUMNS = [
  ["Player", (u) => nameOf(u)],
  ["Part", (u, r) => r.part || "—"],
  ["Accuracy", (u, r) => pct(r.accuracy)],
  ["Matched", (u, r) => `${r.notes_matched}/${r.notes_expected}`],
  ["Wrong", (u, r) => r.wrong_pitch],
  ["Extra", (u, r) => r.extra],
  ["Missed", (u, r) => r.missed],
  ["F1", (u, r) => fmt(r.f1, 2)],
  ["Judgements", (u, r) => judgements(r)],
  ["Timing", (u, r) => timing(r)],
  ["Tempo", (u, r) => fmt(r.tempo_bpm_played, 0, " BPM")],
];
const FREE_COLUMNS = [["Player", (u) => nameOf(u)], ["Notes played", (u, r) => r.notes_played]];
const JUDGEMENT_COLORS = { perfect: "#76b041", great: "#17bebb", good: "#ffc914", poor: "#e4572e", miss: "#888" };

/**
 * Per-note deviation chart (SVG): x = the note's expected time, y = played − expected (ms,
 * up = late), coloured by judgement; missed notes are crosses on the axis.
 */
export function deviationChart(userId, result) {
  const notes = result.notes || [];
  const W = 640;
  const H = 160;
  const pad = 30;
  const limit = Math.max(100, ...notes.map((n) => Math.abs(n.deviation_ms || 0)).filter(Number.isFinite));
  const tMax = Math.max(1, ...notes.map((n) => n.expected_ms || 0));
  const x = (t) => pad + (t / tMax) * (W - 2 * pad);
  const y = (d) => H / 2 - (d / limit) * (H / 2 - 12);
  const marks = notes.map((n) => {
    const cx = x(n.expected_ms || 0);
    if (n.deviation_ms === null || n.deviation_ms === undefined) {
      return svg("text", { x: cx, y: H / 2 + 4, "text-anchor": "middle", fill: JUDGEMENT_COLORS.miss, "font-size": 10 }, "×");
    }
    return svg("circle", { cx, cy: y(n.deviation_ms), r: 3, fill: JUDGEMENT_COLORS[n.judgement] || "#ccc" },
      svg("title", null, `${n.judgement}: ${n.deviation_ms.toFixed(0)} ms`));
  });
  const lines = [-50, 50].map((d) => svg("line", { x1: pad, x2: W - pad, y1: y(d), y2: y(d), stroke: "#445", "stroke-dasharray": "3 3" }));
  return svg(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `${nameOf(userId)}: early and late notes`, "data-user": userId },
    svg("line", { x1: pad, x2: W - pad, y1: H / 2, y2: H / 2, stroke: colorOf(userId) }),
    lines,
    svg("text", { x: 2, y: 12, fill: "#aaa", "font-size": 10 }, `late +${Math.round(limit)} ms`),
    svg("text", { x: 2, y: H - 4, fill: "#aaa", "font-size": 10 }, `early −${Math.round(limit)} ms`),
    marks,
  );
}

function renderResults(f) {
  const free = S.room && S.room.mode === "free";
  const rows = Object.entries(f.results || {});
  fillTable($("results-table"), free ? FREE_COLUMNS : COLUMNS, rows);
  const asyncText = f.asynchrony_ms === null || f.asynchrony_ms === undefined ? "" : ` Asynchrony between partners: ${fmt(f.asynchrony_ms, 0, " ms")}.`;
  const p = f.partner;
  const partnerText = p
    ? ` ${p.display_name} played ${p.part}${p.take ? " (a recorded take)" : p.follow ? ", following" : ", at the room's tempo"}` +
      (p.result && p.result.asynchrony_ms !== null && p.result.asynchrony_ms !== undefined ? `, ${fmt(p.result.asynchrony_ms, 0)} ms from you on shared onsets.` : ".")
    : "";
  $("results-summary").textContent = `${REASONS[f.reason] || f.reason}${asyncText}${partnerText}`;
  const practice = free ? [] : practiceResults(rows);
  $("results-passes").replaceChildren(...practice);
  $("results-passes").hidden = practice.length === 0;
  $("results-charts").replaceChildren(
    ...(free ? [] : rows.map(([u, r]) => el("figure", null, el("figcaption", null, `${nameOf(u)} — per note, early ↓ / late ↑`), deviationChart(u, r)))),
  );
  $("download-btn").disabled = !f.session_id;
  $("results-card").hidden = false;
  $("results-card").scrollIntoView({ block: "nearest" });
  $("download-btn").focus();
}

/** Fetch the recording with this user's token and hand it to the browser as a download. */
async function downloadRecording() {
  const f = S.finished;
  if (!f || !f.session_id) return;
  const resp = await api("GET", `/api/sessions/${encodeURIComponent(f.session_id)}/recording.mid`, undefined, { raw: true });
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: `tutti-${f.session_id}.mid` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function initResults() {
  on("room:results", renderResults);
  $("download-btn").addEventListener("click", () => downloadRecording().catch(showError));
  $("back-btn").addEventListener("click", () => backToLobby());
}

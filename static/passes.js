/* The results of a loop or tempo ladder (README "Practice tools"): each player's passes
 * (`room:finished` results[user].passes: {pass, start_at, end_at, tempo_pct, tempo_bpm,
 * accuracy, result}) as a table and a small SVG chart of accuracy and tempo per pass; and a
 * wait-mode result's waits.
 */

import { timing } from "./room.js";
import { colorOf, nameOf } from "./state.js";
import { el, fmt, pct, svg } from "./ui.js";

/** What the ladder did after pass `i`: climbed, repeated, or the loop ended. */
function nextStep(passes, i, ladder) {
  const here = passes[i];
  const next = passes[i + 1];
  if (!next) {
    if (ladder && here.tempo_pct >= ladder.target_pct && here.accuracy >= ladder.min_accuracy) return "target reached";
    return "last pass";
  }
  if (!ladder) return "again";
  return next.tempo_pct > here.tempo_pct ? `up to ${fmt(next.tempo_pct, 0)} %` : `repeat at ${fmt(next.tempo_pct, 0)} %`;
}

/** A table of one player's passes: tempo (% and BPM), accuracy, matched notes, timing. */
export function passesTable(userId, result) {
  const passes = result.passes || [];
  const ladder = result.ladder || null;
  const head = ["Pass", "Tempo", "BPM", "Accuracy", "Matched", "Timing", ladder ? "Ladder" : "Then"];
  return el(
    "table",
    { class: "data passes-table", "data-user": userId },
    el("caption", null, `${nameOf(userId)} — ${passes.length} ${passes.length === 1 ? "pass" : "passes"}`),
    el("thead", null, el("tr", null, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el(
      "tbody",
      null,
      ...passes.map((p, i) => {
        const r = p.result || {};
        return el(
          "tr",
          { "data-pass": p.pass, "data-tempo-pct": p.tempo_pct },
          el("th", { scope: "row" }, String(p.pass)),
          el("td", null, `${fmt(p.tempo_pct, 0)} %`),
          el("td", null, fmt(p.tempo_bpm, 0)),
          el("td", null, pct(p.accuracy)),
          el("td", null, r.notes_expected === undefined ? "—" : `${r.notes_matched}/${r.notes_expected}`),
          el("td", null, timing(r)),
          el("td", null, nextStep(passes, i, ladder)),
        );
      }),
    ),
  );
}

/**
 * Accuracy (bars, the player's colour) and tempo (line, % of the piece's tempo) per pass on one
 * percent axis (0–150 %), with the ladder's minimum accuracy and target tempo dashed.
 */
export function passesChart(userId, result) {
  const passes = result.passes || [];
  const ladder = result.ladder || null;
  const W = 640;
  const H = 190;
  const left = 44;
  const right = 12;
  const top = 12;
  const bottom = 28;
  const top_pct = 150;
  const band = (W - left - right) / Math.max(1, passes.length);
  const y = (p) => top + (1 - p / top_pct) * (H - top - bottom);
  const cx = (i) => left + band * (i + 0.5);
  const grid = [0, 50, 100, 150].flatMap((p) => [
    svg("line", { x1: left, x2: W - right, y1: y(p), y2: y(p), stroke: "#445", "stroke-width": 0.5 }),
    svg("text", { x: left - 6, y: y(p) + 4, "text-anchor": "end", fill: "#999", "font-size": 10 }, `${p} %`),
  ]);
  const bars = passes.map((p, i) => {
    const h = y(0) - y((p.accuracy || 0) * 100);
    return svg(
      "rect",
      { x: cx(i) - band * 0.3, y: y(0) - h, width: band * 0.6, height: Math.max(h, 0.5), fill: colorOf(userId), opacity: 0.8, "data-pass": p.pass, "data-accuracy": p.accuracy },
      svg("title", null, `pass ${p.pass}: accuracy ${pct(p.accuracy)} at ${fmt(p.tempo_pct, 0)} %`),
    );
  });
  const tempoLine = svg("polyline", {
    points: passes.map((p, i) => `${cx(i)},${y(p.tempo_pct)}`).join(" "),
    class: "tempo", // colours from style.css: the page's CSP allows no inline styles
    fill: "none",
    stroke: "#888",
    "stroke-width": 2,
  });
  const tempoDots = passes.map((p, i) =>
    svg("circle", { cx: cx(i), cy: y(p.tempo_pct), r: 4, class: "tempo-dot", fill: "#888", "data-pass": p.pass, "data-tempo-pct": p.tempo_pct },
      svg("title", null, `pass ${p.pass}: tempo ${fmt(p.tempo_pct, 0)} % (${fmt(p.tempo_bpm, 0)} BPM)`)),
  );
  const labels = passes.map((p, i) => svg("text", { x: cx(i), y: H - 12, "text-anchor": "middle", fill: "#999", "font-size": 10 }, String(p.pass)));
  const marks = [];
  if (ladder) {
    marks.push(
      svg("line", { x1: left, x2: W - right, y1: y(ladder.min_accuracy * 100), y2: y(ladder.min_accuracy * 100), stroke: colorOf(userId), "stroke-dasharray": "4 3" }),
      svg("line", { x1: left, x2: W - right, y1: y(ladder.target_pct), y2: y(ladder.target_pct), class: "target", stroke: "#888", "stroke-dasharray": "2 4" }),
    );
  }
  return svg(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart passes-chart", role: "img", "data-user": userId,
      "aria-label": `${nameOf(userId)}: accuracy and tempo per pass, ${passes.map((p) => `pass ${p.pass} ${pct(p.accuracy)} at ${fmt(p.tempo_pct, 0)} %`).join("; ")}` },
    grid,
    marks,
    bars,
    tempoLine,
    tempoDots,
    labels,
    svg("text", { x: (W + left) / 2, y: H - 1, "text-anchor": "middle", fill: "#999", "font-size": 10 }, "pass"),
  );
}

/** A wait-mode result in a sentence: chords played, pitch accuracy and the time waited. */
export function waitSummary(userId, r) {
  return `${nameOf(userId)}: ${r.chords_played}/${r.chords} chords, pitch accuracy ${pct(r.pitch_accuracy)}, ` +
    `waited ${fmt((r.wait_total_ms || 0) / 1000, 1)} s in all (longest ${fmt((r.wait_max_ms || 0) / 1000, 1)} s).`;
}

/** The passes (and wait-mode) part of the results card for `rows` ([user_id, result]). */
export function practiceResults(rows) {
  const out = [];
  for (const [u, r] of rows) {
    if (r.passes && r.passes.length) {
      out.push(
        el("figure", { class: "passes-figure", "data-user": u },
          el("figcaption", null, `${nameOf(u)} — accuracy (bars) and tempo (line) per pass`, r.ladder ? "; dashed: the ladder's minimum accuracy and target" : ""),
          passesChart(u, r)),
        passesTable(u, r),
      );
    }
    if (r.mode === "wait") out.push(el("p", { class: "wait-result", "data-user": u }, waitSummary(u, r)));
  }
  return out;
}

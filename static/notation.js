/* The room's score: the piece's MusicXML (GET /api/pieces/{id}/musicxml) engraved as SVG by
 * Verovio's toolkit (static/vendor, LGPL-3.0-or-later), loaded on first use (7 MB of
 * WebAssembly: the CSP's 'wasm-unsafe-eval'). The SVG takes the card's width (viewBox), so the
 * browser zooms it; a resize lays it out again. The player's own part is drawn in their colour.
 * Timings go to the Performance API: "tutti:notation" (room's piece known → SVG in the page)
 * and "tutti:notation-render" (Verovio's layout and SVG only), in ms.
 */

import { S, colorOf, on } from "./state.js";
import { $ } from "./ui.js";

const score = { pieceId: null, xml: null, renderMs: null, totalMs: null, pages: 0, error: null };
export { score };

let toolkitPromise = null;

/** One Verovio toolkit for the page (the module allows one instance). */
function toolkit() {
  if (!toolkitPromise) {
    toolkitPromise = Promise.all([
      import("./vendor/verovio-module.mjs"),
      import("./vendor/verovio.mjs"),
    ]).then(async ([module, esm]) => new esm.VerovioToolkit(await module.default()));
  }
  return toolkitPromise;
}

function status(text) {
  const p = $("notation-status");
  if (p) {
    p.textContent = text;
    p.hidden = !text;
  }
}

/** Index of the caller's part among the piece's parts, or -1. */
function myPartIndex() {
  if (!S.room || !S.user) return -1;
  return (S.room.parts || []).findIndex((p) => p.user_id === S.user.id);
}

/** Engrave `score.xml` at the card's width: every page, one SVG each. */
async function render() {
  const view = $("notation");
  if (!view || !score.xml) return;
  const tk = await toolkit();
  const width = Math.max(320, view.clientWidth || 800);
  const zoom = 35; // percent of Verovio's default size: a chorale system fits a phone's width
  performance.mark("tutti:notation-render-start");
  tk.setOptions({
    pageWidth: Math.round((width * 100) / zoom),
    scale: zoom,
    adjustPageHeight: true,
    breaks: "auto",
    svgViewBox: true,
    footer: "none",
    header: "none",
  });
  if (!tk.loadData(score.xml)) throw new Error("Verovio cannot read this score");
  score.pages = tk.getPageCount();
  const svgs = [];
  for (let page = 1; page <= score.pages; page++) svgs.push(tk.renderToSVG(page));
  view.innerHTML = svgs.join("");
  const measure = performance.measure("tutti:notation-render", "tutti:notation-render-start");
  score.renderMs = measure.duration;
  highlight();
}

/** The own part's staff in the player's colour (Verovio: one g.staff per staff in each measure). */
function highlight() {
  const view = $("notation");
  const mine = myPartIndex();
  if (!view) return;
  for (const measure of view.querySelectorAll("g.measure")) {
    measure.querySelectorAll(":scope > g.staff").forEach((staff, i) => {
      staff.classList.toggle("mine", i === mine);
      if (i === mine) staff.style.setProperty("--mine", colorOf(S.user.id));
    });
  }
}

/** Show the score of `pieceId` (null: a free jam, no score). */
async function show(pieceId) {
  const card = $("notation-card");
  if (!card) return;
  card.hidden = !pieceId;
  if (!pieceId || score.pieceId === pieceId) return highlight();
  score.pieceId = pieceId;
  score.xml = null;
  score.error = null;
  $("notation").innerHTML = "";
  status("Loading the score…");
  performance.mark("tutti:notation-start");
  const resp = await fetch(`/api/pieces/${encodeURIComponent(pieceId)}/musicxml`);
  if (score.pieceId !== pieceId) return; // another room meanwhile
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    score.error = (body.error && body.error.code) || `http_${resp.status}`;
    status(`No score for this piece${body.error ? ": " + body.error.message : ""}.`);
    return;
  }
  score.xml = await resp.text();
  await render();
  status("");
  score.totalMs = performance.measure("tutti:notation", "tutti:notation-start").duration;
  $("notation").dataset.renderedMs = score.totalMs.toFixed(1);
}

function showing(pieceId) {
  show(pieceId).catch((err) => {
    score.error = "render_failed";
    status(`The score cannot be shown: ${err.message || err}`);
    console.warn(err);
  });
}

export function initNotation() {
  on("room:state", (state) => showing(state ? state.piece_id : null));
  let timer = null;
  window.addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(() => score.xml && render().catch(console.warn), 200);
  });
}

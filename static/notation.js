/* The room's score: the piece's MusicXML (GET /api/pieces/{id}/musicxml) engraved as SVG by
 * Verovio's toolkit (static/vendor, LGPL-3.0-or-later). The SVG takes the card's width
 * (viewBox), so the browser zooms it; a resize lays it out again. The player's own part is
 * drawn in their colour.
 *
 * Speed (README, Notation): the toolkit (7 MB of WebAssembly, the CSP's 'wasm-unsafe-eval')
 * is loaded and compiled while the page is idle after it opens, and warmed with a one-bar
 * score, so a room only lays out its piece; a piece chosen in "Create a room" has its
 * MusicXML fetched and loaded into the toolkit before the room opens; the first page is shown
 * first, the others follow in later tasks. Timings go to the Performance API (ms):
 * "tutti:verovio" (import + compile + toolkit), "tutti:notation" (the room's piece known →
 * first page in the page), "tutti:room-to-notation" (Create/Join pressed → first page),
 * "tutti:notation-render" (Verovio's layout and first page only), "tutti:notation-pages"
 * (every page), "tutti:notation-map" (notes found in the engraving).
 *
 * The note map: each piece note (GET /api/pieces/{id}/notes, score order: the order of
 * score:update marks and of the final per-note list) is found among Verovio's engraved notes
 * by staff, onset (quarter-note beats: Verovio's timemap qstamp against the note's
 * onset_beat) and MIDI pitch (from the toolkit's MEI), so cursors.js can mark it.
 */

import { pieceNotes } from "./roll.js";
import { S, colorOf, emit, on } from "./state.js";
import { $ } from "./ui.js";

const score = {
  pieceId: null, xml: null, renderMs: null, totalMs: null, pages: 0, error: null,
  parts: [], // per part index: per note (score order) its engraved element or null
  unmapped: 0, // piece notes not found in the engraving
  ready: false, // every page drawn and the note map built
};
export { score };

const ZOOM = 35; // percent of Verovio's default size: a chorale system fits a phone's width
const WARM_UP = `<?xml version="1.0"?><score-partwise version="4.0"><part-list><score-part id="P1">
<part-name>W</part-name></score-part></part-list><part id="P1"><measure number="1"><attributes>
<divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time><clef><sign>G</sign>
<line>2</line></clef></attributes>${"<note><pitch><step>C</step><octave>5</octave></pitch><duration>1</duration><type>quarter</type></note>".repeat(4)}
</measure></part></score-partwise>`;

let toolkitPromise = null;
let loaded = {}; // what the toolkit holds: {pieceId, width} (px)

/** One Verovio toolkit for the page (the module allows one instance), warmed once. */
export function toolkit() {
  if (!toolkitPromise) {
    performance.mark("tutti:verovio-start");
    toolkitPromise = Promise.all([import("./vendor/verovio-module.mjs"), import("./vendor/verovio.mjs")])
      .then(async ([module, esm]) => {
        const tk = new esm.VerovioToolkit(await module.default());
        performance.measure("tutti:verovio", "tutti:verovio-start");
        if (!loaded.pieceId) {
          // A first layout runs the engraver's cold code once (fonts, glyph tables).
          tk.setOptions(options(800));
          tk.loadData(WARM_UP);
          tk.renderToSVG(1);
          tk.renderToTimemap({ includeMeasures: false, includeRests: false });
          tk.getMEI({});
          performance.measure("tutti:verovio-warm", "tutti:verovio-start");
        }
        return tk;
      });
  }
  return toolkitPromise;
}

function options(width) {
  return {
    pageWidth: Math.round((width * 100) / ZOOM),
    scale: ZOOM,
    adjustPageHeight: true,
    breaks: "auto",
    svgViewBox: true,
    footer: "none",
    header: "none",
  };
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

const xmlCache = new Map(); // piece id -> Promise of {ok, text | error}

function fetchXml(pieceId) {
  if (!xmlCache.has(pieceId)) {
    const p = fetch(`/api/pieces/${encodeURIComponent(pieceId)}/musicxml`).then(async (resp) => {
      if (resp.ok) return { ok: true, text: await resp.text() };
      const body = await resp.json().catch(() => ({}));
      xmlCache.delete(pieceId); // a later try may find it converted
      return { ok: false, code: (body.error && body.error.code) || `http_${resp.status}`, message: body.error && body.error.message };
    });
    xmlCache.set(pieceId, p);
  }
  return xmlCache.get(pieceId);
}

function viewWidth() {
  const view = $("notation");
  return Math.max(320, (view && view.clientWidth) || Math.min(1200, document.documentElement.clientWidth - 64));
}

/** Load `xml` of `pieceId` into the toolkit for `width` px, unless it holds it laid out for
 * a width within 15 % (the SVG scales to the card: a few per cent are not worth a layout). */
function loadInto(tk, pieceId, xml, width) {
  if (loaded.pieceId === pieceId && Math.abs(width - loaded.width) <= 0.15 * loaded.width) return true;
  tk.setOptions(options(width));
  performance.mark("tutti:notation-load-start");
  const ok = tk.loadData(xml);
  performance.measure("tutti:notation-load", "tutti:notation-load-start");
  loaded = ok ? { pieceId, width } : {};
  return ok;
}

/** Before the room opens: fetch a chosen piece's score and lay it out while the user fills in the form. */
export function prefetch(pieceId) {
  if (!pieceId) return;
  Promise.all([fetchXml(pieceId), toolkit()])
    .then(([got, tk]) => {
      // Not over another room's score: the toolkit holds one document.
      const free = !S.roomId || (S.room && S.room.piece_id === pieceId);
      if (got.ok && free) loadInto(tk, pieceId, got.text, viewWidth());
    })
    .catch(console.warn);
}

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
let generation = 0; // a newer render() makes an older one stop

/** Engrave `score.xml` at the card's width: page 1 at once (then `firstShown()`), the
 * others in later tasks, then the note map. */
async function render(firstShown = () => {}) {
  const view = $("notation");
  if (!view || !score.xml) return;
  const mine = ++generation;
  const tk = await toolkit();
  if (mine !== generation) return;
  performance.mark("tutti:notation-render-start");
  if (!loadInto(tk, score.pieceId, score.xml, viewWidth())) throw new Error("Verovio cannot read this score");
  score.ready = false;
  score.pages = tk.getPageCount();
  view.innerHTML = tk.renderToSVG(1);
  score.renderMs = performance.measure("tutti:notation-render", "tutti:notation-render-start").duration;
  highlight();
  firstShown();
  for (let page = 2; page <= score.pages; page++) {
    await nextTask(); // lets input, sound and the first paint through between pages
    if (mine !== generation) return;
    view.insertAdjacentHTML("beforeend", tk.renderToSVG(page));
  }
  highlight();
  performance.measure("tutti:notation-pages", "tutti:notation-render-start");
  await nextTask();
  if (mine !== generation) return;
  await mapNotes(tk);
  if (mine !== generation) return;
  score.ready = true;
  view.dataset.ready = "true";
  emit("notation:ready");
}

const STEP = { c: 0, d: 2, e: 4, f: 5, g: 7, a: 9, b: 11 };
const ALTER = { s: 1, f: -1, ss: 2, x: 2, ff: -2, n: 0, xs: 3, sx: 3, ts: 3, tf: -3, nf: -1, ns: 1 };

/** MIDI pitch and staff number (1-based) of each engraved note, from the toolkit's MEI. */
function notesOfMei(tk) {
  const doc = new DOMParser().parseFromString(tk.getMEI({}), "application/xml");
  const out = new Map();
  for (const note of doc.getElementsByTagName("note")) {
    const id = note.getAttribute("xml:id");
    const pname = note.getAttribute("pname");
    const oct = note.getAttribute("oct");
    if (!id || !pname || oct === null) continue;
    let accid = note.getAttribute("accid.ges") || note.getAttribute("accid");
    const child = note.getElementsByTagName("accid")[0];
    if (!accid && child) accid = child.getAttribute("accid.ges") || child.getAttribute("accid");
    const staff = note.closest("staff");
    out.set(id, {
      pitch: 12 * (Number(oct) + 1) + STEP[pname] + (ALTER[accid] || 0),
      staff: staff ? Number(staff.getAttribute("n")) : 0,
    });
  }
  return out;
}

/**
 * Each piece note's engraved element: per staff, the longest common subsequence of the two
 * pitch sequences in score order (Verovio's timemap onsets; the notes' onset_beat). Order,
 * not beats, decides: Verovio and the MIDI file count grace notes, ornaments and fermatas
 * differently, so their beats drift apart along a piece; a tie's second note only Verovio has.
 * Repeats are played out in both (music21's MIDI and Verovio's expansion).
 */
async function mapNotes(tk) {
  performance.mark("tutti:notation-map-start");
  const piece = await pieceNotes(score.pieceId);
  const timemap = tk.renderToTimemap({ includeMeasures: false, includeRests: false });
  const engraved = notesOfMei(tk);
  const staves = new Map(); // staff number -> [{id, q, pitch}] in time order
  for (const entry of timemap) {
    const here = [];
    for (const on of entry.on || []) {
      // A repeat played again: Verovio's expansion names the copies "<id>-rend2", … and
      // draws the notes once, so both times mark the one engraved note.
      const id = on.replace(/-rend\d+$/, "");
      const info = engraved.get(id);
      if (info) here.push({ id, staff: info.staff, pitch: info.pitch });
    }
    here.sort((a, b) => a.pitch - b.pitch); // a chord in pitch order, as the piece's notes
    for (const n of here) {
      if (!staves.has(n.staff)) staves.set(n.staff, []);
      staves.get(n.staff).push(n);
    }
  }
  score.unmapped = 0;
  score.parts = piece.parts.map((part, p) => {
    const pitches = part.notes.map((n) => n[2]);
    const found = align(pitches, (staves.get(p + 1) || []).map((n) => n.pitch));
    const engravedHere = staves.get(p + 1) || [];
    return found.map((j) => {
      if (j < 0) score.unmapped++;
      return j < 0 ? null : document.getElementById(engravedHere[j].id);
    });
  });
  performance.measure("tutti:notation-map", "tutti:notation-map-start");
}

/** For each a[i], the index in `b` it is aligned with (an LCS of equal values) or -1. */
function align(a, b) {
  const n = a.length;
  const m = b.length;
  const out = new Array(n).fill(-1);
  if (!n || !m || n * m > 16e6) return out; // ~32 MB of table: a score too long to follow
  const w = m + 1;
  const len = new Uint16Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const k = i * w + j;
      len[k] = a[i] === b[j] ? len[k + w + 1] + 1 : Math.max(len[k + w], len[k + 1]);
    }
  }
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (a[i] === b[j]) out[i++] = j++;
    else if (len[(i + 1) * w + j] >= len[i * w + j + 1]) i++;
    else j++;
  }
  return out;
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
  const view = $("notation");
  if (!S.finished && view.parentElement !== card) card.append(view); // back from the results
  if (!pieceId || score.pieceId === pieceId) return highlight();
  score.pieceId = pieceId;
  score.xml = null;
  score.error = null;
  score.parts = [];
  score.ready = false;
  delete view.dataset.ready;
  view.innerHTML = "";
  status("Loading the score…");
  performance.mark("tutti:notation-start");
  const got = await fetchXml(pieceId);
  performance.measure("tutti:notation-fetch", "tutti:notation-start");
  if (score.pieceId !== pieceId) return; // another room meanwhile
  if (!got.ok) {
    score.error = got.code;
    status(`No score for this piece${got.message ? ": " + got.message : ""}.`);
    return;
  }
  score.xml = got.text;
  let firstShown;
  const shown = new Promise((resolve) => (firstShown = resolve));
  const rendering = render(firstShown);
  await Promise.race([shown, rendering]);
  status("");
  score.totalMs = performance.measure("tutti:notation", "tutti:notation-start").duration;
  if (performance.getEntriesByName("tutti:room-open", "mark").length) {
    performance.measure("tutti:room-to-notation", "tutti:room-open");
    performance.clearMarks("tutti:room-open");
  }
  view.dataset.renderedMs = score.totalMs.toFixed(1);
  await rendering;
}

function showing(pieceId) {
  show(pieceId).catch((err) => {
    score.error = "render_failed";
    status(`The score cannot be shown: ${err.message || err}`);
    console.warn(err);
  });
}

export function initNotation() {
  on("room:state:applied", (state) => showing(state ? state.piece_id : null));
  let timer = null;
  window.addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const width = viewWidth();
      const far = !loaded.width || Math.abs(width - loaded.width) > 0.15 * loaded.width;
      if (score.xml && far) render().catch(console.warn);
    }, 200);
  });
  // "Opening the room" starts when Create or Join is pressed.
  const opening = () => performance.mark("tutti:room-open");
  document.addEventListener("submit", (e) => ["create-form", "join-form"].includes(e.target.id) && opening(), true);
  const rooms = $("rooms-table");
  if (rooms) {
    // A room's score is fetched and laid out as soon as the pointer or the focus reaches its
    // row, or, at the latest, while the join goes to the server.
    const near = (e) => {
      const row = e.target.closest && e.target.closest("tr[data-piece]");
      if (row) prefetch(row.dataset.piece);
    };
    rooms.addEventListener("click", (e) => e.target.closest("button") && (opening(), near(e)), true);
    rooms.addEventListener("pointerover", near);
    rooms.addEventListener("focusin", near);
  }
  const select = $("create-piece");
  if (select) select.addEventListener("change", () => prefetch(select.value));
  // Compile the toolkit once the page is idle, so no room waits for it.
  const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 300));
  idle(() => toolkit().catch(console.warn), { timeout: 2000 });
}

/* Sound: own notes, the count-in and metronome clicks on the server clock, and partners' notes
 * through a jitter buffer — each sounded `playout delay` after its timestamp, not on arrival.
 *
 * Nothing else depends on sound: without Web Audio (or before a user gesture) it stays silent.
 */

import { localMs, playoutDelayMs } from "./clock.js";
import { S, on, emit } from "./state.js";
import { $ } from "./ui.js";

const LOOKAHEAD_MS = 120; // clicks are scheduled this far ahead (the timer is coarser than audio)
const TRANSIT_WINDOW = 64; // recent transit delays kept per partner

let ctx = null;
let master = null;
const voices = new Map();
let nextClickBeat = null;

/** Playout statistics, read by the page and the tests. */
export const playout = { delayMs: 0, auto: true, scheduled: 0, late: 0, lastLatenessMs: null };

/** Create or resume the AudioContext; call from a user gesture. */
export function unlock() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return null;
  if (!ctx) {
    ctx = new AC({ latencyHint: "interactive" });
    master = ctx.createGain();
    master.gain.value = 0.3;
    master.connect(ctx.destination);
  }
  if (ctx.state === "suspended") ctx.resume();
  return ctx;
}

/** The AudioContext time of a page-clock instant (ms). */
const audioTime = (atLocalMs) => ctx.currentTime + Math.max(0, (atLocalMs - localMs()) / 1000);

export function noteOn(key, pitch, velocity, wave, atLocalMs = localMs()) {
  if (!ctx) return;
  noteOff(key, atLocalMs);
  const when = audioTime(atLocalMs);
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  const peak = 0.08 + 0.4 * (velocity / 127);
  osc.type = wave;
  osc.frequency.value = 440 * Math.pow(2, (pitch - 69) / 12);
  gain.gain.setValueAtTime(0.0001, when);
  gain.gain.exponentialRampToValueAtTime(peak, when + 0.006);
  gain.gain.exponentialRampToValueAtTime(peak * 0.35, when + 0.4);
  osc.connect(gain).connect(master);
  osc.start(when);
  const voice = { osc, gain, start: when, timer: setTimeout(() => noteOff(key), 8000 + (when - ctx.currentTime) * 1000) };
  voices.set(key, voice);
}

export function noteOff(key, atLocalMs = localMs()) {
  const voice = voices.get(key);
  if (!voice || !ctx) return;
  voices.delete(key);
  clearTimeout(voice.timer);
  const when = Math.max(audioTime(atLocalMs), voice.start + 0.02);
  voice.gain.gain.cancelScheduledValues(when);
  voice.gain.gain.setValueAtTime(0.1, when);
  voice.gain.gain.exponentialRampToValueAtTime(0.0001, when + 0.12);
  voice.osc.stop(when + 0.15);
}

export function silenceAll() {
  for (const key of [...voices.keys()]) noteOff(key);
}

function click(atLocalMs, accent) {
  if (!ctx) return;
  const when = audioTime(atLocalMs);
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "square";
  osc.frequency.value = accent ? 1760 : 1320;
  gain.gain.setValueAtTime(0.0001, when);
  gain.gain.exponentialRampToValueAtTime(accent ? 0.35 : 0.2, when + 0.002);
  gain.gain.exponentialRampToValueAtTime(0.0001, when + 0.04);
  osc.connect(gain).connect(master);
  osc.start(when);
  osc.stop(when + 0.05);
}

// -- the shared beat grid: count-in and metronome -----------------------------------------------

/** The room's beat grid on the server clock: {first, beatMs, countIn, startAt}, or null. */
export function beatGrid() {
  if (!S.started || !S.room) return null;
  const tempo = S.started.tempo_bpm || S.room.tempo_bpm || 120;
  const beatMs = 60000 / tempo;
  const countIn = S.room.count_in_beats || 0;
  return { first: S.started.start_at - countIn * beatMs, beatMs, countIn, startAt: S.started.start_at };
}

export function beatsPerBar() {
  return S.room && S.room.count_in_beats >= 2 && S.room.count_in_beats <= 8 ? S.room.count_in_beats : 4;
}

/** Schedule the clicks due within the lookahead (count-in always, after it the metronome). */
function scheduleClicks() {
  const grid = beatGrid();
  if (!grid || S.finished || !ctx) return;
  const horizon = S.clock.toServer(localMs()) + LOOKAHEAD_MS;
  if (nextClickBeat === null) nextClickBeat = Math.max(0, Math.ceil((S.clock.toServer(localMs()) - grid.first) / grid.beatMs));
  while (grid.first + nextClickBeat * grid.beatMs <= horizon) {
    const k = nextClickBeat++;
    const inCountIn = k < grid.countIn;
    const wanted = inCountIn ? $("sound-click").checked : $("sound-metronome").checked;
    if (wanted) click(S.clock.toClient(grid.first + k * grid.beatMs), (k - grid.countIn) % beatsPerBar() === 0);
  }
}

export function resetClicks() {
  nextClickBeat = null;
}

// -- partners: the jitter buffer ----------------------------------------------------------------

/** Recompute the automatic playout delay from the partners' transit delays and the clock. */
export function updatePlayoutDelay() {
  if (!playout.auto) return;
  const me = S.user && S.user.id;
  const partners = S.room ? S.room.members.filter((m) => m.user_id !== me && m.role === "player") : [];
  const delays = partners.map((m) =>
    playoutDelayMs({ transitMs: S.transit[m.user_id] || [], partnerRttMs: m.rtt_ms, ownRtts: S.clock.rttHistory }),
  );
  // One buffer for everyone: partners stay together as they played.
  playout.delayMs = delays.length ? Math.max(...delays) : playoutDelayMs({ ownRtts: S.clock.rttHistory });
  renderDelay();
}

function renderDelay() {
  const slider = $("playout-delay");
  if (!slider) return;
  if (playout.auto) slider.value = playout.delayMs;
  const late = playout.scheduled ? ` · ${playout.late} of ${playout.scheduled} notes late` : "";
  $("playout-label").textContent = `${playout.delayMs} ms${playout.auto ? " (auto)" : ""}${late}`;
}

/** A partner's note event arrived: sound it at its timestamp + the playout delay. */
function onPartnerEvent(userId, e, arrivalServerMs) {
  const transit = arrivalServerMs - e.t;
  const list = (S.transit[userId] = S.transit[userId] || []);
  list.push(transit);
  if (list.length > TRANSIT_WINDOW) list.shift();
  const due = S.clock.toClient(e.t) + playout.delayMs;
  const lateness = localMs() - due;
  const key = "p:" + userId + ":" + e.pitch;
  if (e.type === "on") {
    playout.scheduled += 1;
    playout.lastLatenessMs = lateness;
    if (lateness > 0) playout.late += 1; // arrived after its slot: sounds at once
    if ($("sound-partners").checked) noteOn(key, e.pitch, e.velocity, "sine", due);
  } else {
    noteOff(key, due);
  }
}

export function initAudio() {
  on("partner-events", ({ userId, events, arrival }) => {
    for (const e of events) onPartnerEvent(userId, e, arrival);
    updatePlayoutDelay();
    renderDelay();
  });
  on("clock", updatePlayoutDelay);
  on("room:state", updatePlayoutDelay);
  $("playout-delay").addEventListener("input", (ev) => {
    playout.auto = false;
    $("playout-auto").checked = false;
    playout.delayMs = Number(ev.target.value);
    renderDelay();
  });
  $("playout-auto").addEventListener("change", (ev) => {
    playout.auto = ev.target.checked;
    updatePlayoutDelay();
    renderDelay();
  });
  setInterval(scheduleClicks, 25);
  updatePlayoutDelay();
  emit("audio:ready");
}

/* The microphone as an instrument: a monophonic pitch tracker (pitchy, McLeod pitch method,
 * vendored in static/vendor/pitchy.mjs) turns the input into `local-note` page events
 * {type, pitch, velocity, stampLocalMs}, like the keyboard and Web MIDI (input.js), so the
 * room sends them as the usual `note` events.
 *
 * Every FRAME_MS the newest WINDOW samples are analysed: a pitch counts when its clarity is
 * at least CLARITY and the frame's level is above the noise gate; a note starts once the same
 * pitch (rounded to the nearest MIDI note, plus the transposition) is heard in CONFIRM frames
 * in a row, and ends when another pitch is confirmed or nothing clear is heard for
 * RELEASE frames. A note repeated without a gap is heard as one (tried: a re-attack on a
 * jump in level; under load it made more spurious notes than it found). Velocity follows the level (gate → 0 dBFS maps to 20 → 127).
 *
 * Latency compensation: a note is stamped when it was played, not when it was noticed —
 * the detection time minus the detector's own delay (half a window plus the confirming
 * frames: DETECTOR_MS), the input latency the browser reports (the track's `latency`
 * setting, else AudioContext.baseLatency) and the calibration offset (tap along to 8
 * clicks: the median of heard − clicked), all in ms.
 */

import { localMs } from "./clock.js";
import { emit } from "./state.js";
import { $ } from "./ui.js";

const WINDOW = 2048; // samples analysed per frame (43 ms at 48 kHz)
const FRAME_MS = 10;
const CLARITY = 0.9;
const CONFIRM = 2;
const RELEASE = 3;

export const mic = {
  on: false,
  low: 36, // lowest MIDI note of the instrument's range (C2)
  high: 96, // highest (C7)
  gateDb: -45, // dBFS below which nothing is heard
  transpose: 0, // semitones added to what is heard (B♭ instrument: +2, E♭: +9, F: +7)
  calibrationMs: 0,
  inputLatencyMs: 0,
  detectorMs: 0,
  onsets: [], // local ms of the last level rises above the gate (calibration, tests)
};

let ctx = null;
let stream = null;
let analyser = null;
let detector = null;
let timer = null;
let buffer = null;
let candidate = null; // {pitch, frames, firstLocalMs, db}
let sounding = null; // the MIDI note now on
let quiet = 0;
let onset = null; // calibration: called with the local ms of each energy onset
let lastDb = -Infinity;


/** MIDI note number of a frequency (Hz), rounded to the nearest semitone. */
export function frequencyToPitch(hz) {
  return Math.round(69 + 12 * Math.log2(hz / 440));
}

/** Velocity 1–127 of a level in dBFS, above a gate in dBFS. */
export function levelToVelocity(db, gateDb) {
  const x = Math.min(1, Math.max(0, (db - gateDb) / -gateDb));
  return Math.max(1, Math.min(127, Math.round(20 + 107 * x)));
}

/** The detector's delay in ms at `sampleRate`: half a window, plus the confirming frames. */
export function detectorDelayMs(sampleRate) {
  return (WINDOW / 2 / sampleRate) * 1000 + (CONFIRM - 1) * FRAME_MS;
}

function rmsDb(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return 10 * Math.log10(sum / samples.length + 1e-12);
}

function stamp(localDetectedMs) {
  return localDetectedMs - mic.detectorMs - mic.inputLatencyMs - mic.calibrationMs;
}

function noteOn(pitch, velocity, at) {
  sounding = pitch;
  emit("local-note", { type: "on", pitch, velocity, stampLocalMs: stamp(at) });
}

function noteOff(at) {
  if (sounding === null) return;
  emit("local-note", { type: "off", pitch: sounding, velocity: 0, stampLocalMs: stamp(at) });
  sounding = null;
}

function frame() {
  const now = localMs();
  analyser.getFloatTimeDomainData(buffer);
  const db = rmsDb(buffer);
  if (db > mic.gateDb && lastDb <= mic.gateDb) {
    const at = now - (WINDOW / 2 / ctx.sampleRate) * 1000 - mic.inputLatencyMs;
    mic.onsets = [...mic.onsets.slice(-15), at];
    if (onset) onset(at);
  }
  lastDb = db;
  let pitch = null;
  if (db > mic.gateDb) {
    const [hz, clarity] = detector.findPitch(buffer, ctx.sampleRate);
    if (clarity >= CLARITY && hz > 0) {
      const heard = frequencyToPitch(hz); // sounding pitch: the instrument's range
      const p = heard + mic.transpose;
      if (heard >= mic.low && heard <= mic.high && p >= 0 && p <= 127) pitch = p;
    }
  }
  if (pitch === null) {
    candidate = null;
    if (sounding !== null && ++quiet >= RELEASE) noteOff(now - (RELEASE - 1) * FRAME_MS);
    return;
  }
  quiet = 0;
  if (pitch === sounding) {
    candidate = null;
    return;
  }
  if (!candidate || candidate.pitch !== pitch) candidate = { pitch, frames: 0, db };
  candidate.frames += 1;
  candidate.db = Math.max(candidate.db, db);
  if (candidate.frames >= CONFIRM) {
    noteOff(now);
    noteOn(pitch, levelToVelocity(candidate.db, mic.gateDb), now);
    candidate = null;
  }
}

/** Open the microphone and start tracking. Rejects when access is refused. */
export async function startMicrophone() {
  if (mic.on) return;
  const { PitchDetector } = await import("./vendor/pitchy.mjs");
  stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  ctx = new AudioContext({ latencyHint: "interactive" });
  const source = ctx.createMediaStreamSource(stream);
  analyser = ctx.createAnalyser();
  analyser.fftSize = WINDOW;
  source.connect(analyser);
  buffer = new Float32Array(WINDOW);
  detector = PitchDetector.forFloat32Array(WINDOW);
  const settings = stream.getAudioTracks()[0].getSettings();
  mic.inputLatencyMs = 1000 * (typeof settings.latency === "number" ? settings.latency : ctx.baseLatency || 0);
  mic.detectorMs = detectorDelayMs(ctx.sampleRate);
  mic.on = true;
  timer = setInterval(frame, FRAME_MS);
  status();
}

export function stopMicrophone() {
  if (!mic.on) return;
  clearInterval(timer);
  noteOff(localMs());
  stream.getTracks().forEach((t) => t.stop());
  ctx.close();
  mic.on = false;
  candidate = null;
  status();
}

/** Tap along to 8 clicks (80 BPM): the median of (heard − clicked) becomes the calibration. */
export async function calibrate() {
  if (!mic.on) await startMicrophone();
  const beatMs = 750;
  const clicks = [];
  const heard = [];
  onset = (t) => heard.push(t);
  const startCtx = ctx.currentTime + 0.5;
  const startLocal = localMs() + 500;
  for (let i = 0; i < 8; i++) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 1000;
    gain.gain.setValueAtTime(0.3, startCtx + (i * beatMs) / 1000);
    gain.gain.exponentialRampToValueAtTime(0.001, startCtx + (i * beatMs) / 1000 + 0.05);
    osc.connect(gain).connect(ctx.destination);
    osc.start(startCtx + (i * beatMs) / 1000);
    osc.stop(startCtx + (i * beatMs) / 1000 + 0.06);
    clicks.push(startLocal + i * beatMs + 1000 * (ctx.outputLatency || 0));
  }
  await new Promise((r) => setTimeout(r, 500 + 8 * beatMs + 400));
  onset = null;
  const offsets = clicks
    .map((c) => heard.map((h) => h - c).filter((d) => d > -beatMs / 2 && d < beatMs / 2).sort((a, b) => Math.abs(a) - Math.abs(b))[0])
    .filter((d) => d !== undefined)
    .sort((a, b) => a - b);
  if (offsets.length >= 4) mic.calibrationMs = offsets[Math.floor(offsets.length / 2)];
  status();
  return offsets.length;
}

function status() {
  const el = $("mic-status");
  if (!el) return;
  el.textContent = mic.on
    ? `listening: detector ${mic.detectorMs.toFixed(0)} ms, input ${mic.inputLatencyMs.toFixed(0)} ms, ` +
      `calibration ${mic.calibrationMs.toFixed(0)} ms subtracted`
    : "";
  $("mic-btn").textContent = mic.on ? "Stop microphone" : "Use microphone";
  $("mic-calibrate").disabled = !mic.on;
}

function numberInput(id, key) {
  const input = $(id);
  input.value = mic[key];
  input.addEventListener("change", () => {
    const v = Number(input.value);
    if (Number.isFinite(v)) mic[key] = v;
  });
}

export function initMicrophone() {
  const btn = $("mic-btn");
  if (!btn) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    btn.disabled = true;
    $("mic-status").textContent = "The microphone is not available in this browser.";
    return;
  }
  btn.addEventListener("click", () => {
    if (mic.on) return stopMicrophone();
    startMicrophone().catch(() => ($("mic-status").textContent = "Microphone access was refused."));
  });
  $("mic-calibrate").addEventListener("click", () => calibrate());
  numberInput("mic-low", "low");
  numberInput("mic-high", "high");
  numberInput("mic-gate", "gateDb");
  numberInput("mic-transpose", "transpose");
  status();
}

/* Input: the computer keyboard (key map in music.js and the README), the on-screen piano and
 * Web MIDI inputs (with a device picker). Every note becomes a `local-note` page event
 * {type, pitch, velocity, stampLocalMs} — stamped when the key went down, not when handled.
 */

import { localMs } from "./clock.js";
import { KEY_LABELS, MAX_OCTAVE, MIN_OCTAVE, isBlack, keyPitch, parseMidiMessage, pitchName } from "./music.js";
import { unlock } from "./audio.js";
import { S, emit } from "./state.js";
import { $, el } from "./ui.js";

const PIANO_LOW = 36; // C2
const PIANO_HIGH = 96; // C7
const held = new Map(); // KeyboardEvent.code, pointer id or "midi:pitch" -> pitch
const keyEls = new Map(); // pitch -> element
const sounding = new Map(); // pitch -> Map(user_id -> colour)
export const input = { octave: 4, velocity: 90, midi: null, midiInput: "" };

function play(type, pitch, velocity, stamp) {
  if (pitch < 0 || pitch > 127) return;
  emit("local-note", { type, pitch, velocity: type === "on" ? velocity : 0, stampLocalMs: stamp });
}

/** The page-clock time of an input event (DOMHighResTimeStamp since timeOrigin). */
function eventStamp(ev) {
  const now = localMs();
  const ts = ev && ev.timeStamp ? performance.timeOrigin + ev.timeStamp : now;
  return Math.abs(ts - now) < 1000 ? ts : now;
}

function isTyping(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  if (tag === "textarea" || tag === "select" || target.isContentEditable) return true;
  return tag === "input" && !["checkbox", "range", "button", "radio", "file"].includes(target.type);
}

function onKeyDown(ev) {
  if (!S.roomId || isTyping(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const pitch = keyPitch(ev.code, input.octave);
  if (pitch !== null) {
    ev.preventDefault();
    if (ev.repeat || held.has(ev.code)) return;
    unlock();
    held.set(ev.code, pitch);
    play("on", pitch, input.velocity, eventStamp(ev));
    return;
  }
  if (ev.repeat) return;
  if (ev.code === "KeyZ") setOctave(input.octave - 1);
  else if (ev.code === "KeyX") setOctave(input.octave + 1);
  else if (ev.code === "KeyC") setVelocity(input.velocity - 20);
  else if (ev.code === "KeyV") setVelocity(input.velocity + 20);
  else return;
  ev.preventDefault();
}

function onKeyUp(ev) {
  const pitch = held.get(ev.code);
  if (pitch === undefined) return;
  ev.preventDefault();
  held.delete(ev.code);
  play("off", pitch, 0, eventStamp(ev));
}

/** Release every held key (window blur, leaving a room). */
export function releaseAll() {
  for (const pitch of held.values()) play("off", pitch, 0, localMs());
  held.clear();
}

export function setOctave(octave) {
  input.octave = Math.min(MAX_OCTAVE, Math.max(MIN_OCTAVE, octave));
  $("octave-label").textContent = pitchName(12 * (input.octave + 1));
  labelPiano();
}

export function setVelocity(velocity) {
  input.velocity = Math.min(127, Math.max(1, Math.round(velocity)));
  $("velocity").value = input.velocity;
  $("velocity-label").textContent = input.velocity;
}

// -- Web MIDI -----------------------------------------------------------------------------------

async function enableMidi() {
  const status = $("midi-status");
  if (!navigator.requestMIDIAccess) {
    status.textContent = "Web MIDI is not available in this browser.";
    return;
  }
  unlock();
  try {
    input.midi = await navigator.requestMIDIAccess({ sysex: false });
  } catch (err) {
    status.textContent = "MIDI access was refused.";
    return;
  }
  input.midi.onstatechange = listMidiInputs;
  listMidiInputs();
}

/** Fill the device picker; the chosen input (or all, "") feeds the room. */
function listMidiInputs() {
  const picker = $("midi-device");
  const inputs = [...input.midi.inputs.values()];
  picker.replaceChildren(
    el("option", { value: "" }, inputs.length ? "all MIDI inputs" : "no MIDI input connected"),
    ...inputs.map((i) => el("option", { value: i.id }, i.name || i.id)),
  );
  if (inputs.some((i) => i.id === input.midiInput)) picker.value = input.midiInput;
  picker.disabled = !inputs.length;
  attachMidi();
}

function attachMidi() {
  for (const i of input.midi.inputs.values()) {
    i.onmidimessage = !input.midiInput || i.id === input.midiInput ? onMidiMessage : null;
  }
  const count = [...input.midi.inputs.values()].filter((i) => i.onmidimessage).length;
  $("midi-status").textContent = count ? `listening to ${count} MIDI input${count > 1 ? "s" : ""}` : "";
}

function onMidiMessage(ev) {
  const msg = parseMidiMessage(ev.data);
  if (!msg) return;
  const id = "midi:" + msg.pitch;
  if (msg.type === "on") held.set(id, msg.pitch);
  else held.delete(id);
  play(msg.type, msg.pitch, msg.velocity, eventStamp(ev));
}

// -- the on-screen piano ------------------------------------------------------------------------

export function buildPiano() {
  const piano = $("piano");
  if (keyEls.size) return labelPiano();
  const whites = [];
  for (let p = PIANO_LOW; p <= PIANO_HIGH; p++) if (!isBlack(p)) whites.push(p);
  const w = 100 / whites.length;
  let whiteIndex = 0;
  for (let p = PIANO_LOW; p <= PIANO_HIGH; p++) {
    const black = isBlack(p);
    // Buttons with a name each, out of the tab order: the computer keyboard plays them.
    const key = el("button", {
      type: "button",
      tabindex: "-1",
      class: black ? "key black" : "key white",
      "data-pitch": p,
      "aria-label": pitchName(p),
      title: pitchName(p),
      style: black ? `left:${whiteIndex * w}%;width:${w * 0.62}%` : `width:${w}%`,
    });
    if (!black) whiteIndex++;
    if (p % 12 === 0) key.append(el("span", { class: "cname", "aria-hidden": "true" }, pitchName(p)));
    key.append(el("span", { class: "klabel", "aria-hidden": "true" }));
    keyEls.set(p, key);
    piano.append(key);
  }
  piano.addEventListener("pointerdown", (ev) => {
    const key = ev.target.closest(".key");
    if (!key) return;
    ev.preventDefault();
    unlock();
    const pitch = Number(key.dataset.pitch);
    const id = "ptr" + ev.pointerId;
    if (held.has(id)) play("off", held.get(id), 0, eventStamp(ev));
    held.set(id, pitch);
    play("on", pitch, input.velocity, eventStamp(ev));
  });
  const release = (ev) => {
    const id = "ptr" + ev.pointerId;
    if (!held.has(id)) return;
    play("off", held.get(id), 0, eventStamp(ev));
    held.delete(id);
  };
  window.addEventListener("pointerup", release);
  window.addEventListener("pointercancel", release);
  labelPiano();
  const box = piano.parentElement; // scrolls sideways on narrow screens: centre middle C
  box.scrollLeft = keyEls.get(60).offsetLeft - box.clientWidth / 2;
}

function labelPiano() {
  const base = 12 * (input.octave + 1);
  for (const [p, key] of keyEls) {
    const i = p - base;
    key.querySelector(".klabel").textContent = i >= 0 && i < KEY_LABELS.length ? KEY_LABELS[i] : "";
  }
}

export function soundingAdd(pitch, userId, color) {
  if (!sounding.has(pitch)) sounding.set(pitch, new Map());
  sounding.get(pitch).set(userId, color);
  paintKey(pitch);
}

export function soundingRemove(pitch, userId) {
  const who = sounding.get(pitch);
  if (!who) return;
  who.delete(userId);
  if (!who.size) sounding.delete(pitch);
  paintKey(pitch);
}

export function soundingClear() {
  const pitches = [...sounding.keys()];
  sounding.clear();
  pitches.forEach(paintKey);
}

function paintKey(pitch) {
  const key = keyEls.get(pitch);
  if (!key) return;
  const who = sounding.get(pitch);
  const me = S.user ? S.user.id : "me";
  key.classList.toggle("own", !!who && who.has(me));
  const partners = who ? [...who.entries()].filter(([u]) => u !== me) : [];
  key.classList.toggle("partner", partners.length > 0);
  if (partners.length) key.style.setProperty("--partner", partners[partners.length - 1][1]);
}

export function initInput() {
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("blur", releaseAll);
  $("oct-down").addEventListener("click", () => setOctave(input.octave - 1));
  $("oct-up").addEventListener("click", () => setOctave(input.octave + 1));
  $("velocity").addEventListener("input", (ev) => setVelocity(Number(ev.target.value)));
  $("midi-btn").addEventListener("click", () => enableMidi());
  $("midi-device").addEventListener("change", (ev) => {
    input.midiInput = ev.target.value;
    if (input.midi) attachMidi();
  });
  if (!navigator.requestMIDIAccess) {
    $("midi-btn").disabled = true;
    $("midi-status").textContent = "Web MIDI is not available in this browser.";
  }
  setOctave(input.octave);
  setVelocity(input.velocity);
}

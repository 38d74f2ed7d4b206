/* Practice tools in the room (README "Computer partner" and "Practice tools"): the host's
 * controls before the start — a computer partner (room:add_partner / room:remove_partner),
 * slow down (room:tempo, 25–150 %), a loop of bars with an optional tempo ladder (room:loop) —
 * the settings line every member sees, and during play the current pass and its tempo
 * (room:pass) and, in wait mode, what the room waits for (room:wait). Refusals from the
 * server's acks are shown in the card in plain words.
 */

import { call } from "./connection.js";
import { resetClicks } from "./audio.js";
import { pitchName } from "./music.js";
import { isHost, phase } from "./room.js";
import { S, nameOf, on } from "./state.js";
import { $, el, fmt, invalidate, onRender, pct, setMessage } from "./ui.js";

/** Plain words for the codes these controls can get back (README "Error codes"). */
const PLAIN = {
  invalid_bars: "Those bars are not in the piece.",
  invalid_repeats: "Repeats must be 1 to 100.",
  invalid_ladder:
    "That ladder cannot be climbed: it needs 25 % ≤ start ≤ target ≤ 150 %, a step above 0 and a minimum accuracy of 1–100 %.",
  invalid_tempo: "That tempo is out of reach.",
  out_of_range: "A value is out of range.",
  missing_field: "A field is missing.",
  wrong_type: "A field has the wrong kind of value.",
  practice_conflict: "Wait mode cannot be combined with a loop, a ladder or a recorded take.",
  practice_in_free_jam: "A free jam has no score to practise.",
  wait_mode_solo: "Wait mode needs exactly one human player (a computer partner may join).",
  partner_in_free_jam: "A free jam has no parts for a computer partner.",
  partner_exists: "This room already has a computer partner.",
  no_partner: "This room has no computer partner.",
  room_full: "The room is full.",
  part_taken: "That part already has a player.",
  no_free_part: "Every part already has a player.",
  unknown_part: "The piece has no such part.",
  already_started: "The piece has started: change this before the start.",
  not_host: "Only the host can change this.",
  room_finished: "The room has finished.",
};

/** `err` (a TuttiError from an ack) as a sentence for the page, with the server's detail. */
export function plainError(err) {
  const detail = err && err.message ? err.message.charAt(0).toUpperCase() + err.message.slice(1) : "";
  const lead = PLAIN[err && err.code];
  return lead ? `${lead} ${detail}${detail.endsWith(".") ? "" : "."} (${err.code})` : `${detail} (${(err && err.code) || "error"})`;
}

const box = () => $("practice-message");

function refused(err) {
  setMessage(box(), plainError(err), "error");
}

/** Run a practice call: clear the message, show the refusal in plain words. */
async function ask(event, payload, okText) {
  setMessage(box(), "");
  try {
    const ack = await call(event, payload);
    if (okText) setMessage(box(), okText(ack), "ok");
    return ack;
  } catch (err) {
    refused(err);
    return null;
  }
}

const num = (id) => Number($(id).value);

// -- the host's controls ------------------------------------------------------------------------

async function addPartner() {
  const ack = await ask(
    "room:add_partner",
    { room_id: S.roomId, part: $("partner-part").value || null, follow: $("partner-follow").checked },
    (a) => `A computer partner plays ${a.partner.part}${a.partner.follow ? ", following you" : ", at the room's tempo"}.`,
  );
  if (ack) S.partner = ack.partner;
  invalidate("practice", "members");
}

async function removePartner() {
  const ack = await ask("room:remove_partner", { room_id: S.roomId }, () => "The computer partner has left.");
  if (ack) S.partner = null;
  invalidate("practice", "members");
}

async function setTempo() {
  await ask("room:tempo", { room_id: S.roomId, tempo_pct: num("practice-tempo") }, (a) =>
    `The room plays at ${fmt(a.room.tempo_pct, 0)} % (${fmt(a.room.tempo_bpm, 0)} BPM).`,
  );
}

async function setLoop() {
  const to = $("loop-to").value.trim();
  const payload = {
    room_id: S.roomId,
    from_bar: num("loop-from"),
    to_bar: to === "" ? null : Number(to),
    repeats: num("loop-repeats"),
  };
  if ($("ladder-on").checked) {
    payload.ladder = {
      start_pct: num("ladder-start"),
      step_pct: num("ladder-step"),
      target_pct: num("ladder-target"),
      min_accuracy: num("ladder-accuracy") / 100,
    };
  }
  await ask("room:loop", payload, (a) => `The loop is set: bars ${a.room.practice.loop.from_bar}–${a.room.practice.loop.to_bar ?? "the end"}.`);
}

function syncLadderFields() {
  const onNow = $("ladder-on").checked;
  for (const id of ["ladder-start", "ladder-step", "ladder-target", "ladder-accuracy"]) $(id).disabled = !onNow;
}

let filledFor = null;

/** The inputs take the room's settings when the room opens (not while the host types). */
function fillInputs(room) {
  if (filledFor === room.room_id) return;
  filledFor = room.room_id;
  const p = room.practice || {};
  $("practice-tempo").value = fmt(p.tempo_pct ?? 100, 0);
  $("partner-follow").checked = true;
  if (p.loop) {
    $("loop-from").value = p.loop.from_bar;
    $("loop-to").value = p.loop.to_bar ?? "";
    $("loop-repeats").value = p.loop.repeats;
  }
  $("ladder-on").checked = !!p.ladder;
  if (p.ladder) {
    $("ladder-start").value = p.ladder.start_pct;
    $("ladder-step").value = p.ladder.step_pct;
    $("ladder-target").value = p.ladder.target_pct;
    $("ladder-accuracy").value = Math.round(p.ladder.min_accuracy * 100);
  }
  syncLadderFields();
  setMessage(box(), "");
}

// -- what everyone sees -----------------------------------------------------------------------

const partnerMember = (room) => (room.members || []).find((m) => m.bot) || null;

/** The room's practice settings in a line: tempo, loop, ladder, wait mode, partner. */
export function summary(room) {
  const p = room.practice || {};
  const bits = [`tempo ${fmt(room.tempo_pct ?? p.tempo_pct ?? 100, 0)} % (${fmt(room.tempo_bpm, 0)} BPM)`];
  if (p.loop) {
    const to = p.loop.to_bar ?? "the end";
    bits.push(`loop bars ${p.loop.from_bar}–${to}, ${p.loop.repeats} ${p.loop.repeats === 1 ? "pass" : "passes"}${p.ladder ? " at most" : ""}`);
  }
  if (p.ladder) {
    const l = p.ladder;
    bits.push(`ladder ${fmt(l.start_pct, 0)} → ${fmt(l.target_pct, 0)} % by ${fmt(l.step_pct, 0)} %, climbing at ≥ ${pct(l.min_accuracy)} accuracy`);
  }
  if (p.wait) bits.push("wait mode (the room waits for each note)");
  const bot = partnerMember(room);
  if (bot) bits.push(`computer partner on ${bot.part}${followText(bot.user_id)}`);
  return bits.join(" · ");
}

function followText(userId) {
  if (!S.partner || S.partner.user_id !== userId) return "";
  return S.partner.follow ? " (follows you)" : " (room tempo)";
}

/** The members table's cells for the computer partner. */
export function partnerLabel(member) {
  return `computer${followText(member.user_id)}`;
}

function renderPractice() {
  const room = S.room;
  const card = $("practice-card");
  if (!room || !room.piece_id) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  fillInputs(room);
  $("practice-summary").textContent = `Settings: ${summary(room)}.`;
  const canChange = isHost() && phase() === "waiting";
  $("practice-controls").hidden = !canChange;
  const bot = partnerMember(room);
  $("partner-add").hidden = !!bot;
  $("partner-remove").hidden = !bot;
  $("partner-part").disabled = !!bot;
  $("partner-follow").disabled = !!bot;
  const select = $("partner-part");
  const chosen = select.value;
  const free = (room.parts || []).filter((p) => !p.user_id);
  select.replaceChildren(
    el("option", { value: "" }, "any free part"),
    ...free.map((p) => el("option", { value: p.name }, p.name)),
  );
  if (free.some((p) => p.name === chosen)) select.value = chosen;
  const base = room.tempo_bpm && room.tempo_pct ? (room.tempo_bpm * 100) / room.tempo_pct : null;
  $("practice-tempo-bpm").textContent = base ? `100 % is ${fmt(base, 0)} BPM; 25–150 %.` : "";
  renderLive();
}

/** The current pass (room:pass) and, in wait mode, the chord the room waits for (room:wait). */
function renderLive() {
  const passBox = $("pass-status");
  const last = S.passes.at(-1);
  passBox.hidden = !last;
  if (last) {
    const bars = `bars ${last.loop.from_bar}–${last.loop.to_bar}`;
    const prev = last.previous
      ? ` Pass ${last.previous.pass}: ${Object.entries(last.previous.accuracy)
          .map(([u, a]) => `${nameOf(u)} ${pct(a)}`)
          .join(", ") || "no players"}.`
      : "";
    passBox.textContent = last.next
      ? `Pass ${last.next.pass} at ${fmt(last.next.tempo_pct, 0)} % (${fmt(last.next.tempo_bpm, 0)} BPM), ${bars}.${prev}`
      : `The loop is done after ${last.previous ? last.previous.pass : 0} passes.${prev}`;
    passBox.dataset.pass = last.next ? last.next.pass : "done";
  }
  const waitBox = $("wait-status");
  const waits = Object.values(S.wait);
  waitBox.hidden = waits.length === 0;
  waitBox.replaceChildren(...waits.map(waitLine));
}

function waitLine(w) {
  const who = S.user && w.user_id === S.user.id ? "you" : nameOf(w.user_id);
  const waited = w.waited_ms === null || w.waited_ms === undefined ? "" : ` (the last chord waited ${fmt(w.waited_ms / 1000, 1)} s)`;
  if (w.chord >= w.chords) return el("span", { "data-user": w.user_id }, `All ${w.chords} chords played${waited}.`);
  const pitches = w.pitches.map(pitchName).join(" + ");
  return el(
    "span",
    { "data-user": w.user_id, "data-chord": w.chord },
    `Waiting for ${who}: ${pitches} — chord ${w.chord + 1} of ${w.chords}, beat ${fmt(w.onset_beat + 1, 1)}${waited}.`,
  );
}

function onPass(data) {
  if (data.room_id !== S.roomId) return;
  S.passes.push(data);
  if (data.next && S.started) {
    // The next pass's clock: its count-in clicks and the beat display follow it.
    S.started = { ...S.started, start_at: data.next.start_at, tempo_bpm: data.next.tempo_bpm };
    resetClicks();
  }
  invalidate("practice", "buttons");
}

function onWait(data) {
  if (data.room_id !== S.roomId) return;
  S.wait[data.user_id] = data;
  invalidate("practice");
}

export function initPractice() {
  on("room:state:applied", () => invalidate("practice"));
  on("room:pass", onPass);
  on("room:wait", onWait);
  on("room:refused", refused);
  on("room:results", () => invalidate("practice"));
  onRender("practice", renderPractice);
  const submit = (fn) => (ev) => {
    ev.preventDefault();
    fn();
  };
  $("partner-form").addEventListener("submit", submit(addPartner));
  $("partner-remove").addEventListener("click", () => removePartner());
  $("tempo-form").addEventListener("submit", submit(setTempo));
  $("loop-form").addEventListener("submit", submit(setLoop));
  $("ladder-on").addEventListener("change", syncLadderFields);
}

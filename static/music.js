/* Music helpers shared by the input, the piano roll and the results. Pure. */

const NOTE_NAMES = ["C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B"];

/** MIDI note number → name with octave, middle C (60) = C4. */
export function pitchName(pitch) {
  return NOTE_NAMES[pitch % 12] + (Math.floor(pitch / 12) - 1);
}

/**
 * The computer keyboard's piano keys (KeyboardEvent.code, so layout-independent): the home row
 * plays white keys, the row above black ones, one and a half octaves from C to F — the key
 * map of the README's "Browser client" section.
 */
export const KEY_CODES = [
  "KeyA", "KeyW", "KeyS", "KeyE", "KeyD", "KeyF", "KeyT", "KeyG", "KeyY",
  "KeyH", "KeyU", "KeyJ", "KeyK", "KeyO", "KeyL", "KeyP", "Semicolon", "Quote",
];
export const KEY_LABELS = ["A", "W", "S", "E", "D", "F", "T", "G", "Y", "H", "U", "J", "K", "O", "L", "P", ";", "'"];
export const MIN_OCTAVE = 0;
export const MAX_OCTAVE = 8;

/** The MIDI pitch of a computer key at `octave` (4: A = C4 = 60), or null for other keys. */
export function keyPitch(code, octave) {
  const i = KEY_CODES.indexOf(code);
  return i < 0 ? null : 12 * (octave + 1) + i;
}

export const isBlack = (pitch) => [1, 3, 6, 8, 10].includes(pitch % 12);

/** A MIDI message → {type: "on"|"off", pitch, velocity}, or null for anything else. */
export function parseMidiMessage(data) {
  const [status, pitch, velocity] = data;
  const kind = status & 0xf0;
  if (kind === 0x90 && velocity > 0) return { type: "on", pitch, velocity };
  if (kind === 0x80 || (kind === 0x90 && velocity === 0)) return { type: "off", pitch, velocity: 0 };
  return null;
}

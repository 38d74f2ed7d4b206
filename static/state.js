/* The page's shared state and a small event bus between its modules. */

import { ClockEstimator, localMs } from "./clock.js";

export const S = {
  auth: null, // {kind: "guest" | "account", access, refresh, user}
  user: null,
  socket: null,
  presence: new Map(), // topic ("user:ID", "room:ID") -> canonical presence state
  clock: new ClockEstimator(9),
  pieces: [],
  roomId: null,
  joinedAs: null, // {role, part}
  room: null, // last room:state
  started: null, // room:started payload
  finished: null, // room:finished payload
  scores: {}, // user_id -> live result
  names: {}, // user_id -> display name (kept after members leave)
  colors: {}, // user_id -> colour
  lastNote: {}, // user_id -> {pitch, delay}
  transit: {}, // user_id -> recent transit delays of their notes, ms
  partner: null, // the computer partner as room:add_partner answered: {user_id, part, follow}
  passes: [], // room:pass payloads of this room, in order
  wait: {}, // user_id -> last room:wait payload
};

export const serverNow = () => S.clock.toServer(localMs());

const PALETTE = ["#e4572e", "#17bebb", "#ffc914", "#76b041", "#a06cd5", "#f78fb3", "#2e86de", "#ff8c42"];

export function colorOf(userId) {
  if (!(userId in S.colors)) S.colors[userId] = PALETTE[Object.keys(S.colors).length % PALETTE.length];
  return S.colors[userId];
}

export function nameOf(userId) {
  if (S.user && userId === S.user.id) return (S.names[userId] || S.user.display_name) + " (you)";
  return S.names[userId] || String(userId).slice(0, 8);
}

const handlers = new Map();

/** Subscribe to a page event (`room:state`, `note`, `connected`, `local-note`, …). */
export function on(event, fn) {
  if (!handlers.has(event)) handlers.set(event, []);
  handlers.get(event).push(fn);
}

export function emit(event, ...args) {
  for (const fn of handlers.get(event) || []) {
    try {
      fn(...args);
    } catch (err) {
      console.error(event, err);
    }
  }
}

/* The Socket.IO connection: handshake, acked calls, clock synchronisation, server events.
 *
 * Server events are re-emitted on the page bus (state.js `on`) under their own names;
 * `connected` and `disconnected` tell the page about the link itself.
 */

import { localMs } from "./clock.js";
import { describeDevice, randomHex, isAccount, isGuest, refreshIsDue, refreshTokens, loadAccount,
  switchTo, endSession, connectRefusal, AUTH_ERRORS, REFRESH_DEAD } from "./session.js";
import { S, emit } from "./state.js";
import { $, TuttiError, toast } from "./ui.js";

const CLOCK_INTERVAL_MS = 2000;
const CLOCK_BURST = 8;
const SERVER_EVENTS = [
  "room:state", "room:started", "room:finished", "score:update", "note", "notes", "room:pass", "room:wait",
  "presence:state", "presence:diff", "sync:poke",
];
let clockTimer = null;

export function deviceId() {
  let id = localStorage.getItem("tutti.device_id");
  if (!id) {
    id = randomHex(12);
    localStorage.setItem("tutti.device_id", id);
  }
  return id;
}

export function deviceName() {
  const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform;
  return describeDevice(navigator.userAgent, platform);
}

/** Emit with an ack; resolves with the ack, rejects with TuttiError on an error ack or timeout. */
export function call(event, data, timeoutMs = 8000) {
  return new Promise((resolve, reject) => {
    if (!S.socket || !S.socket.connected) return reject(new TuttiError("not_connected", "not connected to the server"));
    S.socket.timeout(timeoutMs).emit(event, data, (err, ack) => {
      if (err) return reject(new TuttiError("timeout", `no answer to ${event} from the server`));
      if (ack && ack.error) return reject(new TuttiError(ack.error.code, ack.error.message));
      resolve(ack);
    });
  });
}

export const isConnected = () => !!(S.socket && S.socket.connected);

function setConn(state, text) {
  const pill = $("conn-status");
  pill.dataset.state = state;
  pill.textContent = text || state;
}

function handshake(cb) {
  const send = () => cb({ token: S.auth ? S.auth.access : "", device_id: deviceId(), device_name: deviceName() });
  if (isAccount() && refreshIsDue(S.auth.access)) refreshTokens(S.auth.access).then(send, send);
  else send();
}

export function connect() {
  if (S.socket) S.socket.disconnect();
  const socket = window.io({ path: "/socket.io/", transports: ["websocket", "polling"], tryAllTransports: true, auth: handshake });
  S.socket = socket;
  setConn("connecting", "connecting…");
  // Events of a socket this tab has replaced (another login) change nothing.
  const on = (event, fn) => socket.on(event, (...args) => S.socket === socket && fn(...args));
  on("connect", async () => {
    setConn("online", "online");
    emit("connected");
    await syncClock(CLOCK_BURST);
    clearInterval(clockTimer);
    clockTimer = setInterval(() => clockExchange().catch(() => {}), CLOCK_INTERVAL_MS);
  });
  on("connect_error", (err) => onConnectError(socket, err));
  on("disconnect", (reason) => {
    clearInterval(clockTimer);
    setConn("offline", reason === "io client disconnect" ? "offline" : "offline — retrying");
    emit("disconnected", reason);
    if (reason === "io server disconnect") socket.connect();
  });
  for (const name of SERVER_EVENTS) on(name, (data) => emit(name, data));
}

export function disconnect() {
  if (S.socket) S.socket.disconnect();
  S.socket = null;
  clearInterval(clockTimer);
  setConn("offline", "offline");
  $("clock-status").textContent = "";
}

/** The server refused the handshake: refresh and retry, follow a merge, or end the session. */
async function onConnectError(socket, err) {
  const code = err && err.data && err.data.code;
  if (!AUTH_ERRORS.has(code)) {
    setConn("offline", "offline — retrying");
    return;
  }
  if (code === "token_expired" && isAccount()) {
    try {
      await refreshTokens(S.auth.access);
    } catch (refreshErr) {
      if (!REFRESH_DEAD.has(refreshErr.code)) setTimeout(() => S.socket === socket && socket.connect(), 10000);
      return;
    }
    if (S.socket === socket) socket.connect();
    return;
  }
  const account = isGuest() && loadAccount();
  if (account) {
    toast("You are logged in now: your guest practice moved to your account.");
    switchTo(account);
    return;
  }
  endSession(connectRefusal(code));
}

async function clockExchange() {
  const t0 = localMs();
  const ack = await call("clock", { t0, rtt_ms: S.clock.rttMs }, 5000);
  const t3 = localMs();
  try {
    S.clock.add(t0, ack.t1, ack.t2, t3);
  } catch (err) {
    return; // a clock stepped mid-exchange: drop the sample
  }
  const rtt = S.clock.rttMs;
  const offset = S.clock.offsetMs;
  $("clock-status").textContent = `RTT ${rtt.toFixed(1)} ms · offset ${offset >= 0 ? "+" : ""}${offset.toFixed(1)} ms`;
  emit("clock");
}

async function syncClock(samples) {
  for (let i = 0; i < samples; i++) {
    try {
      await clockExchange();
    } catch (err) {
      return;
    }
  }
}

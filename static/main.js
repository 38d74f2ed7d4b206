/* Tutti browser client: the entry module. Wires the modules (one job each) to the page:
 * session.js (who), connection.js (Socket.IO, clock), lobby.js, room.js, input.js, roll.js,
 * audio.js, practice.js (computer partner, loops, ladder, wait mode), results.js + passes.js,
 * logbook.js + store.js (offline logbook), and registers sw.js.
 */

import { initAudio, playout } from "./audio.js";
import { connect, disconnect, deviceId, deviceName } from "./connection.js";
import { initInput } from "./input.js";
import { initMicrophone, mic } from "./microphone.js";
import { enterLobby, initLobby, leaveLobby } from "./lobby.js";
import { initLogbook, logbook, syncNow } from "./logbook.js";
import { applyPresenceDiff, canonicalPresence, presenceMetas } from "./presence.js";
import { clearRoom, initRoom, leaveRoom } from "./room.js";
import { initPractice } from "./practice.js";
import { initResults } from "./results.js";
import { initNotation, score } from "./notation.js";
import { cursors, initCursors } from "./cursors.js";
import { initRoll, roll } from "./roll.js";
import {
  adopt, isAccount, loadAccount, loadGuest, loginTokenFromHash, logOut, onStorage, pendingLoginLink,
  playAsGuest, requestLink, takeLoginLink,
} from "./session.js";
import { S, on } from "./state.js";
import { $, el, guard, invalidate, onRender, setMessage, showError, toast } from "./ui.js";

function show(view) {
  $("login-view").hidden = view !== "login";
  $("lobby-view").hidden = view !== "lobby";
  $("room-view").hidden = view !== "room";
  $("me-view").hidden = view === "login";
  $("logout-btn").hidden = view === "login";
  $("who").textContent = S.user && view !== "login" ? S.user.display_name : "";
  document.documentElement.dataset.view = view; // lets tests and styles see the screen
  if (view === "lobby") enterLobby();
  else leaveLobby();
}

function enter() {
  if (!S.socket) connect();
  show("lobby");
  invalidate("devices");
}

// -- presence: this user's devices ------------------------------------------------------------

const STATUS_TEXT = { idle: "idle", practicing: "practicing", listening: "listening" };

function renderDevices() {
  const list = $("devices-list");
  const state = S.user ? S.presence.get("user:" + S.user.id) : null;
  $("this-device").textContent = deviceName();
  if (!state) {
    const connected = S.socket && S.socket.connected;
    list.replaceChildren(el("li", { class: "muted small" }, connected ? "…" : "offline: devices show once connected"));
    return;
  }
  list.replaceChildren(...presenceMetas(state, S.user.id).map(deviceItem));
}

function deviceItem(meta) {
  const here = meta.device_id === deviceId();
  let where = "";
  if (meta.room_id) where = ` in room ${meta.room_id === S.roomId && S.room && S.room.name ? S.room.name : meta.room_id}`;
  const since = new Date(S.clock.toClient(meta.online_at)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return el(
    "li",
    null,
    el("span", { class: "dot", "data-status": meta.status, title: STATUS_TEXT[meta.status] || meta.status }),
    " ",
    el("b", null, meta.device_name || meta.device_id),
    here ? el("span", { class: "muted" }, " (this device)") : null,
    el("div", { class: "muted small" }, `${STATUS_TEXT[meta.status] || meta.status}${where} · online since ${since}`),
  );
}

const invalidatePresence = (topic) => invalidate(topic.startsWith("user:") ? "devices" : "members");

function renderAccount() {
  const guest = !isAccount();
  $("account-guest").hidden = !guest;
  $("account-user").hidden = guest;
  if (!guest) $("account-email").textContent = S.user.email || S.user.display_name;
}

// -- start ------------------------------------------------------------------------------------

function takeLinkFromAddress() {
  const link = loginTokenFromHash(location.hash);
  if (link) history.replaceState(null, "", location.pathname + location.search);
  return link;
}

/** A login link in the address first, else this tab's guest, else the account. */
async function resume() {
  const link = takeLinkFromAddress();
  const session = loadGuest() || loadAccount();
  if (!link) {
    if (!session) return show("login");
    adopt(session);
    return enter();
  }
  show("login");
  const ok = await takeLoginLink(link, deviceId()).catch((err) => (showError(err), false));
  if (!ok && session) {
    adopt(session);
    enter();
    toast($("login-message").textContent, "error");
  }
}

function wire() {
  $("display-name").value = localStorage.getItem("tutti.display_name") || "";
  $("login-form").addEventListener("submit", guard(() => playAsGuest($("display-name").value.trim())));
  $("email-form").addEventListener("submit", guard(() => requestLink($("email").value.trim(), $("login-message"))));
  $("upgrade-form").addEventListener("submit", guard(() => requestLink($("upgrade-email").value.trim(), $("upgrade-message"))));
  $("verify-retry").addEventListener("click", guard(() => pendingLoginLink() && takeLoginLink(pendingLoginLink(), deviceId())));
  $("logout-btn").addEventListener("click", guard(async () => {
    await leaveRoom();
    await logOut();
  }));
  window.addEventListener("storage", onStorage);
  window.addEventListener("hashchange", () => {
    const link = takeLinkFromAddress();
    if (link) takeLoginLink(link, deviceId()).catch(showError);
  });

  on("view", show);
  on("session:adopted", renderAccount);
  on("session:enter", enter);
  on("session:teardown", () => {
    disconnect();
    S.presence.clear();
    clearRoom();
  });
  on("session:end", (message) => {
    show("login");
    setMessage($("login-message"), message, "error");
  });
  on("presence:state", (msg) => {
    S.presence.set(msg.topic, canonicalPresence(msg.state));
    invalidatePresence(msg.topic);
  });
  on("presence:diff", (msg) => {
    if (!S.presence.has(msg.topic)) return; // a diff before its state is in that state
    S.presence.set(msg.topic, applyPresenceDiff(S.presence.get(msg.topic), msg));
    invalidatePresence(msg.topic);
  });
  on("disconnected", () => {
    S.presence.clear(); // it comes again as a whole state on the next connect
    invalidate("devices", "members");
  });
  onRender("devices", renderDevices);
}

function boot() {
  wire();
  initAudio();
  initInput();
  initMicrophone();
  initRoll();
  initNotation();
  initCursors();
  initRoom();
  initPractice();
  initResults();
  initLobby();
  initLogbook();
  // For tests and the curious: the state and the modules' live objects.
  window.Tutti = { state: S, playout, roll, score, cursors, logbook, syncNow, mic };
  resume();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((err) => console.warn("no service worker", err));
  }
  document.documentElement.dataset.app = typeof window.io === "function" ? "ready" : "no-socketio";
}

boot();

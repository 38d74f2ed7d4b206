/* Who is playing: a guest or an e-mail account, its tokens, and REST calls made as them.
 *
 * A guest's token stays in its tab (sessionStorage: two tabs can be two guests, handy for a
 * duet on one machine). An account's pair is shared by every tab (localStorage). Refresh
 * tokens rotate, and presenting a spent one revokes the whole login (RFC 9700 §4.14.2), so
 * a tab never refreshes from its memory: it re-reads the stored pair under a lock shared by
 * the tabs, and follows the other tabs' rotations through storage events.
 *
 * Emits `session:adopted` (auth), `session:enter` (go to the lobby), `session:end` (message).
 */

import { S, emit, serverNow } from "./state.js";
import { TuttiError, $, setMessage, toast, showError } from "./ui.js";

// -- pure helpers (tested in Node) ---------------------------------------------------------

/** The `iat` and `exp` claims of a JWT as epoch ms ({issuedAt, expiresAt}), or null. */
export function tokenTimes(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    if (typeof claims.exp !== "number") return null;
    const exp = claims.exp * 1000;
    return { issuedAt: typeof claims.iat === "number" ? claims.iat * 1000 : exp, expiresAt: exp };
  } catch (err) {
    return null;
  }
}

/**
 * When (epoch ms, server clock) to renew an access token: `marginMs` before it expires, or a
 * fifth of its lifetime before when it lives shorter than five margins. Null without expiry.
 */
export function refreshDueMs(token, marginMs = 60000) {
  const times = tokenTimes(token);
  if (!times) return null;
  const lifetime = Math.max(0, times.expiresAt - times.issuedAt);
  return times.expiresAt - Math.min(marginMs, lifetime / 5);
}

/** The token of a login link's fragment (`#login=TOKEN`), or null. */
export function loginTokenFromHash(hash) {
  const token = new URLSearchParams(String(hash || "").replace(/^#/, "")).get("login");
  return token ? token : null;
}

/** A readable device name from a user agent ("Firefox on Linux"), shown in "Your devices". */
export function describeDevice(userAgent, platform) {
  const ua = String(userAgent || "");
  const browsers = [
    [/Edg\//, "Edge"], [/OPR\/|Opera/, "Opera"], [/Firefox\//, "Firefox"],
    [/Chrome\/|Chromium\/|CriOS\//, "Chrome"], [/Safari\//, "Safari"],
  ];
  const systems = [
    [/Android/, "Android"], [/iPhone|iPad|iPod/, "iOS"], [/Windows/, "Windows"],
    [/Mac OS X|Macintosh/, "macOS"], [/CrOS/, "ChromeOS"], [/Linux/, "Linux"],
  ];
  const find = (table) => (table.find(([re]) => re.test(ua)) || [])[1];
  const browser = find(browsers) || "Browser";
  const system = find(systems) || String(platform || "").trim();
  return (system ? `${browser} on ${system}` : browser).slice(0, 100);
}

/** `n` random hex digits (crypto.getRandomValues works outside secure contexts too). */
export function randomHex(n) {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, n);
}

// -- REST ------------------------------------------------------------------------------------

/** One request, `token` as a Bearer header; JSON body unless `body` is a Blob/ArrayBuffer. */
export async function request(method, path, body, token, { raw = false } = {}) {
  const opts = { method, headers: {} };
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    opts.body = body;
    opts.headers["Content-Type"] = "audio/midi";
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (token) opts.headers.Authorization = "Bearer " + token;
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (err) {
    throw new TuttiError("network_error", "cannot reach the server");
  }
  if (raw && resp.ok) return resp;
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const e = data.error || { code: "http_" + resp.status, message: resp.statusText };
    throw new TuttiError(e.code, e.message);
  }
  return data;
}

/** A request as this tab's user; an account's token is renewed when due or refused. */
export async function api(method, path, body, options) {
  if (isAccount() && refreshIsDue(S.auth.access)) await refreshTokens(S.auth.access);
  const token = S.auth ? S.auth.access : null;
  try {
    return await request(method, path, body, token, options);
  } catch (err) {
    if (err.code !== "token_expired" || !isAccount()) throw err;
    await refreshTokens(token);
    return request(method, path, body, S.auth.access, options);
  }
}

// -- stored sessions ---------------------------------------------------------------------------

const ACCOUNT_KEY = "tutti.account";
export const AUTH_ERRORS = new Set(["missing_token", "invalid_token", "token_expired", "unknown_user"]);
export const REFRESH_DEAD = new Set([
  "invalid_refresh_token", "refresh_reused", "refresh_revoked", "refresh_expired", "unknown_user",
]);
const REFRESH_RETRY_MS = 10000;
export const isAccount = () => !!S.auth && S.auth.kind === "account";
export const isGuest = () => !!S.auth && S.auth.kind === "guest";
let refreshTimer = null;

function readJson(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) || "null");
  } catch (err) {
    return null; // a damaged entry is as good as none
  }
}

export function loadGuest() {
  const access = sessionStorage.getItem("tutti.token");
  const user = readJson(sessionStorage, "tutti.user");
  return access && user ? { kind: "guest", access, refresh: null, user } : null;
}

export function loadAccount() {
  const stored = readJson(localStorage, ACCOUNT_KEY);
  if (!stored || !stored.access_token || !stored.refresh_token || !stored.user) return null;
  return { kind: "account", access: stored.access_token, refresh: stored.refresh_token, user: stored.user };
}

const accountFrom = (body) => ({ kind: "account", access: body.access_token, refresh: body.refresh_token, user: body.user });

function saveSession(auth) {
  if (auth.kind === "guest") {
    sessionStorage.setItem("tutti.token", auth.access);
    sessionStorage.setItem("tutti.user", JSON.stringify(auth.user));
  } else {
    const stored = { access_token: auth.access, refresh_token: auth.refresh, user: auth.user };
    localStorage.setItem(ACCOUNT_KEY, JSON.stringify(stored));
  }
}

function forgetSession(auth) {
  if (auth.kind === "guest") {
    sessionStorage.removeItem("tutti.token");
    sessionStorage.removeItem("tutti.user");
  } else {
    dropStoredPair(auth.refresh);
  }
}

function dropStoredPair(refresh) {
  const stored = loadAccount();
  if (stored && stored.refresh === refresh) localStorage.removeItem(ACCOUNT_KEY);
}

/** Make `auth` this tab's session (already stored) and keep its access token fresh. */
export function adopt(auth) {
  const changedUser = !S.user || S.user.id !== auth.user.id;
  S.auth = auth;
  S.user = auth.user;
  S.names[auth.user.id] = auth.user.display_name;
  scheduleRefresh();
  emit("session:adopted", auth, changedUser);
}

function teardown({ forget }) {
  clearTimeout(refreshTimer);
  emit("session:teardown");
  if (S.auth && forget) forgetSession(S.auth);
  S.auth = null;
  S.user = null;
}

/** Back to the login screen, saying why when it was not the user's choice. */
export function endSession(message) {
  teardown({ forget: true });
  emit("session:end", message || "");
}

/** Another account (or the same one, after a login link) takes this tab over. */
export function switchTo(auth) {
  teardown({ forget: isGuest() });
  adopt(auth);
  emit("session:enter");
}

const refreshIsDue = (token) => {
  const due = refreshDueMs(token);
  return due !== null && serverNow() >= due;
};
export { refreshIsDue };

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!isAccount()) return;
  const due = refreshDueMs(S.auth.access);
  if (due === null) return;
  // Every tab's timer is due at once: a random head start lets one go first, the others adopt.
  const wait = Math.max(0, due - serverNow());
  refreshTimer = setTimeout(renewInBackground, wait - Math.random() * Math.min(10000, wait / 5));
}

function renewInBackground() {
  if (!isAccount()) return;
  refreshTokens(S.auth.access).catch((err) => {
    if (!REFRESH_DEAD.has(err.code) && isAccount()) refreshTimer = setTimeout(renewInBackground, REFRESH_RETRY_MS);
  });
}

let refreshing = null;

/** Renew the account's tokens (one refresh at a time, across tabs with the Web Locks API). */
export function refreshTokens(stale) {
  if (!refreshing) {
    const run = () => renewStoredPair(stale);
    const done = navigator.locks ? navigator.locks.request("tutti.refresh", run) : run();
    refreshing = done.finally(() => (refreshing = null));
  }
  return refreshing;
}

const REFRESH_MESSAGES = {
  refresh_expired: "Your login has expired; please log in again.",
  refresh_reused: "Your login was ended for safety (an old token was used again); please log in again.",
  refresh_revoked: "You were logged out; please log in again.",
  default: "Your login is no longer valid; please log in again.",
};

async function renewStoredPair(stale) {
  const stored = loadAccount();
  if (!isAccount() || !stored || stored.user.id !== S.user.id) {
    const err = new TuttiError("refresh_revoked", "You were logged out in another tab.");
    if (isAccount()) endSession(err.message);
    throw err;
  }
  if (stored.access !== stale && !refreshIsDue(stored.access)) {
    adopt(stored); // another tab has renewed the pair meanwhile: ours is spent
    return;
  }
  let body;
  try {
    body = await request("POST", "/api/auth/refresh", { refresh_token: stored.refresh });
  } catch (err) {
    if (REFRESH_DEAD.has(err.code)) {
      dropStoredPair(stored.refresh);
      endSession(REFRESH_MESSAGES[err.code] || REFRESH_MESSAGES.default);
    }
    throw err;
  }
  const auth = accountFrom(body);
  saveSession(auth);
  adopt(auth);
}

/** Another tab changed the stored account: follow it, so this tab never uses a spent token. */
export function onStorage(ev) {
  if (ev.storageArea !== localStorage || (ev.key !== ACCOUNT_KEY && ev.key !== null)) return;
  if (!isAccount()) return;
  const stored = loadAccount();
  if (!stored) endSession("You were logged out in another tab.");
  else if (stored.user.id !== S.user.id) switchTo(stored);
  else adopt(stored);
}

export async function playAsGuest(displayName) {
  const body = await request("POST", "/api/auth/guest", { display_name: displayName });
  const auth = { kind: "guest", access: body.access_token, refresh: null, user: body.user };
  saveSession(auth);
  adopt(auth);
  localStorage.setItem("tutti.display_name", displayName);
  setMessage($("login-message"), "");
  emit("session:enter");
}

const LINK_REQUEST_ERRORS = {
  invalid_email: "That does not look like an e-mail address.",
  too_many_links: "Too many links went to this address lately; please wait a quarter of an hour.",
  mail_failed: "The server could not send the mail; please try again later.",
};

/** Ask for a login link; a guest's token goes along so its practice moves to the account. */
export async function requestLink(email, messageBox) {
  setMessage(messageBox, "Sending…");
  let body;
  try {
    body = await request("POST", "/api/auth/login", { email }, isGuest() ? S.auth.access : null);
  } catch (err) {
    setMessage(messageBox, LINK_REQUEST_ERRORS[err.code] || `${err.message} (${err.code})`, "error");
    return;
  }
  const minutes = Math.max(1, Math.round(body.expires_in / 60));
  setMessage(
    messageBox,
    `We sent a login link to ${body.email}: check your mail and open the link within ${minutes} minutes. ` +
      "(A server without SMTP writes the mail to its outbox folder, DATA_DIR/outbox, and the link to its log.)" +
      (isGuest() ? " Your guest practice moves to the account when you open it." : ""),
    "ok",
  );
}

const LINK_ERRORS = {
  guest_in_room: "Your guest is still playing in a room. Finish or leave that room, then try again: the link stays valid.",
  link_used: "This login link has already been used. Ask for a new one below.",
  link_expired: "This login link has expired (links work for 10 minutes). Ask for a new one below.",
  invalid_link: "This login link is not valid. Ask for a new one below.",
};

let pendingLink = null; // a link refused with guest_in_room stays valid: for "Try again"
export const pendingLoginLink = () => pendingLink;

/** Trade a login link's token for the account's tokens and enter as the account; true if done. */
export async function takeLoginLink(token, deviceId) {
  setMessage($("login-message"), "Checking your login link…");
  let body;
  try {
    body = await request("POST", "/api/auth/verify", { token, device_id: deviceId });
  } catch (err) {
    pendingLink = err.code === "guest_in_room" ? token : null;
    $("verify-retry").hidden = !pendingLink;
    const text = LINK_ERRORS[err.code] || `${err.message} (${err.code})`;
    setMessage($("login-message"), text, "error");
    if (S.auth) toast(text, "error");
    return false;
  }
  pendingLink = null;
  $("verify-retry").hidden = true;
  setMessage($("login-message"), "");
  const auth = accountFrom(body);
  saveSession(auth);
  switchTo(auth);
  if (body.merged) toast("Logged in: your guest practice is now in your account.");
  else toast(`Logged in as ${auth.user.display_name}.`);
  return true;
}

/** Leave deliberately: the account's login ends on the server too. */
export async function logOut() {
  if (isAccount()) {
    const stored = loadAccount();
    const refresh = stored && stored.user.id === S.user.id ? stored.refresh : S.auth.refresh;
    try {
      await request("POST", "/api/auth/logout", { refresh_token: refresh });
    } catch (err) {
      if (!REFRESH_DEAD.has(err.code)) showError(err);
    }
  }
  endSession();
}

/** The message shown when the server refuses this tab's token on connect. */
export function connectRefusal(code) {
  if (isAccount()) return "Your login is no longer valid; please log in again.";
  if (code === "unknown_user") {
    return "This guest has moved into an account (a login link was opened): log in with that e-mail to go on, or play as a new guest.";
  }
  return "Your guest pass is no longer valid; please enter again.";
}

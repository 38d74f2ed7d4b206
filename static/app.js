/* Tutti browser client: guest login, rooms, clock sync, keyboard/MIDI playing, scores.
 *
 * No build step and no dependencies beyond the vendored Socket.IO client
 * (static/vendor/socket.io.min.js, global `io`). The protocol is described in
 * server/events.py; the clock synchronisation mirrors rooms/clock.py.
 */
(function () {
  "use strict";

  // -- clock synchronisation (mirrors rooms/clock.py) --------------------------------------

  /** Median as Python's statistics.median: the mean of the middle two for an even count. */
  function median(values) {
    const xs = values.slice().sort((a, b) => a - b);
    const n = xs.length;
    if (n === 0) throw new RangeError("median of no values");
    const mid = n >> 1;
    return n % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  }

  /**
   * NTP-style clock estimate over the last `window` exchanges (RFC 5905, section 8).
   * t0/t3 on the client clock, t1/t2 on the server clock, all ms.
   *   offset = ((t1 - t0) + (t2 - t3)) / 2   (server - client)
   *   rtt    = (t3 - t0) - (t2 - t1)
   */
  class ClockEstimator {
    constructor(window = 9) {
      if (window < 1) throw new RangeError("window must be at least 1 sample");
      this.window = window;
      this.samples = [];
    }

    add(t0, t1, t2, t3) {
      if (t3 < t0) throw new RangeError(`t3 (${t3}) is before t0 (${t0}) on the client clock`);
      if (t2 < t1) throw new RangeError(`t2 (${t2}) is before t1 (${t1}) on the server clock`);
      this.samples.push({ offset: (t1 - t0 + (t2 - t3)) / 2, rtt: t3 - t0 - (t2 - t1) });
      while (this.samples.length > this.window) this.samples.shift();
    }

    get size() {
      return this.samples.length;
    }

    /** Median server-minus-client offset, ms (0 before any sample). */
    get offsetMs() {
      return this.samples.length ? median(this.samples.map((s) => s.offset)) : 0;
    }

    /** Median round-trip time, ms, or null before any sample. */
    get rttMs() {
      return this.samples.length ? median(this.samples.map((s) => s.rtt)) : null;
    }

    toServer(clientMs) {
      return clientMs + this.offsetMs;
    }

    toClient(serverMs) {
      return serverMs - this.offsetMs;
    }
  }

  // -- music helpers ------------------------------------------------------------------------

  const NOTE_NAMES = ["C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B"];

  /** MIDI note number → name with octave, middle C (60) = C4. */
  function pitchName(pitch) {
    return NOTE_NAMES[pitch % 12] + (Math.floor(pitch / 12) - 1);
  }

  /** Physical keys (KeyboardEvent.code, layout-independent) of one and a half octaves, C to F. */
  const KEY_CODES = [
    "KeyA", "KeyW", "KeyS", "KeyE", "KeyD", "KeyF", "KeyT", "KeyG", "KeyY",
    "KeyH", "KeyU", "KeyJ", "KeyK", "KeyO", "KeyL", "KeyP", "Semicolon", "Quote",
  ];
  const KEY_LABELS = ["A", "W", "S", "E", "D", "F", "T", "G", "Y", "H", "U", "J", "K", "O", "L", "P", ";", "'"];
  const MIN_OCTAVE = 0;
  const MAX_OCTAVE = 8;

  /** The MIDI pitch of a computer key at `octave` (4: A = C4 = 60), or null for other keys. */
  function keyPitch(code, octave) {
    const i = KEY_CODES.indexOf(code);
    return i < 0 ? null : 12 * (octave + 1) + i;
  }

  // -- presence (mirrors rooms/presence.py, Phoenix's syncState / syncDiff) ------------------

  /**
   * A copy of a presence state {key: {metas: [...]}} with each key's metas sorted by ref and
   * keys without metas dropped — the canonical form rooms/presence.py keeps, so a state here
   * equals the server's. Refs are compared as plain strings, like Python does.
   */
  function canonicalPresence(state) {
    const out = {};
    for (const [key, presence] of Object.entries(state || {})) {
      const metas = (presence.metas || []).map((m) => ({ ...m }));
      metas.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
      if (metas.length) out[key] = { metas };
    }
    return out;
  }

  /**
   * `state` after a presence:diff {joins, leaves}, as a new canonical state (`state` is kept).
   * Joins first, then leaves, as Phoenix does: a meta joins unless its ref is there already
   * (a diff may repeat what a state held), a leaving ref is dropped if present, and a user
   * with no metas left is gone — so a user leaves only when their last device does.
   */
  function applyPresenceDiff(state, diff) {
    const out = canonicalPresence(state);
    for (const [key, presence] of Object.entries((diff && diff.joins) || {})) {
      const metas = (out[key] = out[key] || { metas: [] }).metas;
      const refs = new Set(metas.map((m) => m.ref));
      for (const m of presence.metas || []) if (!refs.has(m.ref)) metas.push({ ...m });
    }
    for (const [key, presence] of Object.entries((diff && diff.leaves) || {})) {
      if (!out[key]) continue;
      const gone = new Set((presence.metas || []).map((m) => m.ref));
      out[key].metas = out[key].metas.filter((m) => !gone.has(m.ref));
    }
    return canonicalPresence(out);
  }

  /** The metas of `userId` in a topic state, newest device first (by online_at). */
  function presenceMetas(state, userId) {
    const metas = (state && state[userId] && state[userId].metas) || [];
    return metas.slice().sort((a, b) => (b.online_at || 0) - (a.online_at || 0));
  }

  // -- account helpers ---------------------------------------------------------------------

  /** The `iat` and `exp` claims of a JWT as epoch ms ({issuedAt, expiresAt}), or null. */
  function tokenTimes(token) {
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
   * fifth of its lifetime before when it lives shorter than five margins (a server configured
   * with very short tokens must not be asked for a new pair on every request). Null when the
   * token carries no expiry.
   */
  function refreshDueMs(token, marginMs = 60000) {
    const times = tokenTimes(token);
    if (!times) return null;
    const lifetime = Math.max(0, times.expiresAt - times.issuedAt);
    return times.expiresAt - Math.min(marginMs, lifetime / 5);
  }

  /** The token of a login link's fragment (`#login=TOKEN`), or null. */
  function loginTokenFromHash(hash) {
    const token = new URLSearchParams(String(hash || "").replace(/^#/, "")).get("login");
    return token ? token : null;
  }

  /** A readable device name from a user agent ("Firefox on Linux"), shown in "Your devices". */
  function describeDevice(userAgent, platform) {
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

  // -- practice log helpers ------------------------------------------------------------------

  const MAX_LOG_MINUTES = 7 * 24 * 60; // server/logbook.py MAX_DURATION_S

  /**
   * The body of POST /api/practice/quick-log (server/logbook_api.py, fields of
   * server/logbook.py): activity_type and duration_seconds are required, the server sets the
   * times (start = now − duration, on its clock) and the source; blank optional fields are
   * left out rather than sent as "". `id` is made here so a resend cannot log twice.
   */
  function quickLogBody({ minutes, activity, instrument, work, notes }, id) {
    const m = Number(minutes);
    if (!Number.isFinite(m) || m <= 0 || m > MAX_LOG_MINUTES) {
      throw new RangeError(`minutes must be more than 0 and at most ${MAX_LOG_MINUTES}`);
    }
    const body = { activity_type: activity || "other", duration_seconds: Math.round(m * 60) };
    if (id) body.id = id;
    const text = { instrument, work_title: work, notes };
    for (const [name, value] of Object.entries(text)) {
      const trimmed = String(value === null || value === undefined ? "" : value).trim();
      if (trimmed) body[name] = trimmed;
    }
    return body;
  }

  /** A practice duration for the log: "45 s", "25 min", "1 h 05 min". */
  function formatPracticeTime(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
    if (seconds < 60) return `${Math.round(seconds)} s`;
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
  }

  const exportsForTests = {
    median,
    ClockEstimator,
    pitchName,
    keyPitch,
    KEY_CODES,
    canonicalPresence,
    applyPresenceDiff,
    presenceMetas,
    tokenTimes,
    refreshDueMs,
    loginTokenFromHash,
    describeDevice,
    quickLogBody,
    formatPracticeTime,
  };
  if (typeof module !== "undefined" && module.exports) module.exports = exportsForTests;
  if (typeof document === "undefined") return; // loaded by a test runner, not a page

  // -- state ------------------------------------------------------------------------------------

  const PALETTE = ["#e4572e", "#17bebb", "#ffc914", "#76b041", "#a06cd5", "#f78fb3", "#2e86de", "#ff8c42"];
  const PIANO_LOW = 36; // C2
  const PIANO_HIGH = 96; // C7
  const CLOCK_INTERVAL_MS = 2000;
  const CLOCK_BURST = 8;
  const AUTH_ERRORS = new Set(["missing_token", "invalid_token", "token_expired", "unknown_user"]);
  // Refresh answers after which the login is over: back to the login screen.
  const REFRESH_DEAD = new Set([
    "invalid_refresh_token", "refresh_reused", "refresh_revoked", "refresh_expired", "unknown_user",
  ]);
  const REFRESH_RETRY_MS = 10000; // after a refresh failed for want of a network
  const LOG_LIST_LIMIT = 20;

  const S = {
    // {kind: "guest" | "account", access, refresh, user}; see loadGuest() and loadAccount().
    auth: null,
    user: null, // S.auth.user, kept apart because most of the page only needs this
    socket: null,
    refreshTimer: null,
    pendingLink: null, // a login link refused with guest_in_room (it stays valid): for "Try again"
    presence: new Map(), // topic ("user:ID", "room:ID") -> canonical presence state
    logs: [], // newest practice logs first (GET /api/practice/logs)
    logsTotal: 0,
    clock: new ClockEstimator(9),
    clockTimer: null,
    pieces: [],
    roomId: null,
    joinedAs: null, // {role, part, instrument}
    room: null, // last room:state
    started: null, // room:started payload
    finished: null, // room:finished payload
    scores: {}, // user_id -> live result
    names: {}, // user_id -> display name (kept after members leave)
    colors: {}, // user_id -> colour
    lastNote: {}, // user_id -> {pitch, delay}
    octave: 4,
    velocity: 90,
    held: new Map(), // KeyboardEvent.code or pointer id -> pitch
    sentOn: new Set(), // pitches whose note-on went to the server
    sounding: new Map(), // pitch -> Map(user_id -> colour)
    midi: null,
  };

  const $ = (id) => document.getElementById(id);
  const localMs = () => performance.timeOrigin + performance.now();
  const serverNow = () => S.clock.toServer(localMs());

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "style") node.style.cssText = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmt(value, digits = 0, unit = "") {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    return Number(value).toFixed(digits) + unit;
  }

  const pct = (x) => (x === null || x === undefined ? "—" : Math.round(x * 100) + "%");

  function colorOf(userId) {
    if (!(userId in S.colors)) {
      S.colors[userId] = PALETTE[Object.keys(S.colors).length % PALETTE.length];
    }
    return S.colors[userId];
  }

  function nameOf(userId) {
    if (S.user && userId === S.user.id) return (S.names[userId] || S.user.display_name) + " (you)";
    return S.names[userId] || userId.slice(0, 8);
  }

  // -- toasts and errors --------------------------------------------------------------------

  let toastTimer = null;
  let lastToast = { text: "", at: 0 };

  function toast(text, kind = "info") {
    const now = Date.now();
    if (text === lastToast.text && now - lastToast.at < 1500) return; // no flood
    lastToast = { text, at: now };
    const box = $("toast");
    box.textContent = text;
    box.dataset.kind = kind;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (box.hidden = true), kind === "error" ? 6000 : 3500);
  }

  class TuttiError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  function showError(err) {
    console.warn(err);
    toast(err instanceof TuttiError ? `${err.message} (${err.code})` : String(err.message || err), "error");
  }

  // -- REST ----------------------------------------------------------------------------------

  /** One JSON request, `token` as a Bearer header; rejects with TuttiError (the body's code). */
  async function request(method, path, body, token) {
    const opts = { method, headers: {} };
    if (body !== undefined) {
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
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const e = data.error || { code: "http_" + resp.status, message: resp.statusText };
      throw new TuttiError(e.code, e.message);
    }
    return data;
  }

  /**
   * A request as this tab's user. An account's access token lives minutes: it is renewed
   * first when due, and once more if the server still says token_expired (a client clock
   * running late).
   */
  async function api(method, path, body) {
    if (isAccount() && refreshIsDue(S.auth.access)) await refreshTokens(S.auth.access);
    const token = S.auth ? S.auth.access : null;
    try {
      return await request(method, path, body, token);
    } catch (err) {
      if (err.code !== "token_expired" || !isAccount()) throw err;
      await refreshTokens(token);
      return request(method, path, body, S.auth.access);
    }
  }

  // -- sessions: a guest or an account ---------------------------------------------------------
  //
  // A guest's token stays in its tab (sessionStorage: two tabs can be two guests, handy for a
  // duet on one machine). An account's pair is shared by every tab (localStorage). Refresh
  // tokens rotate, and presenting a spent one revokes the whole login (RFC 9700 §4.14.2), so
  // a tab never refreshes from its memory: it re-reads the stored pair under a lock shared by
  // the tabs, and follows the other tabs' rotations through storage events.

  const ACCOUNT_KEY = "tutti.account";
  const isAccount = () => !!S.auth && S.auth.kind === "account";
  const isGuest = () => !!S.auth && S.auth.kind === "guest";

  function readJson(storage, key) {
    try {
      return JSON.parse(storage.getItem(key) || "null");
    } catch (err) {
      return null; // a damaged entry is as good as none
    }
  }

  function loadGuest() {
    const access = sessionStorage.getItem("tutti.token");
    const user = readJson(sessionStorage, "tutti.user");
    return access && user ? { kind: "guest", access, refresh: null, user } : null;
  }

  function loadAccount() {
    const stored = readJson(localStorage, ACCOUNT_KEY);
    if (!stored || !stored.access_token || !stored.refresh_token || !stored.user) return null;
    return { kind: "account", access: stored.access_token, refresh: stored.refresh_token, user: stored.user };
  }

  /** An account session from a verify or refresh answer. */
  const accountFrom = (body) => ({
    kind: "account",
    access: body.access_token,
    refresh: body.refresh_token,
    user: body.user,
  });

  function saveSession(auth) {
    if (auth.kind === "guest") {
      sessionStorage.setItem("tutti.token", auth.access);
      sessionStorage.setItem("tutti.user", JSON.stringify(auth.user));
    } else {
      const stored = { access_token: auth.access, refresh_token: auth.refresh, user: auth.user };
      localStorage.setItem(ACCOUNT_KEY, JSON.stringify(stored));
    }
  }

  /** Drop the stored session `auth` (for an account: only while the stored pair is its own). */
  function forgetSession(auth) {
    if (auth.kind === "guest") {
      sessionStorage.removeItem("tutti.token");
      sessionStorage.removeItem("tutti.user");
    } else {
      dropStoredPair(auth.refresh);
    }
  }

  /** Remove the stored account if its refresh token is `refresh` (not a newer login's). */
  function dropStoredPair(refresh) {
    const stored = loadAccount();
    if (stored && stored.refresh === refresh) localStorage.removeItem(ACCOUNT_KEY);
  }

  /** Make `auth` this tab's session (already stored) and keep its access token fresh. */
  function adopt(auth) {
    S.auth = auth;
    S.user = auth.user;
    S.names[auth.user.id] = auth.user.display_name;
    scheduleRefresh();
    renderAccount();
  }

  /** Close this tab's session: socket, timers, room and per-user panels. */
  function teardown({ forget }) {
    if (S.socket) S.socket.disconnect();
    S.socket = null;
    clearInterval(S.clockTimer);
    clearTimeout(S.refreshTimer);
    if (S.auth && forget) forgetSession(S.auth);
    S.auth = null;
    S.user = null;
    S.presence.clear();
    S.logs = [];
    S.logsTotal = 0;
    clearRoom();
    setConn("offline", "offline");
    $("clock-status").textContent = "";
  }

  /** Back to the login screen, saying why when it was not the user's choice. */
  function endSession(message) {
    teardown({ forget: true });
    show("login");
    setMessage($("login-message"), message || "", "error");
  }

  /** Another account (or the same one, after a login link) takes this tab over. */
  function switchTo(auth) {
    teardown({ forget: isGuest() });
    adopt(auth);
    enterLobby();
  }

  const refreshIsDue = (token) => {
    const due = refreshDueMs(token);
    return due !== null && serverNow() >= due;
  };

  function scheduleRefresh() {
    clearTimeout(S.refreshTimer);
    if (!isAccount()) return;
    const due = refreshDueMs(S.auth.access);
    if (due === null) return;
    // Every tab holds the same token, so every tab's timer is due at the same moment. A random
    // head start lets one tab go first and the others adopt its pair (storage event) — what
    // keeps them from spending one refresh token twice where the Web Locks API is missing.
    const wait = Math.max(0, due - serverNow());
    S.refreshTimer = setTimeout(renewInBackground, wait - Math.random() * Math.min(10000, wait / 5));
  }

  function renewInBackground() {
    if (!isAccount()) return;
    refreshTokens(S.auth.access).catch((err) => {
      // A lost login has ended the session already; a network failure is tried again.
      if (!REFRESH_DEAD.has(err.code) && isAccount()) {
        S.refreshTimer = setTimeout(renewInBackground, REFRESH_RETRY_MS);
      }
    });
  }

  let refreshing = null;

  /**
   * Renew the account's tokens because `stale` (an access token) is due or was refused. One
   * refresh at a time in this tab, and across tabs with the Web Locks API where the page has
   * it (secure contexts; elsewhere re-reading the stored pair narrows the race).
   */
  function refreshTokens(stale) {
    if (!refreshing) {
      const run = () => renewStoredPair(stale);
      const done = navigator.locks ? navigator.locks.request("tutti.refresh", run) : run();
      refreshing = done.finally(() => (refreshing = null));
    }
    return refreshing;
  }

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
        dropStoredPair(stored.refresh); // dead for every tab: they follow through storage events
        endSession(REFRESH_MESSAGES[err.code] || REFRESH_MESSAGES.default);
      }
      throw err;
    }
    const auth = accountFrom(body);
    saveSession(auth);
    adopt(auth);
  }

  const REFRESH_MESSAGES = {
    refresh_expired: "Your login has expired; please log in again.",
    refresh_reused: "Your login was ended for safety (an old token was used again); please log in again.",
    refresh_revoked: "You were logged out; please log in again.",
    default: "Your login is no longer valid; please log in again.",
  };

  /** Another tab changed the stored account: follow it, so this tab never uses a spent token. */
  function onStorage(ev) {
    if (ev.storageArea !== localStorage || (ev.key !== ACCOUNT_KEY && ev.key !== null)) return;
    if (!isAccount()) return; // a guest tab stays a guest until its own token stops working
    const stored = loadAccount();
    if (!stored) endSession("You were logged out in another tab.");
    else if (stored.user.id !== S.user.id) switchTo(stored);
    else adopt(stored);
  }

  async function playAsGuest(displayName) {
    const body = await request("POST", "/api/auth/guest", { display_name: displayName });
    const auth = { kind: "guest", access: body.access_token, refresh: null, user: body.user };
    saveSession(auth);
    adopt(auth);
    localStorage.setItem("tutti.display_name", displayName);
    setMessage($("login-message"), "");
    enterLobby();
  }

  const LINK_REQUEST_ERRORS = {
    invalid_email: "That does not look like an e-mail address.",
    too_many_links: "Too many links went to this address lately; please wait a quarter of an hour.",
    mail_failed: "The server could not send the mail; please try again later.",
  };

  /**
   * Ask for a login link. A guest's token goes along: verifying the link then moves the
   * guest's practice to the account.
   */
  async function requestLink(email, messageBox) {
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
    guest_in_room:
      "Your guest is still playing in a room. Finish or leave that room, then try again: the link stays valid.",
    link_used: "This login link has already been used. Ask for a new one below.",
    link_expired: "This login link has expired (links work for 10 minutes). Ask for a new one below.",
    invalid_link: "This login link is not valid. Ask for a new one below.",
  };

  /** Trade a login link's token for the account's tokens and enter as the account; true if done. */
  async function takeLoginLink(token) {
    setMessage($("login-message"), "Checking your login link…");
    let body;
    try {
      body = await request("POST", "/api/auth/verify", { token, device_id: deviceId() });
    } catch (err) {
      // Only guest_in_room leaves the link usable: keep it for a retry.
      S.pendingLink = err.code === "guest_in_room" ? token : null;
      $("verify-retry").hidden = !S.pendingLink;
      const text = LINK_ERRORS[err.code] || `${err.message} (${err.code})`;
      setMessage($("login-message"), text, "error");
      if (S.auth) toast(text, "error"); // the login screen is not showing
      return false;
    }
    S.pendingLink = null;
    $("verify-retry").hidden = true;
    setMessage($("login-message"), "");
    const auth = accountFrom(body);
    saveSession(auth);
    switchTo(auth); // a guest of this tab was merged (or replaced): its token is dropped
    if (body.merged) toast("Logged in: your guest practice is now in your account.");
    else toast(`Logged in as ${auth.user.display_name}.`);
    return true;
  }

  /** Leave deliberately: the account's login ends on the server too. */
  async function logOut() {
    await leaveRoom();
    if (isAccount()) {
      try {
        await request("POST", "/api/auth/logout", { refresh_token: loadAccountRefresh() });
      } catch (err) {
        if (!REFRESH_DEAD.has(err.code)) showError(err);
      }
    }
    endSession();
  }

  /** The newest refresh token of this tab's login (another tab may have rotated it). */
  function loadAccountRefresh() {
    const stored = loadAccount();
    return stored && stored.user.id === S.user.id ? stored.refresh : S.auth.refresh;
  }

  // -- Socket.IO -----------------------------------------------------------------------------

  function deviceId() {
    let id = localStorage.getItem("tutti.device_id");
    if (!id) {
      id = randomHex(12);
      localStorage.setItem("tutti.device_id", id);
    }
    return id;
  }

  /** `n` random hex digits (crypto.getRandomValues works outside secure contexts too). */
  function randomHex(n) {
    const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, n);
  }

  function deviceName() {
    const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform;
    return describeDevice(navigator.userAgent, platform);
  }

  /** Emit with an ack; resolves with the ack, rejects with TuttiError on an error ack or timeout. */
  function call(event, data, timeoutMs = 8000) {
    return new Promise((resolve, reject) => {
      if (!S.socket) return reject(new TuttiError("not_connected", "not connected"));
      S.socket.timeout(timeoutMs).emit(event, data, (err, ack) => {
        if (err) return reject(new TuttiError("timeout", `no answer to ${event} from the server`));
        if (ack && ack.error) return reject(new TuttiError(ack.error.code, ack.error.message));
        resolve(ack);
      });
    });
  }

  function setConn(state, text) {
    const pill = $("conn-status");
    pill.dataset.state = state;
    pill.textContent = text || state;
  }

  /** The handshake's auth; an account's token is renewed first when due (saves a refusal). */
  function handshake(cb) {
    const send = () => cb({ token: S.auth ? S.auth.access : "", device_id: deviceId(), device_name: deviceName() });
    if (isAccount() && refreshIsDue(S.auth.access)) refreshTokens(S.auth.access).then(send, send);
    else send();
  }

  function connect() {
    if (S.socket) S.socket.disconnect();
    const socket = io({
      path: "/socket.io/",
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      auth: handshake,
    });
    S.socket = socket;
    setConn("connecting", "connecting…");
    // Events of a socket this tab has replaced (another login) change nothing.
    const on = (event, fn) => socket.on(event, (...args) => S.socket === socket && fn(...args));

    on("connect", async () => {
      setConn("online", "online");
      loadLogs().catch(console.warn); // pokes sent while offline were missed
      await syncClock(CLOCK_BURST);
      clearInterval(S.clockTimer);
      S.clockTimer = setInterval(() => clockExchange().catch(() => {}), CLOCK_INTERVAL_MS);
      if (S.roomId && S.joinedAs && !S.finished) rejoin();
    });
    on("connect_error", (err) => onConnectError(socket, err));
    on("disconnect", (reason) => {
      clearInterval(S.clockTimer);
      setConn("offline", reason === "io client disconnect" ? "offline" : "offline — retrying");
      // Presence comes again as a whole state on the next connect.
      S.presence.clear();
      invalidate("devices", "members");
      if (reason === "io server disconnect") socket.connect();
    });

    on("room:state", onRoomState);
    on("room:started", onRoomStarted);
    on("room:finished", onRoomFinished);
    on("score:update", onScoreUpdate);
    on("note", (d) => onPartnerNotes(d, [d]));
    on("notes", (d) => onPartnerNotes(d, d.events || []));
    on("presence:state", onPresenceState);
    on("presence:diff", onPresenceDiff);
    on("sync:poke", () => loadLogs().catch(console.warn));
  }

  /**
   * The server refused the handshake ({code, message}). A refused socket does not retry by
   * itself: after a refresh it is connected again here.
   */
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
        if (!REFRESH_DEAD.has(refreshErr.code)) setTimeout(() => S.socket === socket && socket.connect(), REFRESH_RETRY_MS);
        return;
      }
      if (S.socket === socket) socket.connect();
      return;
    }
    // A guest refused after another tab verified a login link was merged into that account.
    const account = isGuest() && loadAccount();
    if (account) {
      toast("You are logged in now: your guest practice moved to your account.");
      switchTo(account);
      return;
    }
    endSession(connectRefusal(code));
  }

  function connectRefusal(code) {
    if (isAccount()) return "Your login is no longer valid; please log in again.";
    if (code === "unknown_user") {
      return "This guest has moved into an account (a login link was opened): log in with that e-mail to go on, or play as a new guest.";
    }
    return "Your guest pass is no longer valid; please enter again.";
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
    renderClock();
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

  function renderClock() {
    const rtt = S.clock.rttMs;
    $("clock-status").textContent =
      rtt === null ? "" : `RTT ${rtt.toFixed(1)} ms · offset ${S.clock.offsetMs >= 0 ? "+" : ""}${S.clock.offsetMs.toFixed(1)} ms`;
  }

  // -- views ---------------------------------------------------------------------------------

  function show(view) {
    $("login-view").hidden = view !== "login";
    $("lobby-view").hidden = view !== "lobby";
    $("room-view").hidden = view !== "room";
    $("me-view").hidden = view === "login";
    $("logout-btn").hidden = view === "login";
    $("who").textContent = S.user && view !== "login" ? S.user.display_name : "";
    document.documentElement.dataset.view = view; // lets tests and styles see the screen
  }

  /** A status line under a form: `kind` "error", "ok" or plain; empty text hides it. */
  function setMessage(box, text, kind = "") {
    box.textContent = text;
    box.dataset.kind = kind;
    box.hidden = !text;
  }

  function enterLobby() {
    if (!S.socket) connect();
    show("lobby");
    loadPieces().catch(showError);
    loadLogs().catch(showError);
    invalidate("devices");
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("room")) {
      $("join-room-id").value = hash.get("room");
      $("join-room-id").focus();
    }
  }

  async function loadPieces() {
    const data = await api("GET", "/api/pieces");
    S.pieces = data.pieces || [];
    const tbody = $("pieces-table").querySelector("tbody");
    tbody.replaceChildren(
      ...S.pieces.map((p) =>
        el(
          "tr",
          { class: "clickable", title: "Use this piece for a new room", onclick: () => choosePiece(p.id) },
          el("td", null, p.title),
          el("td", null, p.composer || "—"),
          el("td", null, p.parts.map((part) => part.name).join(", ")),
          el("td", null, fmt(p.tempo_bpm, 0, " BPM")),
          el("td", null, formatDuration(p.duration_seconds)),
          el("td", null, p.difficulty + "/10"),
        ),
      ),
    );
    $("pieces-empty").hidden = S.pieces.length > 0;
    const select = $("create-piece");
    const chosen = select.value;
    select.replaceChildren(
      el("option", { value: "" }, "— none: free jam —"),
      ...S.pieces.map((p) => el("option", { value: p.id }, `${p.title}${p.composer ? " — " + p.composer : ""}`)),
    );
    if (S.pieces.some((p) => p.id === chosen)) select.value = chosen;
    onPieceChange();
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.round(seconds);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  const pieceById = (id) => S.pieces.find((p) => p.id === id) || null;

  function choosePiece(id) {
    $("create-piece").value = id;
    onPieceChange();
    $("create-piece").focus();
  }

  function onPieceChange() {
    const piece = pieceById($("create-piece").value);
    const mode = $("create-mode");
    if (!piece) mode.value = "free";
    else if (mode.value === "free") mode.value = piece.parts.length === 2 ? "duet" : "ensemble";
    mode.querySelector('option[value="duet"]').disabled = !piece || piece.parts.length < 2;
    mode.querySelector('option[value="ensemble"]').disabled = !piece;
    $("create-tempo").placeholder = piece ? `${Math.round(piece.tempo_bpm)} (piece)` : "120";
    const parts = $("create-part");
    parts.replaceChildren(
      el("option", { value: "" }, piece ? "any free part" : "— (free jam has no parts)"),
      ...(piece ? piece.parts.map((p) => el("option", { value: p.name }, `${p.name} (${p.notes} notes)`)) : []),
    );
    parts.disabled = !piece;
  }

  function onModeChange() {
    if ($("create-mode").value === "free") {
      $("create-piece").value = "";
      onPieceChange();
    }
  }

  async function createRoom() {
    const pieceId = $("create-piece").value || null;
    const tempo = $("create-tempo").value.trim();
    const body = {
      piece_id: pieceId,
      mode: $("create-mode").value,
      tempo_bpm: tempo === "" ? null : Number(tempo),
      count_in_beats: Number($("create-count-in").value || 0),
      name: $("create-name").value.trim(),
    };
    const created = await call("room:create", body);
    await joinRoom(created.room.room_id, "player", $("create-part").value || null);
  }

  async function joinRoom(roomId, role, part) {
    clearRoom();
    const joinedAs = { role, part: role === "player" ? part : null };
    const ack = await call("room:join", { room_id: roomId, ...joinedAs });
    S.roomId = roomId;
    S.joinedAs = joinedAs;
    history.replaceState(null, "", "#room=" + encodeURIComponent(roomId));
    onRoomState(ack.room);
    show("room");
    buildPiano();
    invalidate("all");
  }

  async function rejoin() {
    // After a reconnect the server has taken us out of the room; a player who
    // left mid-piece gets the same part back.
    const me = S.room && S.room.members.find((m) => m.user_id === S.user.id);
    const part = (me && me.part) || S.joinedAs.part;
    try {
      const ack = await call("room:join", { room_id: S.roomId, role: S.joinedAs.role, part });
      onRoomState(ack.room);
      toast("Reconnected to the room.");
    } catch (err) {
      if (err.code === "already_joined") return;
      showError(err);
      if (["unknown_room", "room_finished"].includes(err.code)) backToLobby();
    }
  }

  async function leaveRoom() {
    if (S.roomId && !S.finished) {
      try {
        await call("room:leave", { room_id: S.roomId });
      } catch (err) {
        if (!["not_in_room", "unknown_room"].includes(err.code)) showError(err);
      }
    }
    backToLobby();
  }

  function backToLobby() {
    clearRoom();
    history.replaceState(null, "", location.pathname);
    enterLobby();
  }

  function clearRoom() {
    releaseAll();
    S.roomId = null;
    S.joinedAs = null;
    S.room = null;
    S.started = null;
    S.finished = null;
    S.scores = {};
    S.lastNote = {};
    S.sounding.clear();
    S.sentOn.clear();
    // A room's presence is only sent to its members: what is kept of it would go stale.
    for (const topic of [...S.presence.keys()]) if (topic.startsWith("room:")) S.presence.delete(topic);
    $("note-log").replaceChildren();
    $("results-card").hidden = true;
    $("countin").classList.remove("counting", "pulse");
    lastBeatShown = null;
    lastPhase = null;
    nextClickBeat = null;
  }

  // -- room events ---------------------------------------------------------------------------

  function onRoomState(state) {
    if (!state || state.room_id !== S.roomId) return;
    S.room = state;
    for (const m of state.members) {
      S.names[m.user_id] = m.display_name;
      colorOf(m.user_id);
    }
    if (state.start_at && !S.started) {
      S.started = { room_id: state.room_id, start_at: state.start_at, tempo_bpm: state.tempo_bpm };
      resetClicks();
    }
    invalidate("room", "members", "buttons");
  }

  function onRoomStarted(data) {
    if (data.room_id !== S.roomId) return;
    S.started = data;
    resetClicks();
    invalidate("buttons", "hint");
  }

  function onScoreUpdate(data) {
    if (data.room_id !== S.roomId) return;
    S.scores[data.user_id] = data;
    invalidate("score");
  }

  function onRoomFinished(data) {
    if (data.room_id !== S.roomId) return;
    S.finished = data;
    releaseAll();
    for (const pitch of S.sounding.keys()) paintKey(pitch);
    S.sounding.clear();
    renderResults();
    invalidate("buttons", "hint", "members");
  }

  function onPartnerNotes(data, events) {
    if (data.room_id !== S.roomId || (S.user && data.user_id === S.user.id)) return;
    const now = serverNow();
    const color = colorOf(data.user_id);
    for (const e of events) {
      const delay = now - e.t;
      if (e.type === "on") {
        soundingAdd(e.pitch, data.user_id, color);
        if ($("sound-partners").checked) Synth.noteOn("p:" + data.user_id + ":" + e.pitch, e.pitch, e.velocity, "sine");
        S.lastNote[data.user_id] = { pitch: e.pitch, delay };
      } else {
        soundingRemove(e.pitch, data.user_id);
        Synth.noteOff("p:" + data.user_id + ":" + e.pitch);
      }
      logNote(data, e, delay, color);
    }
    invalidate("members");
  }

  function logNote(data, e, delay, color) {
    const list = $("note-log");
    const at = new Date(e.t);
    const stamp =
      at.toLocaleTimeString([], { hour12: false }) + "." + String(at.getMilliseconds()).padStart(3, "0");
    list.prepend(
      el(
        "li",
        { class: e.type },
        el("span", { class: "muted" }, stamp),
        " ",
        el("b", { style: `color:${color}` }, nameOf(data.user_id)),
        data.part ? el("span", { class: "muted" }, ` (${data.part})`) : null,
        ` ${pitchName(e.pitch)} ${e.type}`,
        e.type === "on" ? el("span", { class: "muted" }, ` v${e.velocity}`) : null,
        el("span", { class: "delay" }, ` ${delay >= 0 ? "+" : ""}${delay.toFixed(0)} ms`),
      ),
    );
    while (list.childElementCount > 40) list.lastElementChild.remove();
  }

  // -- presence: this user's devices, the room's members ----------------------------------------

  function onPresenceState(msg) {
    S.presence.set(msg.topic, canonicalPresence(msg.state));
    invalidatePresence(msg.topic);
  }

  function onPresenceDiff(msg) {
    // A diff that comes before its topic's state is in that state already.
    if (!S.presence.has(msg.topic)) return;
    S.presence.set(msg.topic, applyPresenceDiff(S.presence.get(msg.topic), msg));
    invalidatePresence(msg.topic);
  }

  const invalidatePresence = (topic) => invalidate(topic.startsWith("user:") ? "devices" : "members");

  /** The presence state of the room this tab is in, or null before it arrives. */
  const roomPresence = () => (S.roomId ? S.presence.get("room:" + S.roomId) || null : null);

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
    return el(
      "li",
      null,
      el("span", { class: "dot", "data-status": meta.status, title: STATUS_TEXT[meta.status] || meta.status }),
      " ",
      el("b", null, meta.device_name || meta.device_id),
      here ? el("span", { class: "muted" }, " (this device)") : null,
      el("div", { class: "muted small" }, deviceActivity(meta)),
    );
  }

  function deviceActivity(meta) {
    let where = "";
    if (meta.room_id) {
      const name = meta.room_id === S.roomId && S.room && S.room.name ? S.room.name : meta.room_id;
      where = ` in room ${name}`;
    }
    // online_at is on the server clock.
    const since = new Date(S.clock.toClient(meta.online_at)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return `${STATUS_TEXT[meta.status] || meta.status}${where} · online since ${since}`;
  }

  /** The members table's presence cell: the member's devices in this room and what they do. */
  function presenceCell(userId) {
    const metas = presenceMetas(roomPresence(), userId);
    if (!metas.length) return el("td", { class: "muted", title: "no device of this member is in the room" }, "offline");
    const detail = metas.map((m) => `${m.device_name || m.device_id}: ${STATUS_TEXT[m.status] || m.status}`);
    return el(
      "td",
      { title: detail.join("\n") },
      el("span", { class: "dot", "data-status": metas[0].status }),
      " ",
      STATUS_TEXT[metas[0].status] || metas[0].status,
      metas.length > 1 ? el("span", { class: "muted" }, ` · ${metas.length} devices`) : null,
    );
  }

  // -- account panel ---------------------------------------------------------------------------

  function renderAccount() {
    const guest = !isAccount();
    $("account-guest").hidden = !guest;
    $("account-user").hidden = guest;
    if (!guest) $("account-email").textContent = S.user.email || S.user.display_name;
  }

  // -- practice log ----------------------------------------------------------------------------

  let logsLoading = null;
  let logsAgain = false;

  /**
   * Fetch the newest logs (GET /api/practice/logs, newest first). Pokes come in bursts: one
   * request at a time, and one more after it when something asked meanwhile.
   */
  function loadLogs() {
    if (!S.auth) return Promise.resolve();
    if (logsLoading) {
      logsAgain = true;
      return logsLoading;
    }
    logsLoading = (async () => {
      do {
        logsAgain = false;
        const data = await api("GET", `/api/practice/logs?limit=${LOG_LIST_LIMIT}`);
        S.logs = data.logs || [];
        S.logsTotal = data.total || 0;
        renderLogs();
      } while (logsAgain && S.auth);
    })().finally(() => (logsLoading = null));
    return logsLoading;
  }

  let pendingLogId = null; // the id of an entry being sent: a resend after a failure is not a second entry

  async function submitQuickLog() {
    pendingLogId = pendingLogId || randomHex(32);
    const body = quickLogBody(
      {
        minutes: $("log-minutes").value,
        activity: $("log-activity").value,
        instrument: $("log-instrument").value,
        work: $("log-work").value,
        notes: $("log-notes").value,
      },
      pendingLogId,
    );
    try {
      await api("POST", "/api/practice/quick-log", body);
    } catch (err) {
      if (err.code !== "already_exists") throw err; // already_exists: the first try got through
    }
    pendingLogId = null;
    $("log-notes").value = ""; // the instrument and activity stay: the next entry likely shares them
    $("log-work").value = "";
    localStorage.setItem("tutti.instrument", $("log-instrument").value.trim());
    toast("Practice logged.");
    await loadLogs();
  }

  /** Labels of activity types, from the quick-log form's options (one list, in the page). */
  const activityLabel = (type) => {
    const option = [...$("log-activity").options].find((o) => o.value === type);
    return option ? option.textContent : type;
  };

  const SOURCE_LABELS = { room: "room", quick_log: "quick log", timer: "timer", manual: "manual" };

  function renderLogs() {
    $("log-empty").hidden = S.logs.length > 0;
    $("log-count").textContent = S.logsTotal > S.logs.length ? `newest ${S.logs.length} of ${S.logsTotal}` : "";
    $("log-list").replaceChildren(...S.logs.map(logItem));
  }

  function logItem(log) {
    const title = log.work_title || activityLabel(log.activity_type);
    const when = log.start_time
      ? new Date(log.start_time).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })
      : "—";
    const bits = [
      when,
      formatPracticeTime(log.duration_seconds),
      log.work_title ? activityLabel(log.activity_type) : null,
      log.part,
      log.instrument,
      log.accuracy_percentage !== null && log.accuracy_percentage !== undefined
        ? `accuracy ${Math.round(log.accuracy_percentage)}%`
        : null,
    ];
    return el(
      "li",
      { class: "log-entry", "data-source": log.source },
      el("div", null, el("b", null, title), " ", el("span", { class: "badge" }, SOURCE_LABELS[log.source] || log.source)),
      el("div", { class: "muted small" }, bits.filter(Boolean).join(" · ")),
      log.notes ? el("div", { class: "small log-notes" }, log.notes) : null,
    );
  }

  // -- rendering (coalesced per animation frame) ---------------------------------------------

  const dirty = new Set();
  let frameRequested = false;

  function invalidate(...parts) {
    for (const p of parts) dirty.add(p);
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(renderDirty);
    }
  }

  function renderDirty() {
    frameRequested = false;
    const all = dirty.has("all");
    if (dirty.has("devices")) renderDevices(); // not tied to a room
    if (!S.roomId) return dirty.clear();
    if (all || dirty.has("room")) renderRoomHead();
    if (all || dirty.has("members")) renderMembers();
    if (all || dirty.has("buttons") || dirty.has("room")) renderButtons();
    if (all || dirty.has("score")) renderScore();
    if (all || dirty.has("hint") || dirty.has("room")) renderHint();
    dirty.clear();
  }

  const isHost = () => S.room && S.user && S.room.host === S.user.id;
  const myRole = () => (S.joinedAs ? S.joinedAs.role : null);

  function phase() {
    if (S.finished) return "finished";
    if (!S.started) return S.room ? S.room.phase : "waiting";
    return serverNow() < S.started.start_at ? "counting_in" : "playing";
  }

  function renderRoomHead() {
    const r = S.room;
    if (!r) return;
    $("room-name").textContent = r.name || "Room";
    const bits = [r.mode, r.piece_title, `${fmt(r.tempo_bpm, 0)} BPM`, `count-in ${r.count_in_beats}`, phase()];
    $("room-meta").textContent = bits.filter(Boolean).join(" · ");
    const link = `${location.origin}/#room=${r.room_id}`;
    $("room-link").href = link;
    $("room-link").textContent = r.room_id;
    $("room-link").dataset.url = link;
  }

  function renderMembers() {
    const r = S.room;
    if (!r) return;
    const tbody = $("members-table").querySelector("tbody");
    tbody.replaceChildren(
      ...r.members.map((m) => {
        const last = S.lastNote[m.user_id];
        return el(
          "tr",
          null,
          el("td", null, el("span", { class: "swatch", style: `background:${colorOf(m.user_id)}` }), r.host === m.user_id ? " ★" : ""),
          el("td", { title: r.host === m.user_id ? "host" : null }, nameOf(m.user_id)),
          presenceCell(m.user_id),
          el("td", null, m.role),
          el("td", null, [m.part, m.instrument].filter(Boolean).join(" · ") || "—"),
          el("td", null, fmt(m.rtt_ms, 0, " ms")),
          el("td", null, last ? pitchName(last.pitch) : "—"),
          el("td", null, last ? fmt(last.delay, 0, " ms") : "—"),
        );
      }),
    );
  }

  function renderButtons() {
    const p = phase();
    $("start-btn").hidden = !(isHost() && p === "waiting");
    $("end-btn").hidden = !(isHost() && (p === "counting_in" || p === "playing"));
    $("leave-btn").hidden = !!S.finished;
  }

  function renderHint() {
    let text;
    if (myRole() === "spectator") text = "You are listening as a spectator: your keys sound only here.";
    else if (S.finished) text = "The room has finished.";
    else if (!S.started) text = "Warm up: your notes sound only here until the host starts.";
    else text = "You're on: every note you play goes to the room.";
    setPlayHint(text);
  }

  function setPlayHint(text) {
    let node = $("play-state");
    if (!node) {
      node = el("span", { id: "play-state", class: "play-state" });
      $("play-hint").prepend(node, " ");
    }
    node.textContent = text;
  }

  const SCORE_COLUMNS = [
    ["Player", (u, r) => nameOf(u)],
    ["Part", (u, r) => r.part || "—"],
    ["Played", (u, r) => r.notes_played],
    ["Matched", (u, r) => `${r.notes_matched}/${r.notes_expected}`],
    ["Accuracy", (u, r) => pct(r.accuracy)],
    ["Wrong", (u, r) => r.wrong_pitch],
    ["Extra", (u, r) => r.extra],
    ["Missed", (u, r) => r.missed],
    ["Timing", (u, r) => timing(r)],
    ["Tempo", (u, r) => fmt(r.tempo_bpm_played, 0, " BPM")],
  ];
  const FREE_COLUMNS = [
    ["Player", (u, r) => nameOf(u)],
    ["Notes played", (u, r) => r.notes_played],
  ];

  function timing(r) {
    if (r.onset_mean_ms === null || r.onset_mean_ms === undefined) return "—";
    const sign = r.onset_mean_ms >= 0 ? "+" : "";
    return `${sign}${r.onset_mean_ms.toFixed(0)} ± ${fmt(r.onset_std_ms, 0)} ms`;
  }

  function fillTable(table, columns, rows) {
    table.querySelector("thead").replaceChildren(el("tr", null, ...columns.map(([h]) => el("th", null, h))));
    table.querySelector("tbody").replaceChildren(
      ...rows.map(([userId, result]) =>
        el(
          "tr",
          null,
          ...columns.map(([, get], i) =>
            el("td", i === 0 ? { style: `border-left:4px solid ${colorOf(userId)}` } : null, get(userId, result)),
          ),
        ),
      ),
    );
  }

  function renderScore() {
    const rows = Object.entries(S.scores);
    $("score-empty").hidden = rows.length > 0;
    const free = S.room && S.room.mode === "free";
    fillTable($("score-table"), free ? FREE_COLUMNS : SCORE_COLUMNS, rows);
  }

  const REASONS = {
    piece_ended: "The piece has ended.",
    host_ended: "The host ended the room.",
    all_left: "Every player left.",
    server_shutdown: "The server shut down.",
  };

  function renderResults() {
    const f = S.finished;
    const free = S.room && S.room.mode === "free";
    const judgements = (u, r) =>
      r.judgements ? ["perfect", "great", "good", "poor"].map((k) => r.judgements[k] || 0).join(" / ") : "—";
    const columns = free
      ? [...FREE_COLUMNS, ["Complete", (u, r) => (r.complete ? "yes" : "no")]]
      : [
          ...SCORE_COLUMNS.slice(0, 5),
          ["F1", (u, r) => fmt(r.f1, 2)],
          ["Perfect / great / good / poor", judgements],
          ...SCORE_COLUMNS.slice(5),
          ["Asynchrony", (u, r) => fmt(r.asynchrony_ms, 1, " ms")],
          ["Complete", (u, r) => (r.complete ? "yes" : "no")],
        ];
    fillTable($("results-table"), columns, Object.entries(f.results || {}));
    const summary = $("results-summary");
    const base = `/api/sessions/${encodeURIComponent(f.session_id)}`;
    summary.replaceChildren(
      REASONS[f.reason] || "The room has finished.",
      f.asynchrony_ms !== null && f.asynchrony_ms !== undefined
        ? ` Ensemble asynchrony: ${f.asynchrony_ms.toFixed(1)} ms.`
        : "",
      " ",
      el("a", { href: base, target: "_blank" }, "Session record (JSON)"),
      " · ",
      el("a", { href: base + "/recording.mid", download: "tutti-recording.mid" }, "Download the recording (MIDI)"),
    );
    const card = $("results-card");
    card.hidden = false;
    if (card.scrollIntoView) card.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  // -- count-in, beat display and clicks -------------------------------------------------------

  function beatsPerBar() {
    const piece = S.room && pieceById(S.room.piece_id);
    const sig = piece && /^(\d+)\//.exec(piece.time_signature || "");
    return sig ? Math.max(1, Number(sig[1])) : 4;
  }

  let lastBeatShown = null;
  let lastPhase = null;

  function tick() {
    requestAnimationFrame(tick);
    if (!S.roomId) return;
    const big = $("countin");
    const small = $("beat-display");
    let text = "—";
    let sub = "waiting for the host to start";
    let beat = null;
    if (S.finished) {
      text = "Fine";
      sub = "";
    } else if (S.started) {
      const beatMs = 60000 / S.started.tempo_bpm;
      const countIn = S.room ? S.room.count_in_beats : 0;
      const now = serverNow();
      const k = Math.floor((now - S.started.start_at) / beatMs); // beat index, 0 = downbeat
      if (k < -countIn) {
        text = "…";
        sub = `get ready: ${((S.started.start_at - countIn * beatMs - now) / 1000).toFixed(1)} s`;
      } else if (k < 0) {
        beat = k;
        text = String(countIn + k + 1);
        sub = `count-in, ${countIn} beats`;
      } else {
        beat = k;
        const per = beatsPerBar();
        text = k === 0 ? "Go!" : `${Math.floor(k / per) + 1}.${(k % per) + 1}`;
        sub = `bar.beat at ${fmt(S.started.tempo_bpm, 0)} BPM`;
      }
    }
    const p = phase();
    if (p !== lastPhase) {
      lastPhase = p;
      invalidate("room", "buttons");
    }
    if (big.textContent !== text) big.textContent = text;
    if (small.textContent !== sub) small.textContent = sub;
    if (beat !== null && beat !== lastBeatShown) {
      lastBeatShown = beat;
      big.classList.remove("pulse");
      void big.offsetWidth; // restart the animation
      big.classList.add("pulse");
      big.classList.toggle("counting", beat < 0);
    }
  }

  let nextClickBeat = null;

  function resetClicks() {
    nextClickBeat = null;
  }

  function scheduleClicks() {
    if (!S.started || S.finished || !Synth.ctx) return;
    const beatMs = 60000 / S.started.tempo_bpm;
    const countIn = S.room ? S.room.count_in_beats : 0;
    const now = serverNow();
    if (nextClickBeat === null) nextClickBeat = Math.max(-countIn, Math.ceil((now - S.started.start_at) / beatMs));
    const per = beatsPerBar();
    for (;;) {
      const at = S.started.start_at + nextClickBeat * beatMs;
      if (at > now + 150) break;
      if (at >= now - 20) {
        const counting = nextClickBeat < 0;
        const wanted = counting ? $("sound-click").checked : $("sound-metronome").checked;
        const accent = counting ? nextClickBeat === -countIn : nextClickBeat % per === 0;
        if (wanted) Synth.click(S.clock.toClient(at), accent);
      }
      nextClickBeat++;
    }
  }

  // -- sound (optional; nothing else depends on it) ----------------------------------------------

  const Synth = {
    ctx: null,
    master: null,
    voices: new Map(),

    /** Create or resume the AudioContext; call from a user gesture. */
    unlock() {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return null;
      if (!this.ctx) {
        this.ctx = new AC({ latencyHint: "interactive" });
        this.master = this.ctx.createGain();
        this.master.gain.value = 0.3;
        this.master.connect(this.ctx.destination);
      }
      if (this.ctx.state === "suspended") this.ctx.resume();
      return this.ctx;
    },

    noteOn(key, pitch, velocity, wave) {
      const ctx = this.ctx;
      if (!ctx) return;
      this.noteOff(key);
      const now = ctx.currentTime;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const peak = 0.08 + 0.4 * (velocity / 127);
      osc.type = wave;
      osc.frequency.value = 440 * Math.pow(2, (pitch - 69) / 12);
      gain.gain.setValueAtTime(0.0001, now);
      gain.gain.exponentialRampToValueAtTime(peak, now + 0.006);
      gain.gain.exponentialRampToValueAtTime(peak * 0.35, now + 0.4);
      osc.connect(gain).connect(this.master);
      osc.start(now);
      const voice = { osc, gain, timer: setTimeout(() => this.noteOff(key), 8000) };
      this.voices.set(key, voice);
    },

    noteOff(key) {
      const voice = this.voices.get(key);
      if (!voice) return;
      this.voices.delete(key);
      clearTimeout(voice.timer);
      const now = this.ctx.currentTime;
      voice.gain.gain.cancelScheduledValues(now);
      voice.gain.gain.setValueAtTime(Math.max(voice.gain.gain.value, 0.0001), now);
      voice.gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.12);
      voice.osc.stop(now + 0.15);
    },

    /** A metronome click at `atLocalMs` (page clock, ms). */
    click(atLocalMs, accent) {
      const ctx = this.ctx;
      if (!ctx) return;
      const when = ctx.currentTime + Math.max(0, (atLocalMs - localMs()) / 1000);
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = accent ? 1760 : 1320;
      gain.gain.setValueAtTime(0.0001, when);
      gain.gain.exponentialRampToValueAtTime(accent ? 0.35 : 0.2, when + 0.002);
      gain.gain.exponentialRampToValueAtTime(0.0001, when + 0.04);
      osc.connect(gain).connect(this.master);
      osc.start(when);
      osc.stop(when + 0.05);
    },
  };

  // -- playing: keys, pointer, MIDI -------------------------------------------------------------

  const canSend = () =>
    S.roomId && myRole() === "player" && S.started && !S.finished && S.socket && S.socket.connected;

  /** A note from this page (keyboard, mouse or MIDI). `stampLocalMs` is on the page clock. */
  function playLocal(type, pitch, velocity, stampLocalMs) {
    if (!S.roomId || pitch < 0 || pitch > 127) return;
    const me = S.user ? S.user.id : "me";
    if (type === "on") {
      soundingAdd(pitch, me, colorOf(me));
      if ($("sound-own").checked) Synth.noteOn("me:" + pitch, pitch, velocity, "triangle");
    } else {
      soundingRemove(pitch, me);
      Synth.noteOff("me:" + pitch);
    }
    if (!canSend()) return;
    if (type === "off" && !S.sentOn.has(pitch)) return;
    if (type === "on") S.sentOn.add(pitch);
    else S.sentOn.delete(pitch);
    enqueueNote({ type, pitch, velocity: type === "on" ? velocity : 0, t: S.clock.toServer(stampLocalMs) });
  }

  // Events of one task (a chord from MIDI, say) go out as one `notes` batch.
  let outbox = [];
  let flushQueued = false;

  function enqueueNote(event) {
    outbox.push(event);
    if (!flushQueued) {
      flushQueued = true;
      queueMicrotask(flushNotes);
    }
  }

  function flushNotes() {
    flushQueued = false;
    const events = outbox;
    outbox = [];
    const roomId = S.roomId;
    for (let i = 0; i < events.length; i += 64) {
      const chunk = events.slice(i, i + 64);
      const sent =
        chunk.length === 1
          ? call("note", { room_id: roomId, ...chunk[0] }, 5000)
          : call("notes", { room_id: roomId, events: chunk }, 5000);
      sent.catch((err) => {
        if (S.finished || roomId !== S.roomId) return; // the room ended under the note
        showError(err);
      });
    }
  }

  function releaseAll() {
    for (const pitch of S.held.values()) playLocal("off", pitch, 0, localMs());
    S.held.clear();
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
    return tag === "input" && !["checkbox", "range", "button", "radio"].includes(target.type);
  }

  function onKeyDown(ev) {
    if (!S.roomId || isTyping(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const pitch = keyPitch(ev.code, S.octave);
    if (pitch !== null) {
      ev.preventDefault();
      if (ev.repeat || S.held.has(ev.code)) return;
      Synth.unlock();
      S.held.set(ev.code, pitch);
      playLocal("on", pitch, S.velocity, eventStamp(ev));
      return;
    }
    if (ev.repeat) return;
    if (ev.code === "KeyZ") setOctave(S.octave - 1);
    else if (ev.code === "KeyX") setOctave(S.octave + 1);
    else if (ev.code === "KeyC") setVelocity(S.velocity - 20);
    else if (ev.code === "KeyV") setVelocity(S.velocity + 20);
    else return;
    ev.preventDefault();
  }

  function onKeyUp(ev) {
    const pitch = S.held.get(ev.code);
    if (pitch === undefined) return;
    ev.preventDefault();
    S.held.delete(ev.code);
    playLocal("off", pitch, 0, eventStamp(ev));
  }

  function setOctave(octave) {
    S.octave = Math.min(MAX_OCTAVE, Math.max(MIN_OCTAVE, octave));
    $("octave-label").textContent = pitchName(12 * (S.octave + 1));
    labelPiano();
  }

  function setVelocity(velocity) {
    S.velocity = Math.min(127, Math.max(1, Math.round(velocity)));
    $("velocity").value = S.velocity;
    $("velocity-label").textContent = S.velocity;
  }

  async function enableMidi() {
    const status = $("midi-status");
    if (!navigator.requestMIDIAccess) {
      status.textContent = "Web MIDI is not available in this browser.";
      return;
    }
    Synth.unlock();
    try {
      S.midi = await navigator.requestMIDIAccess({ sysex: false });
    } catch (err) {
      status.textContent = "MIDI access was refused.";
      return;
    }
    const attach = () => {
      const names = [];
      for (const input of S.midi.inputs.values()) {
        input.onmidimessage = onMidiMessage;
        names.push(input.name);
      }
      status.textContent = names.length ? "MIDI: " + names.join(", ") : "MIDI: no input device connected";
    };
    S.midi.onstatechange = attach;
    attach();
  }

  function onMidiMessage(ev) {
    const [status, pitch, velocity] = ev.data;
    const kind = status & 0xf0;
    if (kind === 0x90 && velocity > 0) playLocal("on", pitch, velocity, eventStamp(ev));
    else if (kind === 0x80 || (kind === 0x90 && velocity === 0)) playLocal("off", pitch, 0, eventStamp(ev));
  }

  // -- the on-screen piano ---------------------------------------------------------------------

  const keyEls = new Map(); // pitch -> element
  const isBlack = (pitch) => [1, 3, 6, 8, 10].includes(pitch % 12);

  function buildPiano() {
    const piano = $("piano");
    if (keyEls.size) return labelPiano();
    const whites = [];
    for (let p = PIANO_LOW; p <= PIANO_HIGH; p++) if (!isBlack(p)) whites.push(p);
    const w = 100 / whites.length;
    let whiteIndex = 0;
    for (let p = PIANO_LOW; p <= PIANO_HIGH; p++) {
      const black = isBlack(p);
      const key = el("div", {
        class: black ? "key black" : "key white",
        "data-pitch": p,
        title: pitchName(p),
        style: black ? `left:${whiteIndex * w}%;width:${w * 0.62}%` : `width:${w}%`,
      });
      if (!black) whiteIndex++;
      if (p % 12 === 0) key.append(el("span", { class: "cname" }, pitchName(p)));
      key.append(el("span", { class: "klabel" }));
      keyEls.set(p, key);
      piano.append(key);
    }
    piano.addEventListener("pointerdown", (ev) => {
      const key = ev.target.closest(".key");
      if (!key) return;
      ev.preventDefault();
      Synth.unlock();
      const pitch = Number(key.dataset.pitch);
      const id = "ptr" + ev.pointerId;
      if (S.held.has(id)) playLocal("off", S.held.get(id), 0, eventStamp(ev));
      S.held.set(id, pitch);
      playLocal("on", pitch, S.velocity, eventStamp(ev));
    });
    const release = (ev) => {
      const id = "ptr" + ev.pointerId;
      if (!S.held.has(id)) return;
      playLocal("off", S.held.get(id), 0, eventStamp(ev));
      S.held.delete(id);
    };
    window.addEventListener("pointerup", release);
    window.addEventListener("pointercancel", release);
    labelPiano();
    const box = piano.parentElement; // scrolls sideways on narrow screens: centre middle C
    box.scrollLeft = keyEls.get(60).offsetLeft - box.clientWidth / 2;
  }

  function labelPiano() {
    const base = 12 * (S.octave + 1);
    for (const [p, key] of keyEls) {
      const i = p - base;
      key.querySelector(".klabel").textContent = i >= 0 && i < KEY_LABELS.length ? KEY_LABELS[i] : "";
    }
  }

  function soundingAdd(pitch, userId, color) {
    if (!S.sounding.has(pitch)) S.sounding.set(pitch, new Map());
    S.sounding.get(pitch).set(userId, color);
    paintKey(pitch);
  }

  function soundingRemove(pitch, userId) {
    const who = S.sounding.get(pitch);
    if (!who) return;
    who.delete(userId);
    if (!who.size) S.sounding.delete(pitch);
    paintKey(pitch);
  }

  function paintKey(pitch) {
    const key = keyEls.get(pitch);
    if (!key) return;
    const who = S.sounding.get(pitch);
    const me = S.user ? S.user.id : "me";
    key.classList.toggle("own", !!who && who.has(me));
    const partners = who ? [...who.entries()].filter(([u]) => u !== me) : [];
    key.classList.toggle("partner", partners.length > 0);
    if (partners.length) key.style.setProperty("--partner", partners[partners.length - 1][1]);
  }

  // -- wiring ----------------------------------------------------------------------------------

  function guard(fn) {
    return (ev) => {
      if (ev && ev.preventDefault) ev.preventDefault();
      Synth.unlock();
      Promise.resolve()
        .then(fn)
        .catch(showError);
    };
  }

  function wireAccount() {
    $("display-name").value = localStorage.getItem("tutti.display_name") || "";
    $("login-form").addEventListener("submit", guard(() => playAsGuest($("display-name").value.trim())));
    $("email-form").addEventListener("submit", guard(() => requestLink($("email").value.trim(), $("login-message"))));
    $("upgrade-form").addEventListener(
      "submit",
      guard(() => requestLink($("upgrade-email").value.trim(), $("upgrade-message"))),
    );
    $("verify-retry").addEventListener("click", guard(() => S.pendingLink && takeLoginLink(S.pendingLink)));
    $("logout-btn").addEventListener("click", guard(logOut));
    window.addEventListener("storage", onStorage);
    // A login link pasted into the address bar of an open page changes only the fragment.
    window.addEventListener("hashchange", () => {
      const link = takeLinkFromAddress();
      if (link) takeLoginLink(link).catch(showError);
    });
  }

  function wireLogbook() {
    $("log-instrument").value = localStorage.getItem("tutti.instrument") || "";
    $("quick-log-form").addEventListener("submit", guard(submitQuickLog));
    $("quick-log-form").addEventListener("input", () => (pendingLogId = null)); // an edited entry is a new one
    $("refresh-logs").addEventListener("click", guard(loadLogs));
  }

  /** A login link's token from the address, removed from it at once (the link works once). */
  function takeLinkFromAddress() {
    const link = loginTokenFromHash(location.hash);
    if (link) history.replaceState(null, "", location.pathname + location.search);
    return link;
  }

  /** Start: a login link in the address first, else this tab's guest, else the account. */
  async function resume() {
    const link = takeLinkFromAddress();
    const session = loadGuest() || loadAccount();
    const enter = (auth) => {
      adopt(auth);
      enterLobby();
    };
    if (!link) return session ? enter(session) : show("login");
    show("login");
    const ok = await takeLoginLink(link).catch((err) => (showError(err), false));
    if (!ok && session) {
      enter(session);
      toast($("login-message").textContent, "error");
    }
  }

  function boot() {
    wireAccount();
    wireLogbook();
    $("refresh-pieces").addEventListener("click", guard(loadPieces));
    $("create-piece").addEventListener("change", onPieceChange);
    $("create-mode").addEventListener("change", onModeChange);
    $("create-form").addEventListener("submit", guard(createRoom));
    $("join-form").addEventListener(
      "submit",
      guard(() => joinRoom($("join-room-id").value.trim(), $("join-role").value, $("join-part").value.trim() || null)),
    );
    $("start-btn").addEventListener("click", guard(() => call("room:start", { room_id: S.roomId })));
    $("end-btn").addEventListener("click", guard(() => call("room:end", { room_id: S.roomId })));
    $("leave-btn").addEventListener("click", guard(leaveRoom));
    $("back-btn").addEventListener("click", guard(backToLobby));
    $("copy-link").addEventListener("click", guard(async () => {
      await navigator.clipboard.writeText($("room-link").dataset.url);
      toast("Invite link copied.");
    }));
    $("oct-down").addEventListener("click", () => setOctave(S.octave - 1));
    $("oct-up").addEventListener("click", () => setOctave(S.octave + 1));
    $("velocity").addEventListener("input", (ev) => setVelocity(Number(ev.target.value)));
    $("midi-btn").addEventListener("click", guard(enableMidi));
    if (!navigator.requestMIDIAccess) {
      $("midi-btn").disabled = true;
      $("midi-status").textContent = "Web MIDI is not available in this browser.";
    }
    window.addEventListener("keydown", onKeyDown);
    window.addEventListener("keyup", onKeyUp);
    window.addEventListener("blur", releaseAll);
    setOctave(S.octave);
    setVelocity(S.velocity);
    setInterval(scheduleClicks, 25);
    requestAnimationFrame(tick);

    resume();
    // For smoke tests: the script ran to the end and the Socket.IO client is there.
    document.documentElement.dataset.app = typeof io === "function" ? "ready" : "no-socketio";
  }

  window.Tutti = { ...exportsForTests, state: S };
  boot();
})();

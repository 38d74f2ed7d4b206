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

  const exportsForTests = { median, ClockEstimator, pitchName, keyPitch, KEY_CODES };
  if (typeof module !== "undefined" && module.exports) module.exports = exportsForTests;
  if (typeof document === "undefined") return; // loaded by a test runner, not a page

  // -- state ------------------------------------------------------------------------------------

  const PALETTE = ["#e4572e", "#17bebb", "#ffc914", "#76b041", "#a06cd5", "#f78fb3", "#2e86de", "#ff8c42"];
  const PIANO_LOW = 36; // C2
  const PIANO_HIGH = 96; // C7
  const CLOCK_INTERVAL_MS = 2000;
  const CLOCK_BURST = 8;
  const AUTH_ERRORS = new Set(["missing_token", "invalid_token", "token_expired"]);

  const S = {
    token: sessionStorage.getItem("tutti.token"),
    user: JSON.parse(sessionStorage.getItem("tutti.user") || "null"),
    socket: null,
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

  async function api(method, path, body) {
    const opts = { method, headers: {} };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (S.token) opts.headers.Authorization = "Bearer " + S.token;
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

  // -- Socket.IO -----------------------------------------------------------------------------

  function deviceId() {
    let id = localStorage.getItem("tutti.device_id");
    if (!id) {
      id = Math.random().toString(16).slice(2, 14).padEnd(12, "0");
      localStorage.setItem("tutti.device_id", id);
    }
    return id;
  }

  function deviceName() {
    const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || "";
    return ("browser " + platform).trim().slice(0, 100);
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

  function connect() {
    if (S.socket) S.socket.disconnect();
    const socket = io({
      path: "/socket.io/",
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      auth: (cb) => cb({ token: S.token, device_id: deviceId(), device_name: deviceName() }),
    });
    S.socket = socket;
    setConn("connecting", "connecting…");

    socket.on("connect", async () => {
      setConn("online", "online");
      await syncClock(CLOCK_BURST);
      clearInterval(S.clockTimer);
      S.clockTimer = setInterval(() => clockExchange().catch(() => {}), CLOCK_INTERVAL_MS);
      if (S.roomId && S.joinedAs && !S.finished) rejoin();
    });
    socket.on("connect_error", (err) => {
      const code = err && err.data && err.data.code;
      if (AUTH_ERRORS.has(code)) {
        toast("Your guest pass is no longer valid; please enter again.", "error");
        logout();
        return;
      }
      setConn("offline", "offline — retrying");
    });
    socket.on("disconnect", (reason) => {
      clearInterval(S.clockTimer);
      setConn("offline", reason === "io client disconnect" ? "offline" : "offline — retrying");
      if (reason === "io server disconnect") socket.connect();
    });

    socket.on("room:state", onRoomState);
    socket.on("room:started", onRoomStarted);
    socket.on("room:finished", onRoomFinished);
    socket.on("score:update", onScoreUpdate);
    socket.on("note", (d) => onPartnerNotes(d, [d]));
    socket.on("notes", (d) => onPartnerNotes(d, d.events || []));
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
    $("logout-btn").hidden = view === "login";
    $("who").textContent = S.user && view !== "login" ? S.user.display_name : "";
  }

  async function login(displayName) {
    const body = await api("POST", "/api/auth/guest", { display_name: displayName });
    S.token = body.access_token;
    S.user = body.user;
    S.names[S.user.id] = S.user.display_name;
    sessionStorage.setItem("tutti.token", S.token);
    sessionStorage.setItem("tutti.user", JSON.stringify(S.user));
    localStorage.setItem("tutti.display_name", displayName);
    enterLobby();
  }

  function logout() {
    if (S.socket) S.socket.disconnect();
    S.socket = null;
    clearInterval(S.clockTimer);
    S.token = null;
    S.user = null;
    sessionStorage.removeItem("tutti.token");
    sessionStorage.removeItem("tutti.user");
    clearRoom();
    setConn("offline", "offline");
    $("clock-status").textContent = "";
    show("login");
  }

  function enterLobby() {
    if (!S.socket) connect();
    show("lobby");
    loadPieces().catch(showError);
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

  function boot() {
    $("display-name").value = localStorage.getItem("tutti.display_name") || "";
    $("login-form").addEventListener("submit", guard(() => login($("display-name").value.trim())));
    $("logout-btn").addEventListener("click", guard(async () => {
      await leaveRoom();
      logout();
    }));
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

    if (S.token && S.user) {
      S.names[S.user.id] = S.user.display_name;
      enterLobby();
    } else {
      show("login");
    }
    // For smoke tests: the script ran to the end and the Socket.IO client is there.
    document.documentElement.dataset.app = typeof io === "function" ? "ready" : "no-socketio";
  }

  window.Tutti = { ...exportsForTests, state: S };
  boot();
})();

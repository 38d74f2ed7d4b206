/* DOM helpers, toasts and errors shared by every view. */

export const $ = (id) => document.getElementById(id);

/** An element with attributes (on* as listeners) and children (strings become text). */
export function el(tag, attrs, ...children) {
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

/** An SVG element (charts). */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
  for (const child of children.flat()) if (child) node.append(child instanceof Node ? child : String(child));
  return node;
}

export function fmt(value, digits = 0, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return Number(value).toFixed(digits) + unit;
}

export const pct = (x) => (x === null || x === undefined ? "—" : Math.round(x * 100) + "%");

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export class TuttiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

let toastTimer = null;
let lastToast = { text: "", at: 0 };

export function toast(text, kind = "info") {
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

export function showError(err) {
  console.warn(err);
  toast(err instanceof TuttiError ? `${err.message} (${err.code})` : String((err && err.message) || err), "error");
}

/** A status line under a form: `kind` "error", "ok" or plain; empty text hides it. */
export function setMessage(box, text, kind = "") {
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
}

/** A submit/click handler that runs `fn` and shows its error. */
export function guard(fn, before) {
  return (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    if (before) before();
    Promise.resolve()
      .then(() => fn(ev))
      .catch(showError);
  };
}

// Rendering coalesced per animation frame: modules register renderers by part name.
const renderers = new Map();
const dirty = new Set();
let frameRequested = false;

export function onRender(part, fn) {
  renderers.set(part, fn);
}

export function invalidate(...parts) {
  for (const p of parts) dirty.add(p);
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      const now = [...(dirty.has("all") ? renderers.keys() : dirty)];
      dirty.clear();
      for (const part of now) {
        const fn = renderers.get(part);
        if (fn) fn();
      }
    });
  }
}

/* Tutti's service worker (served at /sw.js, scope /): keeps the page's static assets so it
 * opens offline. The page and its assets: network first, the cached copy when the network
 * fails — never a stale module next to a newer page after a server upgrade. The API and
 * Socket.IO are never cached (the logbook's offline copy lives in IndexedDB).
 */

const CACHE = "tutti-static-v1";
const ASSETS = [
  "/",
  "/static/style.css",
  "/static/vendor/socket.io.min.js",
  "/static/main.js",
  "/static/state.js",
  "/static/ui.js",
  "/static/clock.js",
  "/static/music.js",
  "/static/presence.js",
  "/static/session.js",
  "/static/connection.js",
  "/static/lobby.js",
  "/static/room.js",
  "/static/input.js",
  "/static/microphone.js",
  "/static/roll.js",
  "/static/notation.js",
  "/static/cursors.js",
  "/static/audio.js",
  "/static/practice.js",
  "/static/results.js",
  "/static/passes.js",
  "/static/logbook.js",
  "/static/store.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname !== "/" && !url.pathname.startsWith("/static/")) return;
  const key = url.pathname === "/" ? "/" : event.request;
  event.respondWith(
    fetch(event.request)
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
        }
        return resp;
      })
      .catch(() => caches.match(key, { ignoreSearch: true }).then((hit) => hit || Response.error())),
  );
});

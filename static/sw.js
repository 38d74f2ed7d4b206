/* Tutti's service worker (served at /sw.js, scope /): keeps the page's static assets so it
 * opens offline. Assets: stale-while-revalidate (served from the cache at once, refreshed in
 * the background); the page itself: network first, the cached copy when offline. The API
 * and Socket.IO are never cached (the logbook's offline copy lives in IndexedDB).
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
  "/static/roll.js",
  "/static/audio.js",
  "/static/results.js",
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
  if (url.pathname === "/") {
    event.respondWith(
      fetch(event.request)
        .then((resp) => {
          const copy = resp.clone();
          caches.open(CACHE).then((cache) => cache.put("/", copy));
          return resp;
        })
        .catch(() => caches.match("/")),
    );
    return;
  }
  if (!url.pathname.startsWith("/static/")) return;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const cached = await cache.match(event.request, { ignoreSearch: true });
      const fresh = fetch(event.request)
        .then((resp) => {
          if (resp.ok) cache.put(event.request, resp.clone());
          return resp;
        })
        .catch(() => cached);
      return cached || fresh;
    }),
  );
});

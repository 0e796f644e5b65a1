// The workbench's service worker: keeps the app shell (page, script, style, forms) so that the workbench
// opens with no network. Network first (a new version arrives at once), the cache when the network fails or
// is slower than NETWORK_MS. API calls (/v1/...) are never answered from the cache.
"use strict";

const CACHE = "vc-workbench-v1";
const SHELL = [
  "/workbench/",
  "/workbench/app.js",
  "/workbench/style.css",
  "/workbench/manifest.webmanifest",
  "/workbench/icon.svg",
  "/workbench/forms.json",
  "/workbench/config.json",
];
const NETWORK_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

function shellKey(request) {
  const url = new URL(request.url);
  // The page itself, also when the identity provider sends the browser back with ?code=&state=.
  return request.mode === "navigate" || url.pathname === "/workbench/" ? "/workbench/" : url.pathname;
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  const key = shellKey(request);
  try {
    const answer = await Promise.race([
      fetch(request),
      new Promise((_, reject) => setTimeout(() => reject(new Error("slow network")), NETWORK_MS)),
    ]);
    if (answer.ok && SHELL.includes(key)) await cache.put(key, answer.clone());
    return answer;
  } catch (error) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/workbench")) return;
  event.respondWith(networkFirst(event.request));
});

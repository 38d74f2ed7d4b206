/* Presence states (mirrors rooms/presence.py, Phoenix's syncState / syncDiff). Pure. */

/**
 * A copy of a presence state {key: {metas: [...]}} with each key's metas sorted by ref and
 * keys without metas dropped — the canonical form rooms/presence.py keeps, so a state here
 * equals the server's. Refs are compared as plain strings, like Python does.
 */
export function canonicalPresence(state) {
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
export function applyPresenceDiff(state, diff) {
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
export function presenceMetas(state, userId) {
  const metas = (state && state[userId] && state[userId].metas) || [];
  return metas.slice().sort((a, b) => (b.online_at || 0) - (a.online_at || 0));
}

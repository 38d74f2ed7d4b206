/* The offline store: this user's logbook replica in IndexedDB, and its sync with the server.
 *
 * One database per user (`tutti-logbook-USERID`): `rows` (every synced row, key
 * "entity:id", with its fields and server version), `outbox` (this device's mutations not yet
 * acknowledged, by mutation_id) and `meta` (client_id, next mutation id, pull cursor). A write
 * goes to the outbox and, optimistically, to its row in one transaction — so it survives a
 * reload while offline — then is pushed (POST /api/sync/push) whenever the server is
 * reachable; changes are pulled by cursor (GET /api/sync/pull). Semantics: server/services/sync.py.
 */

import { randomHex } from "./session.js";

const PUSH_BATCH = 100;

function promisify(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

export class LogbookReplica {
  constructor(userId) {
    this.userId = userId;
    this.db = null;
    this.syncing = null;
    this.again = false;
    this.listeners = [];
  }

  async open() {
    const req = indexedDB.open("tutti-logbook-" + this.userId, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("rows", { keyPath: "key" });
      db.createObjectStore("outbox", { keyPath: "mutation_id" });
      db.createObjectStore("meta");
    };
    this.db = await promisify(req);
    const tx = this.db.transaction("meta", "readwrite");
    const meta = tx.objectStore("meta");
    if (!(await promisify(meta.get("client_id")))) {
      meta.put(randomHex(32), "client_id");
      meta.put(1, "next_mutation_id");
      meta.put(0, "cursor");
    }
    await done(tx);
    return this;
  }

  close() {
    if (this.db) this.db.close();
    this.db = null;
  }

  onChange(fn) {
    this.listeners.push(fn);
  }

  changed() {
    for (const fn of this.listeners) fn();
  }

  /** Queue a put (only the fields given) or a delete, and apply it to the local row at once. */
  async write(entity, op, id, fields = {}) {
    const tx = this.db.transaction(["meta", "outbox", "rows"], "readwrite");
    const meta = tx.objectStore("meta");
    const mutationId = await promisify(meta.get("next_mutation_id"));
    meta.put(mutationId + 1, "next_mutation_id");
    const mutation = { mutation_id: mutationId, entity, op, id };
    if (op === "put") mutation.fields = fields;
    tx.objectStore("outbox").put(mutation);
    const rows = tx.objectStore("rows");
    const key = entity + ":" + id;
    const row = (await promisify(rows.get(key))) || { key, entity, id, fields: {}, version: 0, deleted: false };
    if (op === "delete") row.deleted = true;
    else row.fields = { ...row.fields, ...fields };
    row.pending = true;
    rows.put(row);
    await done(tx);
    this.changed();
    return mutation;
  }

  async outbox() {
    const tx = this.db.transaction("outbox");
    return promisify(tx.objectStore("outbox").getAll());
  }

  /** The live rows of `entity` ({id, pending, version, ...fields}). */
  async rows(entity) {
    const tx = this.db.transaction("rows");
    const all = await promisify(tx.objectStore("rows").getAll());
    return all.filter((r) => r.entity === entity && !r.deleted).map((r) => ({ ...r.fields, id: r.id, pending: !!r.pending, version: r.version }));
  }

  /** Push the outbox, then pull: one run at a time, and one more when asked meanwhile. */
  sync(api) {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        await this.push(api);
        await this.pull(api);
      } while (this.again);
    })().finally(() => (this.syncing = null));
    return this.syncing;
  }

  async push(api) {
    for (;;) {
      const pending = (await this.outbox()).sort((a, b) => a.mutation_id - b.mutation_id);
      if (!pending.length || !this.db) return;
      const tx0 = this.db.transaction("meta");
      const clientId = await promisify(tx0.objectStore("meta").get("client_id"));
      const answer = await api("POST", "/api/sync/push", { client_id: clientId, mutations: pending.slice(0, PUSH_BATCH) });
      const last = answer.last_mutation_id;
      const tx = this.db.transaction(["outbox", "rows"], "readwrite");
      const left = pending.filter((m) => m.mutation_id > last);
      for (const m of pending) {
        if (m.mutation_id > last) continue;
        tx.objectStore("outbox").delete(m.mutation_id);
        if (left.some((n) => n.entity === m.entity && n.id === m.id)) continue;
        const row = await promisify(tx.objectStore("rows").get(m.entity + ":" + m.id));
        if (row && row.pending) tx.objectStore("rows").put({ ...row, pending: false });
      }
      await done(tx);
      this.changed();
      if (answer.error) {
        // A refused mutation is consumed (dropped here, its optimistic effect undone by the pull).
        console.warn("sync push stopped", answer.error);
        this.lastError = answer.error;
        if (answer.error.code === "mutation_gap") return;
      }
    }
  }

  async pull(api) {
    for (;;) {
      const tx0 = this.db.transaction("meta");
      const cursor = (await promisify(tx0.objectStore("meta").get("cursor"))) || 0;
      const page = await api("GET", `/api/sync/pull?cursor=${cursor}&limit=500`);
      const pending = await this.outbox();
      const tx = this.db.transaction(["rows", "meta"], "readwrite");
      const rows = tx.objectStore("rows");
      for (const c of page.changes) {
        const key = c.entity + ":" + c.id;
        const row = { key, entity: c.entity, id: c.id, fields: c.fields || {}, version: c.version, deleted: !!c.deleted };
        // Mutations still in the outbox stay applied on top of what the server sent.
        for (const m of pending) {
          if (m.entity !== c.entity || m.id !== c.id) continue;
          if (m.op === "delete") row.deleted = true;
          else row.fields = { ...row.fields, ...m.fields };
          row.pending = true;
        }
        rows.put(row);
      }
      tx.objectStore("meta").put(page.cursor, "cursor");
      await done(tx);
      if (page.changes.length) this.changed();
      if (!page.has_more) return;
    }
  }
}

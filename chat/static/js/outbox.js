// The pending sends kept in this browser's storage (localStorage), per user, and shared by its tabs.
//
// Rules:
// - One key per send, `didchat.outbox|<user>|<client_id>` holding PendingQueue.itemJSON: two tabs
//   adding at once never overwrite each other (a read-modify-write of one list would), and another
//   agent logging in on this browser reads only the keys with their own name.
// - A send is written before it is emitted, and forgotten when the server confirms it (or the agent
//   discards it). A session that ends keeps them (the same user's next login sends them); an explicit
//   logout forgets them.
// - Closing the tab with sends still queued needs no warning (no beforeunload): they are in storage,
//   and the next tab of the same user sends them with the same client_id.
// - One tab sends an item at a time: a Web Lock per client_id, and the holder looks in storage first
//   (another tab may have had it confirmed meanwhile). Should two tabs send it all the same, the server
//   stores one message (one client_id) and each tab shows one bubble (merge.js settles the pending
//   item by client_id; messages are kept by id).
// - Storage may be full or switched off: the send then lives in this tab only, and still goes.

import { PendingQueue } from "./pending.js";
import { state } from "./state.js";

const PREFIX = "didchat.outbox|";
const LOCK_PREFIX = "didchat-send-";

/** This user's keys begin with this (null when no one is signed in). */
function userPrefix() {
  const name = state.user && state.user.name;
  return name ? `${PREFIX}${encodeURIComponent(name)}|` : null;
}

/** Every key of this browser's storage that starts with `prefix`. */
function keysWith(prefix) {
  const keys = [];
  try {
    for (let i = 0; i < localStorage.length; i += 1) {
      const key = localStorage.key(i);
      if (key && key.startsWith(prefix)) keys.push(key);
    }
  } catch { /* storage switched off: nothing saved */ }
  return keys;
}

function readKey(key) {
  try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
}

/** A new session: this user's saved sends join the queue (in the order typed), to go once linked. */
export function openOutbox() {
  const prefix = userPrefix();
  if (!prefix) return;
  const saved = keysWith(prefix).map(readKey).filter(Boolean);
  saved.sort((a, b) => String(a.createdAt || "").localeCompare(String(b.createdAt || "")));
  for (const o of saved) {
    const item = state.outbox.merge(o);
    if (item) item.stored = true;
  }
}

/** Keep one send (before it is emitted, and when its state changes). Whether storage took it. */
export function saveSend(item) {
  const prefix = userPrefix();
  if (!prefix) return false;
  try {
    localStorage.setItem(prefix + item.client_id, JSON.stringify(PendingQueue.itemJSON(item)));
    item.stored = true;
  } catch {
    item.stored = false; // full or switched off: this tab alone holds it
  }
  return item.stored;
}

/** Forget in storage what left the queue (confirmed, discarded) since the last call. */
export function forgetSettled() {
  const prefix = userPrefix();
  const gone = state.outbox.takeRemoved();
  if (!prefix) return;
  for (const id of gone) {
    try { localStorage.removeItem(prefix + id); } catch { /* nothing saved, then */ }
  }
}

/** An explicit logout: this user's saved sends are forgotten. */
export function dropSavedSends() {
  const prefix = userPrefix();
  if (!prefix) return;
  for (const key of keysWith(prefix)) {
    try { localStorage.removeItem(key); } catch { /* nothing saved, then */ }
  }
}

/** Whether the item is still waiting as far as storage knows (another tab may have had it confirmed). */
export function stillSaved(item) {
  const prefix = userPrefix();
  if (!prefix || item.stored === false) return true; // not in storage to begin with: only we know of it
  try { return localStorage.getItem(prefix + item.client_id) !== null; } catch { return true; }
}

/** Run `send` holding this item's lock, so this browser's tabs send it one at a time. */
export function withSendLock(item, send) {
  if (navigator.locks && navigator.locks.request) return navigator.locks.request(LOCK_PREFIX + item.client_id, send);
  return send();
}

/** Whether a message we hold already carries this client_id (its push came before the storage event). */
function delivered(clientId) {
  for (const m of state.messageById.values()) if (m.client_id === clientId) return true;
  return false;
}

/** Another tab changed this user's saved sends: take the change. Whether the queue changed. */
export function takeStorageChange(event) {
  const prefix = userPrefix();
  if (!prefix || event.storageArea !== localStorage) return false;
  if (event.key === null) { // the storage was cleared
    for (const item of [...state.outbox.items]) if (item.stored) state.outbox.settle(item.client_id);
    state.outbox.takeRemoved();
    return true;
  }
  if (!event.key.startsWith(prefix)) return false;
  const clientId = event.key.slice(prefix.length);
  if (event.newValue === null) {
    state.outbox.settle(clientId);
    state.outbox.takeRemoved(); // already gone from storage
    return true;
  }
  let saved = null;
  try { saved = JSON.parse(event.newValue); } catch { return false; }
  if (!saved || saved.client_id !== clientId || delivered(clientId)) return false;
  const item = state.outbox.merge(saved);
  if (item) item.stored = true;
  return !!item;
}

// The pending sends kept in the browser's storage (chat/static/js/outbox.js), against a stand-in for
// localStorage: one key per send and per user, forgotten when confirmed or on an explicit logout, and
// another tab's changes taken from the storage event.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

class MemoryStorage {
  constructor() { this.map = new Map(); }
  get length() { return this.map.size; }
  key(i) { return [...this.map.keys()][i] ?? null; }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}
globalThis.localStorage = new MemoryStorage();

const { dropSavedSends, forgetSettled, openOutbox, saveSend, stillSaved, takeStorageChange } =
  await import("../../chat/static/js/outbox.js");
const { state, resetData } = await import("../../chat/static/js/state.js");

function queue(text, clientId, createdAt = "2026-03-01T10:00:00Z") {
  const item = state.outbox.add({ clientId, payload: { conversation_id: 7, text }, conversationKey: 7, text, createdAt });
  saveSend(item);
  return item;
}

function as(name) {
  resetData();
  state.user = { name };
}

beforeEach(() => {
  globalThis.localStorage.map.clear();
  as("alice");
});

test("each send is saved under its user's name, read back in the order typed by that user only", () => {
  queue("second", "b", "2026-03-01T10:00:02Z");
  queue("first", "a", "2026-03-01T10:00:01Z");
  assert.deepEqual([...localStorage.map.keys()].sort(), ["didchat.outbox|alice|a", "didchat.outbox|alice|b"]);
  as("alice.x"); // a name that begins with hers reads nothing of hers
  openOutbox();
  assert.equal(state.outbox.length, 0);
  as("alice");
  openOutbox();
  assert.deepEqual(state.outbox.items.map((o) => [o.text, o.payload.client_id, o.state]), [
    ["first", "a", "sending"], ["second", "b", "sending"]]);
});

test("a confirmed send is forgotten; a session that ends keeps the rest; an explicit logout drops them", () => {
  queue("one", "a");
  queue("two", "b");
  state.outbox.settle("a"); // its message came (merge.js does this)
  forgetSettled();
  assert.deepEqual([...localStorage.map.keys()], ["didchat.outbox|alice|b"]);
  resetData(); // the session ended: memory forgets, storage keeps
  state.user = { name: "alice" };
  assert.equal(localStorage.length, 1);
  localStorage.setItem("didchat.outbox|bob|c", "{}");
  dropSavedSends();
  assert.deepEqual([...localStorage.map.keys()], ["didchat.outbox|bob|c"]);
});

test("another tab's new send, change and confirmation arrive by the storage event", () => {
  const key = "didchat.outbox|alice|t2";
  const saved = { client_id: "t2", payload: { conversation_id: 7, text: "from the other tab" }, conversationKey: 7,
    text: "from the other tab", state: "sending", createdAt: "2026-03-01T10:00:00Z" };
  const event = (k, value) => ({ key: k, newValue: value, storageArea: localStorage });
  assert.equal(takeStorageChange(event(key, JSON.stringify(saved))), true);
  assert.deepEqual(state.outbox.items.map((o) => o.text), ["from the other tab"]);
  takeStorageChange(event(key, JSON.stringify({ ...saved, state: "refused", error: "no" })));
  assert.equal(state.outbox.items[0].state, "refused");
  assert.equal(takeStorageChange(event("didchat.outbox|bob|x", JSON.stringify({ ...saved, client_id: "x" }))), false);
  assert.equal(takeStorageChange(event(key, "not json")), false);
  takeStorageChange(event(key, null));
  assert.equal(state.outbox.length, 0);
  assert.deepEqual(state.outbox.takeRemoved(), []);
});

test("a send whose message we hold already is not shown again as pending", () => {
  state.messageById.set(1, { id: 1, conversation_id: 7, client_id: "t3", text: "done" });
  const saved = { client_id: "t3", payload: { text: "done" }, conversationKey: 7, text: "done", state: "sending" };
  assert.equal(takeStorageChange({ key: "didchat.outbox|alice|t3", newValue: JSON.stringify(saved), storageArea: localStorage }), false);
  assert.equal(state.outbox.length, 0);
});

test("storage that refuses (full, switched off) leaves the send in this tab, still sendable", () => {
  const full = globalThis.localStorage;
  globalThis.localStorage = { ...full, setItem() { throw new Error("QuotaExceededError"); }, getItem: () => null };
  try {
    const item = queue("kept in memory", "m");
    assert.equal(item.stored, false);
    assert.equal(stillSaved(item), true);
  } finally {
    globalThis.localStorage = full;
  }
  const item = queue("saved", "s");
  assert.equal(stillSaved(item), true);
  localStorage.removeItem("didchat.outbox|alice|s"); // another tab had it confirmed
  assert.equal(stillSaved(item), false);
});

// The pending-send queue (chat/static/js/pending.js): order, acks, retries with the same client_id,
// and a JSON round trip such as localStorage would make.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PendingQueue } from "../../chat/static/js/pending.js";

function queueOf(...texts) {
  const q = new PendingQueue();
  texts.forEach((text, i) => q.add({
    clientId: `id-${i}`, payload: { conversation_id: 7, text }, conversationKey: 7, text, createdAt: `2026-03-01T10:00:0${i}Z`,
  }));
  return q;
}

test("sends are queued in the order typed, each carrying its client_id in the call's body", () => {
  const q = queueOf("first", "second", "third");
  assert.deepEqual(q.items.map((o) => o.text), ["first", "second", "third"]);
  assert.deepEqual(q.items.map((o) => o.payload.client_id), ["id-0", "id-1", "id-2"]);
  assert.ok(q.items.every((o) => o.state === "sending" && o.attempts === 0 && !o.inFlight));
});

test("an ack settles its send by client_id; the others stay, in order", () => {
  const q = queueOf("first", "second", "third");
  q.settle("id-1");
  assert.deepEqual(q.items.map((o) => o.text), ["first", "third"]);
  q.settle("no-such-id");
  assert.equal(q.length, 2);
  q.remove(q.items[0]);
  assert.deepEqual(q.items.map((o) => o.client_id), ["id-2"]);
});

test("a send given up on and retried keeps the same client_id (so the server stores it once)", () => {
  const q = queueOf("hello");
  const item = q.items[0];
  item.attempts = 8;
  q.fail(item, "The server could not store it");
  assert.deepEqual([item.state, item.error], ["unconfirmed", "The server could not store it"]);
  assert.deepEqual(q.sendable(), []);
  q.retry(item);
  assert.deepEqual([item.state, item.error, item.attempts], ["sending", null, 0]);
  assert.equal(item.client_id, "id-0");
  assert.equal(item.payload.client_id, "id-0");
  assert.deepEqual(q.sendable(), [item]);
});

test("a call out is not sent twice; a lost link makes every sending item go again", () => {
  const q = queueOf("a", "b");
  q.items[0].inFlight = true;
  assert.deepEqual(q.sendable().map((o) => o.text), ["b"]);
  q.linkLost();
  assert.deepEqual(q.sendable().map((o) => o.text), ["a", "b"]);
});

test("the queue survives a JSON round trip (localStorage): order, client ids, states; no link state", () => {
  const q = queueOf("first", "second", "third");
  q.items[0].inFlight = true;
  q.items[1].attempts = 3;
  q.fail(q.items[2], "not stored");
  const back = PendingQueue.fromJSON(JSON.parse(JSON.stringify(q)));
  assert.deepEqual(back.items.map((o) => [o.client_id, o.payload.client_id, o.text, o.state]), [
    ["id-0", "id-0", "first", "sending"], ["id-1", "id-1", "second", "sending"], ["id-2", "id-2", "third", "unconfirmed"],
  ]);
  assert.deepEqual(back.items.map((o) => [o.inFlight, o.attempts, o.conversationKey, o.createdAt]), [
    [false, 0, 7, "2026-03-01T10:00:00Z"], [false, 3, 7, "2026-03-01T10:00:01Z"], [false, 0, 7, "2026-03-01T10:00:02Z"],
  ]);
  assert.equal(back.items[2].error, "not stored");
  assert.deepEqual(PendingQueue.fromJSON(JSON.parse(JSON.stringify(back))).items, back.items);
});

test("what cannot be read back is left out, never thrown", () => {
  assert.equal(PendingQueue.fromJSON(null).length, 0);
  assert.equal(PendingQueue.fromJSON({ not: "a list" }).length, 0);
  const back = PendingQueue.fromJSON([null, { client_id: 5 }, { client_id: "x" }, { client_id: "ok", payload: { text: "t" } }]);
  assert.deepEqual(back.items.map((o) => o.client_id), ["ok"]);
});

test("a conversation shows its own sends; the new-conversation form shows those to new numbers", () => {
  const q = queueOf("to seven");
  q.add({ clientId: "n-1", payload: { to: "+12125550199", text: "first" }, conversationKey: "to:+12125550199", text: "first" });
  assert.deepEqual(q.forKey(7).map((o) => o.text), ["to seven"]);
  assert.deepEqual(q.forKey("new").map((o) => o.text), ["first"]);
  assert.deepEqual(q.forKey(8), []);
});

test("a refused send waits for the agent with its reason; Retry sends it again with the same client_id", () => {
  const q = queueOf("too long");
  const item = q.items[0];
  q.refuse(item, "text: at most 1600 characters");
  assert.deepEqual([item.state, item.error], ["refused", "text: at most 1600 characters"]);
  assert.deepEqual(q.sendable(), []);
  const back = PendingQueue.fromJSON(JSON.parse(JSON.stringify(q)));
  assert.deepEqual([back.items[0].state, back.items[0].error], ["refused", "text: at most 1600 characters"]);
  q.retry(item);
  assert.deepEqual(q.sendable().map((o) => o.payload.client_id), ["id-0"]);
});

test("what left the queue is listed once for the storage to forget; clear() lists nothing", () => {
  const q = queueOf("a", "b", "c");
  q.settle("id-1");
  q.remove(q.items[0]);
  q.settle("id-1"); // twice: once
  assert.deepEqual(q.takeRemoved(), ["id-1", "id-0"]);
  assert.deepEqual(q.takeRemoved(), []);
  q.clear();
  assert.deepEqual(q.takeRemoved(), []);
});

test("another tab's item joins in the order typed; news of one we hold keeps our link state", () => {
  const q = queueOf("first", "third");
  q.items[1].createdAt = "2026-03-01T10:00:09Z";
  const theirs = { client_id: "other", payload: { conversation_id: 7, text: "second" }, conversationKey: 7,
    text: "second", state: "sending", createdAt: "2026-03-01T10:00:05Z" };
  q.merge(theirs);
  assert.deepEqual(q.items.map((o) => o.text), ["first", "second", "third"]);
  assert.equal(q.find("other").payload.client_id, "other");
  q.items[0].inFlight = true;
  q.merge({ ...PendingQueue.itemJSON(q.items[0]), state: "unconfirmed", error: "not stored" });
  assert.deepEqual([q.items[0].state, q.items[0].error, q.items[0].inFlight, q.length], ["unconfirmed", "not stored", true, 3]);
  assert.equal(q.merge({ client_id: 3 }), null);
});

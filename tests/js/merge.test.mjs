// Merging the server's answers and pushes into the client's data (chat/static/js/merge.js): statuses,
// out-of-order and repeated pushes, cursors, complete and partial syncs, pending sends settled.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  SYNC_COMPLETE_BELOW, addMessage, applyStatus, cursors, lastSeq, mergeMessages, mergeStatuses, mergeSync,
  newData, unreadCount, upsertConversation,
} from "../../chat/static/js/merge.js";
import { PendingQueue } from "../../chat/static/js/pending.js";

const at = (second) => `2026-03-01T10:00:${String(second).padStart(2, "0")}Z`;
const conv = (id, extra = {}) => ({ id, state: "open", updated_at: at(0), contact: { number: "+12125550199" }, ...extra });
const msg = (id, seq, extra = {}) => ({
  id, conversation_id: 1, seq, direction: "in", text: `m${id}`, status: "received", created_at: at(seq), updated_at: at(seq), ...extra,
});
const seqs = (data, id = 1) => data.messages.get(id).map((m) => m.seq);

function withConversation() {
  const data = newData();
  upsertConversation(data, conv(1));
  return data;
}

test("a newer status wins, an older one that comes late is ignored", () => {
  const data = withConversation();
  addMessage(data, msg(10, 1, { direction: "out", status: "queued", updated_at: at(1) }));
  applyStatus(data, { id: 10, status: "delivered", updated_at: at(5) });
  applyStatus(data, { id: 10, status: "sent", updated_at: at(3) }); // the sent receipt, overtaken
  assert.equal(data.messageById.get(10).status, "delivered");
  applyStatus(data, { id: 10, status: "failed", error: "handset off", updated_at: at(9) });
  assert.deepEqual([data.messageById.get(10).status, data.messageById.get(10).error], ["failed", "handset off"]);
});

test("at the same time the further status wins, whatever order they come in", () => {
  const data = withConversation();
  addMessage(data, msg(10, 1, { direction: "out", status: "queued", updated_at: at(1) }));
  applyStatus(data, { id: 10, status: "delivered", updated_at: at(4) });
  applyStatus(data, { id: 10, status: "sent", updated_at: at(4) });
  assert.equal(data.messageById.get(10).status, "delivered");
});

test("a status pushed before its message waits for it, and is applied when it is newer", () => {
  const data = withConversation();
  mergeStatuses(data, [{ id: 10, status: "delivered", updated_at: at(6) }, { id: 11, status: "sent", updated_at: at(1) }]);
  mergeMessages(data, [msg(10, 1, { direction: "out", status: "sent", updated_at: at(2) })]);
  mergeMessages(data, [msg(11, 2, { direction: "out", status: "delivered", updated_at: at(3) })]);
  assert.equal(data.messageById.get(10).status, "delivered");
  assert.equal(data.messageById.get(11).status, "delivered"); // its waiting status was older
  assert.equal(data.pendingStatus.size, 0);
});

test("pushes out of order end up in seq order, and a gap asks for a sync", () => {
  const data = withConversation();
  assert.equal(mergeMessages(data, [msg(1, 1)]).missed, false);
  assert.equal(mergeMessages(data, [msg(3, 3)]).missed, true, "seq 2 is missing");
  assert.equal(mergeMessages(data, [msg(2, 2)]).missed, false);
  assert.deepEqual(seqs(data), [1, 2, 3]);
  assert.equal(lastSeq(data, 1), 3);
});

test("a message of a conversation we do not know asks for a sync", () => {
  const data = withConversation();
  const { missed, changed } = mergeMessages(data, [{ ...msg(5, 1), conversation_id: 2 }]);
  assert.equal(missed, true);
  assert.deepEqual(changed, [2]);
});

test("a message arriving twice (push, then sync) is stored once and is new only the first time", () => {
  const data = withConversation();
  assert.equal(mergeMessages(data, [msg(1, 1)]).fresh.length, 1);
  assert.equal(mergeMessages(data, [msg(1, 1)]).fresh.length, 0, "no second alert");
  mergeSync(data, { conversations: [conv(1)], messages: [msg(1, 1)], statuses: [] });
  assert.deepEqual(seqs(data), [1]);
  assert.equal(data.messageById.size, 1);
});

test("a repeated message brings its newer status, never an older one", () => {
  const data = withConversation();
  addMessage(data, msg(10, 1, { direction: "out", status: "sent", updated_at: at(2) }));
  addMessage(data, msg(10, 1, { direction: "out", status: "queued", updated_at: at(1) }));
  assert.equal(data.messageById.get(10).status, "sent");
  addMessage(data, msg(10, 1, { direction: "out", status: "delivered", updated_at: at(7) }));
  assert.equal(data.messageById.get(10).status, "delivered");
  assert.equal(data.messages.get(1).length, 1);
});

test("cursors name every conversation with the last seq we hold of it", () => {
  const data = withConversation();
  upsertConversation(data, conv(2));
  mergeMessages(data, [msg(1, 1), msg(2, 2), msg(4, 4)]);
  assert.deepEqual(cursors(data), { 1: 4, 2: 0 });
});

test("a sync merges messages after the cursors, sets the cursor time and the agent's settings", () => {
  const data = withConversation();
  mergeMessages(data, [msg(1, 1)]);
  const { touched, dropped } = mergeSync(data, {
    user: { name: "alice" }, presence: { state: "ready" }, numbers: [{ number: "+15550001", default: true }],
    conversations: [conv(1, { updated_at: at(9), unread: 2 })], messages: [msg(2, 2), msg(3, 3)], statuses: [],
    server_time: 1772359209.5, queue: [], auto_select: true,
  });
  assert.deepEqual([touched, dropped], [[1], []]);
  assert.deepEqual(seqs(data), [1, 2, 3]);
  assert.equal(data.since, 1772359209.5);
  assert.deepEqual([data.user.name, data.presence, data.autoSelect], ["alice", "ready", true]);
  assert.equal(data.conversations.get(1).unread, 2);
});

test("a complete sync drops what it lacks (transferred away meanwhile); a full page of 500 drops nothing", () => {
  const data = withConversation();
  upsertConversation(data, conv(2));
  mergeMessages(data, [{ ...msg(7, 1), conversation_id: 2 }]);
  assert.deepEqual(mergeSync(data, { conversations: [conv(1)] }).dropped, [2]);
  assert.equal(data.messageById.has(7), false);
  upsertConversation(data, conv(2));
  const page = Array.from({ length: SYNC_COMPLETE_BELOW }, (_, i) => conv(100 + i));
  assert.deepEqual(mergeSync(data, { conversations: page }).dropped, []);
  assert.ok(data.conversations.has(1) && data.conversations.has(2));
});

test("an older conversation snapshot does not overwrite a newer one", () => {
  const data = newData();
  upsertConversation(data, conv(1, { state: "closed", updated_at: at(8) }));
  upsertConversation(data, conv(1, { state: "open", updated_at: at(2) }));
  assert.equal(data.conversations.get(1).state, "closed");
});

test("a customer's message brings a snoozed conversation back", () => {
  const data = newData();
  upsertConversation(data, conv(1, { snoozed_until: "2099-01-01T09:00:00Z" }));
  mergeMessages(data, [msg(1, 1)]);
  assert.equal(data.conversations.get(1).snoozed_until, null);
});

test("unread: the server's count, or ours once we have read further than it knows", () => {
  const data = newData();
  upsertConversation(data, conv(1, { unread: 3, read_seq: 0 }));
  mergeMessages(data, [msg(1, 1), msg(2, 2)]);
  assert.equal(unreadCount(data, data.conversations.get(1)), 3);
  data.localRead.set(1, 2);
  assert.equal(unreadCount(data, data.conversations.get(1)), 0);
});

test("a message with a pending send's client_id settles it, whether it comes by ack, push or sync", () => {
  const data = withConversation();
  data.outbox = new PendingQueue();
  data.outbox.add({ clientId: "c-1", payload: { conversation_id: 1, text: "hi" }, conversationKey: 1, text: "hi" });
  data.outbox.add({ clientId: "c-2", payload: { conversation_id: 1, text: "there" }, conversationKey: 1, text: "there" });
  mergeMessages(data, [msg(1, 1, { direction: "out", client_id: "c-1" })]);
  assert.deepEqual(data.outbox.items.map((o) => o.client_id), ["c-2"]);
  mergeSync(data, { conversations: [conv(1)], messages: [msg(2, 2, { direction: "out", client_id: "c-2" })] });
  assert.equal(data.outbox.length, 0);
});

test("nonsense from the wire is ignored, never thrown", () => {
  const data = withConversation();
  assert.deepEqual(mergeMessages(data, null), { changed: [], fresh: [], missed: false });
  assert.deepEqual(mergeStatuses(data, "x"), []);
  assert.deepEqual(mergeMessages(data, [null, { text: "no id" }]).fresh, []);
  mergeStatuses(data, [null, {}]);
  upsertConversation(data, null);
  assert.equal(data.messageById.size, 0);
});

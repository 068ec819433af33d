// Merging what the server says (a `sync` answer, pushed messages and statuses) into the client's data.
//
// Rules:
// - The server's database is the truth; pushes are a fast path that may arrive late, twice, out of
//   order or not at all. So: a message is stored once (by id), kept in seq order; a status or a
//   conversation snapshot older than the one we hold is ignored; a status that comes before its
//   message waits for it; a gap in seq numbers asks for a sync, which sends what we miss after
//   our cursors (the last seq we hold of each conversation).
// - A message with a client_id settles the pending send that made it (data.outbox).
// - A conversation opened from a search that sync does not list (data.extra) is kept: a complete sync
//   that lacks it does not drop it (it never listed it); once a sync lists it, it is a live one.
// - Pure functions of data: they change the `data` object they are given (newData's shape) and
//   return what changed; no DOM, no socket, no globals.

import { timeValue } from "./format.js";

export const SYNC_COMPLETE_BELOW = 500;  // a sync lists at most this many conversations (the newest)
const STATUS_RANK = { queued: 1, sent: 2, delivered: 3, undelivered: 3, failed: 3 };

/** Empty data: what merging reads and writes (state.js adds the client's own fields). */
export function newData() {
  return {
    since: null,              // server_time of the last successful sync
    user: null,
    presence: "not_ready",
    numbers: [],              // [{number, label, default}]
    outcomes: { choices: [], required: false }, // what a close may give
    targets: { users: [], teams: [] },          // whom a conversation may be transferred to
    autoSelect: false,        // this agent has selection rules: a new conversation's number may be left to them
    queue: [],                // conversations waiting in this agent's queues, oldest first
    conversations: new Map(), // id -> conversation
    messages: new Map(),      // conversation id -> messages sorted by seq
    messageById: new Map(),   // message id -> message
    pendingStatus: new Map(), // message id -> a status that arrived before its message
    localRead: new Map(),     // conversation id -> seq we marked read
    earlier: new Map(),       // conversation id -> the contact's earlier conversations (history)
    extra: new Set(),         // conversations opened from a search that sync does not list: kept, not in the live list
    outbox: null,             // a PendingQueue, when sends are pending
  };
}

/** Store a conversation snapshot unless the one we hold is newer. */
export function upsertConversation(data, conv) {
  if (!conv || conv.id === undefined || conv.id === null) return;
  const old = data.conversations.get(conv.id);
  if (old && timeValue(conv.updated_at) < timeValue(old.updated_at)) return;
  data.conversations.set(conv.id, { ...(old || {}), ...conv });
  if (!data.messages.has(conv.id)) data.messages.set(conv.id, []);
}

/** The seq of the last message we hold of a conversation (0: none). */
export function lastSeq(data, convId) {
  const list = data.messages.get(convId);
  return list && list.length ? Number(list[list.length - 1].seq) : 0;
}

/** The `sync` call's cursors: each conversation we know, with the last seq we hold of it. */
export function cursors(data) {
  const out = {};
  for (const id of data.conversations.keys()) out[id] = lastSeq(data, id);
  return out;
}

/** Take the waiting status of a message that has just arrived, if it is newer than the message's own. */
function withPendingStatus(data, m) {
  const pending = data.pendingStatus.get(m.id);
  if (!pending) return;
  data.pendingStatus.delete(m.id);
  if (timeValue(pending.updated_at) >= timeValue(m.updated_at)) {
    m.status = pending.status; m.error = pending.error; m.updated_at = pending.updated_at;
  }
}

/** Insert a message in seq order (usually at the end of its conversation). */
function insertBySeq(data, m) {
  let list = data.messages.get(m.conversation_id);
  if (!list) { list = []; data.messages.set(m.conversation_id, list); }
  let i = list.length;
  while (i > 0 && Number(list[i - 1].seq) > Number(m.seq)) i -= 1;
  list.splice(i, 0, m);
}

/** Store a message; a copy we hold already takes the newer status. The new message, or null. */
export function addMessage(data, msg) {
  if (!msg || msg.id === undefined || msg.id === null) return null;
  const existing = data.messageById.get(msg.id);
  if (existing) {
    if (timeValue(msg.updated_at) >= timeValue(existing.updated_at)) Object.assign(existing, msg);
    return null;
  }
  const m = { ...msg };
  withPendingStatus(data, m);
  data.messageById.set(m.id, m);
  const conv = data.conversations.get(m.conversation_id);
  if (conv && m.direction === "in" && conv.snoozed_until) conv.snoozed_until = null; // the customer texted: back in the list
  insertBySeq(data, m);
  if (m.client_id && data.outbox) data.outbox.settle(m.client_id); // the pending send is now stored
  return m;
}

/** Apply a status change: a newer one wins; at the same time, the further one (delivered over sent). */
export function applyStatus(data, st) {
  if (!st || st.id === undefined) return;
  const m = data.messageById.get(st.id);
  if (!m) {
    const prev = data.pendingStatus.get(st.id);
    if (!prev || timeValue(st.updated_at) >= timeValue(prev.updated_at)) data.pendingStatus.set(st.id, st);
    return;
  }
  const newer = timeValue(st.updated_at) > timeValue(m.updated_at);
  const same = timeValue(st.updated_at) === timeValue(m.updated_at);
  if (newer || (same && (STATUS_RANK[st.status] || 0) >= (STATUS_RANK[m.status] || 0))) {
    m.status = st.status;
    m.error = st.error;
    if (st.updated_at) m.updated_at = st.updated_at;
  }
}

/** A conversation's unread count: the server's, or ours when we have marked more read than it knows. */
export function unreadCount(data, conv) {
  const serverRead = Number(conv.read_seq) || 0;
  const ourRead = data.localRead.get(conv.id) || 0;
  const readSeq = Math.max(serverRead, ourRead);
  let local = 0;
  for (const m of data.messages.get(conv.id) || []) if (m.direction === "in" && Number(m.seq) > readSeq) local += 1;
  return serverRead >= ourRead ? Math.max(Number(conv.unread) || 0, local) : local;
}

/** Forget a conversation and its messages (transferred away, taken over). */
export function dropConversation(data, id) {
  data.conversations.delete(id);
  for (const m of data.messages.get(id) || []) data.messageById.delete(m.id);
  data.messages.delete(id);
  data.earlier.delete(id);
  data.localRead.delete(id);
  data.extra.delete(id);
}

/** Take the agent's settings a sync answer carries. */
function mergeSettings(data, ack) {
  if (ack.user) data.user = ack.user;
  if (ack.presence) data.presence = typeof ack.presence === "string" ? ack.presence : ack.presence.state || data.presence;
  if (Array.isArray(ack.numbers)) data.numbers = ack.numbers;
  if (ack.outcomes && Array.isArray(ack.outcomes.choices)) data.outcomes = ack.outcomes;
  if (ack.transfer_targets) data.targets = ack.transfer_targets;
  if (typeof ack.auto_select === "boolean") data.autoSelect = ack.auto_select;
  if (Array.isArray(ack.queue)) data.queue = ack.queue;
}

/** Merge a `sync` answer: {touched: conversation ids with news, dropped: ids no longer ours}. */
export function mergeSync(data, ack) {
  mergeSettings(data, ack);
  const touched = new Set();
  const dropped = [];
  for (const conv of ack.conversations || []) { upsertConversation(data, conv); touched.add(conv.id); data.extra.delete(conv.id); }
  if (Array.isArray(ack.conversations) && ack.conversations.length < SYNC_COMPLETE_BELOW) {
    // A complete list: what it lacks was transferred away (or taken over) while this tab was not listening.
    for (const id of [...data.conversations.keys()]) {
      if (!touched.has(id) && !data.extra.has(id)) { dropConversation(data, id); dropped.push(id); }
    }
  }
  for (const msg of ack.messages || []) { addMessage(data, msg); touched.add(msg.conversation_id); }
  for (const st of ack.statuses || []) applyStatus(data, st);
  if (ack.server_time !== undefined && ack.server_time !== null) data.since = ack.server_time;
  return { touched: [...touched], dropped };
}

/** Merge pushed messages (`message`, `messages`): {changed, fresh (new ones), missed (a sync is due)}. */
export function mergeMessages(data, list) {
  const changed = new Set();
  const fresh = [];
  let missed = false;
  for (const msg of Array.isArray(list) ? list : []) {
    if (!msg) continue;
    const known = data.conversations.has(msg.conversation_id);
    const have = lastSeq(data, msg.conversation_id);
    if (addMessage(data, msg)) fresh.push(msg);
    // A gap (or an unknown conversation) means we missed something: catch up through sync.
    if (!known || Number(msg.seq) > have + 1) missed = true;
    changed.add(msg.conversation_id);
  }
  return { changed: [...changed], fresh, missed };
}

/** Merge pushed statuses (`status`, `statuses`): the ids of the conversations whose messages changed. */
export function mergeStatuses(data, list) {
  const changed = new Set();
  for (const st of Array.isArray(list) ? list : []) {
    applyStatus(data, st);
    const m = st && data.messageById.get(st.id);
    if (m) changed.add(m.conversation_id);
  }
  return [...changed];
}

// Catching up with the server: `sync` on every (re)connect and whenever a push says we missed
// something; pushed messages and statuses merged and shown; conversations marked read.
//
// Rules:
// - One sync at a time; one asked for meanwhile runs right after. A sync that fails is tried again
//   while the link stays up; pending sends go out after each sync (the server knows our cursors then).
// - Merging is merge.js's (pure); this module renders what it changed, once per answer or burst,
//   and has the browser's storage forget the pending sends a merged message confirmed.

import { alertFor } from "./alerts.js";
import { flushOutbox } from "./composer.js";
import { renderConversationList } from "./list.js";
import { cursors, lastSeq, mergeMessages, mergeStatuses, mergeSync, unreadCount } from "./merge.js";
import { forgetSelected, selectConversation } from "./nav.js";
import { forgetSettled } from "./outbox.js";
import { renderAll, renderUser } from "./render.js";
import { emitWithAck, setConnection } from "./socket.js";
import { state } from "./state.js";
import { renderTranscript } from "./transcript.js";

const SYNC_TIMEOUT_MS = 15000;
const SYNC_SOON_MS = 150;     // pushes come in bursts: one sync after the burst
const SYNC_RETRY_MS = 2000;

let syncTimer = null;
/** A sync shortly (several asks in a burst make one). */
export function scheduleSync() {
  clearTimeout(syncTimer);
  syncTimer = setTimeout(sync, SYNC_SOON_MS);
}

/** Ask the server for everything after our cursors, merge it, then send what is pending. */
export async function sync() {
  if (!state.connected) return;
  if (state.syncing) { state.syncAgain = true; return; }
  state.syncing = true;
  try {
    const ack = await emitWithAck("sync", { cursors: cursors(state), since: state.since }, SYNC_TIMEOUT_MS);
    if (!ack || ack.ok === false) throw new Error((ack && ack.error) || "sync refused");
    applySync(ack);
    if (state.connected) {
      state.synced = true;
      setConnection("connected");
    }
  } catch {
    if (state.connected) {
      state.syncing = false;
      setTimeout(sync, SYNC_RETRY_MS);
      return;
    }
  } finally {
    state.syncing = false;
  }
  flushOutbox();
  if (state.syncAgain) { state.syncAgain = false; sync(); }
}

/** Merge a sync answer and show it; open the conversation the URL named once we have it. */
function applySync(ack) {
  const { touched, dropped } = mergeSync(state, ack);
  dropped.forEach(forgetSelected);
  if (ack.user) renderUser();
  afterMessagesChanged(touched);
  renderAll();
  const reopen = state.reopen; // the conversation the URL named when the page loaded
  if (reopen !== null && state.conversations.has(reopen)) {
    state.reopen = null;
    selectConversation(reopen);
  }
}

/** Pushed messages: one (`message`) or a burst (`messages`, in order), rendered once. */
export function receiveMessages(list) {
  const { changed, fresh, missed } = mergeMessages(state, list);
  forgetSettled(); // a message with a pending send's client_id confirmed it: storage forgets it too
  if (missed) scheduleSync();
  if (changed.length) afterMessagesChanged(changed);
  alertFor(fresh);
}

/** Pushed status changes: one (`status`) or a burst (`statuses`, in order), rendered once. */
export function receiveStatuses(list) {
  const changed = mergeStatuses(state, list);
  if (changed.length) afterMessagesChanged(changed);
}

/** Show what changed in these conversations (the list; the transcript if one is open). */
export function afterMessagesChanged(convIds) {
  renderConversationList();
  if (state.selected !== null && convIds.includes(state.selected)) {
    renderTranscript();
    markRead();
  }
}

/** Tell the server the agent has read the open conversation up to its last message. */
export function markRead() {
  const id = state.selected;
  if (id === null || id === "new" || document.hidden) return;
  const conv = state.conversations.get(id);
  if (!conv) return;
  const seq = lastSeq(state, id);
  if (!seq) return;
  const already = Math.max(Number(conv.read_seq) || 0, state.localRead.get(id) || 0);
  if (seq <= already && unreadCount(state, conv) === 0) return;
  state.localRead.set(id, seq);
  renderConversationList();
  if (state.connected) {
    emitWithAck("read", { conversation_id: id, seq }).catch(() => {
      // Not confirmed: forget it so it is sent again later.
      if (state.localRead.get(id) === seq) state.localRead.delete(id);
    });
  }
}

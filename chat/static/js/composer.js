// The composer: the segment counter, and sending (a reply, or a first message to a new number).
//
// Rules:
// - A send is queued first (pending.js), saved in the browser's storage (outbox.js) before it is
//   emitted, and shown at once; it goes out when the link is up, and again after every reconnect
//   or reload, always with the same client_id, until the server confirms it.
// - The server answering `retry` (its store is unavailable) is retried with backoff, SEND_ATTEMPTS
//   times, then shown as not confirmed with Retry and Discard.
// - A send the server refuses stays on screen, saved, with the server's reason and Retry and
//   Discard, so nothing typed is lost.
// - A pending bubble says what is true: "Sending…" only while a call is out, "Queued" while it
//   waits for the link (data-status "sending" for both: not stored by the server yet).

import { hasAttachments, withAttachments } from "./attach.js";
import { $, clearError, el, showError } from "./dom.js";
import { addMessage, upsertConversation } from "./merge.js";
import { selectConversation } from "./nav.js";
import { forgetSettled, saveSend, stillSaved, takeStorageChange, withSendLock } from "./outbox.js";
import { smsCount } from "./sms.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { plural, t } from "./strings.js";
import { afterMessagesChanged, scheduleSync } from "./sync.js";
import { renderTranscript } from "./transcript.js";

const SEND_ATTEMPTS = 8;          // answers with `retry` (the server's store is unavailable)
const RETRY_MAX_MS = 10000;
const REAUTH_RETRY_MS = 10000;    // the token could not be refreshed (the network): auth.js tries again meanwhile
const NUMBER = /^\+?\d{3,15}$/;

/** The counter's words for a count of smsCount: "190 characters (2 messages, GSM-7)". */
export function counterText({ encoding, units, segments }) {
  const chars = plural("counter.characters", units);
  if (segments === 0) return t("counter.empty", { chars, encoding });
  return t("counter.full", { chars, messages: plural("counter.messages", segments), encoding });
}

export function updateCounter() {
  const c = smsCount($("reply-text").value);
  const node = $("composer-counter");
  node.textContent = counterText(c);
  node.dataset.encoding = c.encoding;
  node.dataset.segments = String(c.segments);
  node.dataset.units = String(c.units);
}

function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  // Fallback for non-secure contexts (plain http on a LAN address).
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The `send` call's body for the open conversation or the new-number form; null if not sendable. */
function sendPayload(text) {
  if (state.selected === "new") {
    const to = $("new-to").value.trim().replace(/[\s().-]/g, "");
    if (!NUMBER.test(to)) {
      showError(t("send.bad_number"));
      $("new-to").focus();
      return null;
    }
    const from = $("from-picker").value || null;
    return from ? { to, text, from } : { to, text };
  }
  return state.selected !== null ? { conversation_id: state.selected, text } : null;
}

/** Send what the composer holds. */
export function submitComposer() {
  const textarea = $("reply-text");
  const text = textarea.value;
  if (!text.trim() && !hasAttachments()) return;
  const payload = sendPayload(text);
  if (!payload) return;
  withAttachments(payload); // attach.js: the files uploaded for it (`media`)
  const item = state.outbox.add({
    clientId: newClientId(),
    payload,
    conversationKey: state.selected === "new" ? `to:${payload.to}` : state.selected,
    text,
    createdAt: new Date().toISOString(),
  });
  saveSend(item); // before it is emitted: a tab closed from now on loses nothing
  textarea.value = "";
  updateCounter();
  clearError();
  renderTranscript();
  trySend(item);
}

/** Stored: show the message (and open its conversation if it was a first message). */
function sent(item, ack) {
  state.outbox.remove(item);
  forgetSettled();
  const msg = ack.message;
  if (ack.conversation) upsertConversation(state, ack.conversation);
  addMessage(state, msg);
  if (!state.conversations.has(msg.conversation_id)) scheduleSync();
  if (state.selected === "new" && String(item.conversationKey).startsWith("to:")) selectConversation(msg.conversation_id);
  afterMessagesChanged([msg.conversation_id]);
}

/** Refused: it waits on screen (and in storage) with the server's reason, for Retry or Discard. */
function refused(item, ack) {
  state.outbox.refuse(item, (ack && ack.error) || t("send.failed"));
  saveSend(item);
  renderTranscript();
}

/** The server could not store it just now; the same client_id keeps a retry from doubling it. */
function retryLater(item, ack) {
  if (item.attempts < SEND_ATTEMPTS) {
    setTimeout(() => trySend(item), Math.min(RETRY_MAX_MS, 500 * 2 ** item.attempts));
    return;
  }
  state.outbox.fail(item, ack.error || t("send.unstored"));
  saveSend(item);
  renderTranscript();
}

/** What the server answered a send. */
function answered(item, ack) {
  if (ack && ack.ok && ack.message) sent(item, ack);
  else if (!state.outbox.has(item)) renderTranscript(); // discarded (or confirmed by another tab) meanwhile
  else if (ack && ack.ok === false && ack.retry) retryLater(item, ack);
  else if (ack && ack.ok === false && ack.reauth) setTimeout(() => trySend(item), REAUTH_RETRY_MS);
  else refused(item, ack);
}

/** One send of the item, holding its lock: another tab of this browser may have sent it meanwhile. */
async function sendOnce(item) {
  if (state.outbox.has(item) && !stillSaved(item)) { // another tab had it confirmed (or discarded)
    state.outbox.settle(item.client_id);
    state.outbox.takeRemoved();
  }
  if (!state.outbox.has(item) || item.state !== "sending" || !state.connected) {
    item.inFlight = false;
    renderTranscript();
    return;
  }
  item.attempts += 1;
  let ack;
  try {
    ack = await emitWithAck("send", item.payload); // same client_id on every retry
  } catch {
    item.inFlight = false; // unanswered: the link is being rebuilt; sent again after the next sync
    renderTranscript();
    return;
  }
  item.inFlight = false;
  answered(item, ack);
}

async function trySend(item) {
  if (item.inFlight || item.state !== "sending") return;
  if (!state.connected) return; // flushed after the next sync
  item.inFlight = true;
  renderTranscript();
  try {
    await withSendLock(item, () => sendOnce(item));
  } catch {
    item.inFlight = false; // the lock could not be had (the page is going away)
  }
}

/** The agent's Retry on a send that was not confirmed or was refused. */
export function retrySend(item) {
  state.outbox.retry(item);
  saveSend(item);
  renderTranscript();
  trySend(item);
}

/** The agent's Discard on a send that was not confirmed or was refused. */
export function discardSend(item) {
  state.outbox.remove(item);
  forgetSettled();
  renderTranscript();
}

/** Another tab of this browser changed this user's saved sends (the storage event): show and send them. */
export function onOutboxStorage(event) {
  if (!takeStorageChange(event)) return;
  renderTranscript();
  if (state.synced) flushOutbox(); // one tab at a time per send (its lock): this one takes over if the other closes
}

/** Send everything queued (after a sync: the link is up and the server knows what we have). */
export function flushOutbox() {
  forgetSettled(); // what the sync's messages confirmed
  for (const item of state.outbox.sendable()) trySend(item);
}

// A pending item's state -> its data-status, its words, and whether Retry and Discard are offered.
const PENDING_LOOKS = {
  sending: (item) => ({ status: "sending", pending: item.inFlight && state.connected ? "sending" : "queued",
    words: item.inFlight && state.connected ? t("status.sending") : t("pending.queued"), choice: false }),
  unconfirmed: (item) => ({ status: "unconfirmed", pending: "unconfirmed",
    words: t("status.unconfirmed", { error: item.error || "" }), choice: true }),
  refused: (item) => ({ status: "refused", pending: "refused",
    words: t("pending.refused", { error: item.error || t("send.failed") }), choice: true }),
};

/** The line under a pending send (transcript.js draws the bubble): its state in words, Retry and Discard. */
export function pendingMeta(item) {
  const look = (PENDING_LOOKS[item.state] || PENDING_LOOKS.sending)(item);
  const meta = el("div", { className: "meta" },
    el("span", { className: `status status-${look.status}`, "data-testid": "message-status", "data-status": look.status,
      "data-pending": look.pending, title: look.pending === "queued" ? t("pending.queued_title") : null, text: look.words }));
  if (look.choice) {
    const retry = el("button", { type: "button", className: "link", "data-testid": "message-retry", text: t("pending.retry") });
    retry.addEventListener("click", () => retrySend(item));
    const discard = el("button", { type: "button", className: "link", "data-testid": "message-discard", text: t("pending.discard") });
    discard.addEventListener("click", () => discardSend(item));
    meta.append(retry, discard);
  }
  return meta;
}

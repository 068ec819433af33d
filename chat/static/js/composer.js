// The composer: the segment counter, and sending (a reply, or a first message to a new number).
//
// Rules:
// - A send is queued first (pending.js) and shown at once; it goes out when the link is up, and
//   again after every reconnect, always with the same client_id, until the server confirms it.
// - The server answering `retry` (its store is unavailable) is retried with backoff, SEND_ATTEMPTS
//   times, then shown as not confirmed with Retry and Discard.
// - A send the server refuses gives its text back to the composer, so nothing typed is lost.

import { $, clearError, showError } from "./dom.js";
import { addMessage, upsertConversation } from "./merge.js";
import { selectConversation } from "./nav.js";
import { smsCount } from "./sms.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { plural, t } from "./strings.js";
import { afterMessagesChanged, scheduleSync } from "./sync.js";
import { renderTranscript } from "./transcript.js";

const SEND_ATTEMPTS = 8;          // answers with `retry` (the server's store is unavailable)
const RETRY_MAX_MS = 10000;
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
  if (!text.trim()) return;
  const payload = sendPayload(text);
  if (!payload) return;
  const item = state.outbox.add({
    clientId: newClientId(),
    payload,
    conversationKey: state.selected === "new" ? `to:${payload.to}` : state.selected,
    text,
    createdAt: new Date().toISOString(),
  });
  textarea.value = "";
  updateCounter();
  clearError();
  renderTranscript();
  trySend(item);
}

/** Stored: show the message (and open its conversation if it was a first message). */
function sent(item, ack) {
  state.outbox.remove(item);
  const msg = ack.message;
  if (ack.conversation) upsertConversation(state, ack.conversation);
  addMessage(state, msg);
  if (!state.conversations.has(msg.conversation_id)) scheduleSync();
  if (state.selected === "new" && String(item.conversationKey).startsWith("to:")) selectConversation(msg.conversation_id);
  afterMessagesChanged([msg.conversation_id]);
}

/** Refused: say why, and give the text back so it is not lost. */
function refused(item, ack) {
  state.outbox.remove(item);
  const error = (ack && ack.error) || t("send.failed");
  showError(ack && ack.field ? t("send.refused_field", { error, field: ack.field }) : error);
  const textarea = $("reply-text");
  const here = state.selected === item.conversationKey ||
    (String(item.conversationKey).startsWith("to:") && state.selected === "new");
  if (!textarea.value && here) {
    textarea.value = item.text;
    updateCounter();
  }
  renderTranscript();
}

/** The server could not store it just now; the same client_id keeps a retry from doubling it. */
function retryLater(item, ack) {
  if (item.attempts < SEND_ATTEMPTS) {
    setTimeout(() => trySend(item), Math.min(RETRY_MAX_MS, 500 * 2 ** item.attempts));
    return;
  }
  state.outbox.fail(item, ack.error || t("send.unstored"));
  renderTranscript();
}

async function trySend(item) {
  if (item.inFlight || item.state !== "sending") return;
  if (!state.connected) return; // flushed after the next sync
  item.inFlight = true;
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
  if (ack && ack.ok === false && ack.retry && state.outbox.has(item)) retryLater(item, ack);
  else if (ack && ack.ok && ack.message) sent(item, ack);
  else refused(item, ack);
}

/** The agent's Retry on a send that was not confirmed. */
export function retrySend(item) {
  state.outbox.retry(item);
  renderTranscript();
  trySend(item);
}

/** The agent's Discard on a send that was not confirmed. */
export function discardSend(item) {
  state.outbox.remove(item);
  renderTranscript();
}

/** Send everything queued (after a sync: the link is up and the server knows what we have). */
export function flushOutbox() {
  for (const item of state.outbox.sendable()) trySend(item);
}

// The transcript of the open conversation: the contact's earlier conversations (oldest first), its
// messages in seq order with a separator at each new day, then this agent's pending sends; and the
// opted-out banner above the composer.
//
// Rules:
// - Message text is never HTML: el()/textContent only (dom.js). dir="auto" on every text the
//   customer or the agent wrote.
// - The transcript stays at the bottom when it was there (also when a picture in it loads later), and
//   jumps there when another conversation opens.
// - A message says what it is: automatic (didchat sent it itself: a scenario's greeting or away reply,
//   the opt-out confirmation), a note only agents see, failed or undelivered with the provider's words.
// - Times and days are format.js's (the browser's locale and zone); attachments are media.js's.

import { pendingMeta } from "./composer.js";
import { displayNumber } from "./contact.js";
import { $, el } from "./dom.js";
import { contactLabel, formatDay, formatTime, otherDay } from "./format.js";
import { releaseMedia, renderMedia } from "./media.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { plural, t } from "./strings.js";

const AT_BOTTOM_PX = 40;

const STATUS_LABELS = {
  sending: () => t("status.sending"),
  queued: () => t("status.queued"),
  sent: () => t("status.sent"),
  delivered: () => t("status.delivered"),
  undelivered: () => t("status.undelivered"),
  failed: () => t("status.failed"),
  received: () => t("status.received"),
};

export function renderTranscript() {
  const ol = $("transcript");
  const sel = state.selected;
  if (String(sel) !== ol.dataset.conv) releaseMedia(sel); // another conversation (or none): its pictures go
  if (sel === null) { ol.replaceChildren(); delete ol.dataset.conv; return; }
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < AT_BOTTOM_PX;
  const list = sel === "new" ? [] : (state.messages.get(sel) || []);
  const nodes = [...(sel === "new" ? [] : renderEarlier(state.earlier.get(sel) || [])), ...withDays(list)];
  nodes.push(...state.outbox.forKey(sel).map(renderPending));
  if (nodes.length === 0) {
    nodes.push(el("li", { className: "transcript-empty muted", text: sel === "new" ? t("transcript.first") : t("transcript.empty") }));
  }
  ol.replaceChildren(...nodes);
  if (atBottom || ol.dataset.conv !== String(sel)) ol.scrollTop = ol.scrollHeight;
  ol.dataset.conv = String(sel);
  state.transcriptStuck = ol.scrollHeight - ol.scrollTop - ol.clientHeight < AT_BOTTOM_PX;
}

/** The agent scrolled the transcript: remember whether it is at its bottom (main.js listens). */
export function onTranscriptScroll() {
  const ol = $("transcript");
  state.transcriptStuck = ol.scrollHeight - ol.scrollTop - ol.clientHeight < AT_BOTTOM_PX;
}

/** The transcript's own listener, for main.js: [element id, event, handler]. */
export const TRANSCRIPT_LISTENERS = [["transcript", "scroll", onTranscriptScroll]];

/** Something in the transcript grew after it was shown (a picture loaded): stay at the bottom if it was there. */
export function stickToBottom() {
  const ol = $("transcript");
  if (state.transcriptStuck) ol.scrollTop = ol.scrollHeight;
}

/** Scroll to a message of the open conversation (a search's match) and mark it found. */
export function showMessage(seq) {
  const node = $("transcript").querySelector(`:scope > [data-testid="message"][data-seq="${Number(seq)}"]`);
  if (!node) return;
  node.scrollIntoView({ block: "center" });
  onTranscriptScroll();
}

/** The opted-out banner above the composer: why no reply can go, in plain words. */
export function renderOptOut(conv) {
  const banner = $("optout-banner");
  const stopped = !!conv && conv.state !== "closed" && conv.opted_out === true;
  banner.hidden = !stopped;
  if (!stopped) { banner.textContent = ""; return; }
  const { name } = contactLabel(conv);
  banner.textContent = t("optout.banner", { who: name || displayNumber(conv.contact),
                                            number: conv.presented_number || conv.access_number || "" });
}

/** Read the contact's earlier conversations once per conversation opened. */
export async function loadEarlier(id) {
  if (id === null || id === "new" || state.earlier.has(id)) return;
  try {
    const ack = await emitWithAck("history", { conversation_id: id });
    if (ack && ack.ok && Array.isArray(ack.conversations)) {
      state.earlier.set(id, ack.conversations);
      if (state.selected === id) renderTranscript();
    }
  } catch { /* shown again when the conversation is selected next */ }
}

/** The earlier conversations, oldest first, above the current conversation's messages. */
function renderEarlier(list) {
  return [...list].reverse().map((conv) => {
    const when = formatTime(conv.closed_at || conv.updated_at);
    const head = conv.state === "closed" ? t("earlier.closed", { when }) : t("earlier.open", { when });
    return el("li", { className: "earlier", "data-testid": "earlier-conversation", "data-id": conv.id },
      el("div", { className: "earlier-head muted", text: conv.outcome ? t("earlier.with_outcome", { head, outcome: conv.outcome }) : head }),
      el("ol", { className: "transcript-earlier" }, ...withDays(conv.messages || [])));
  });
}

/** Messages with a day separator before the first and at each change of calendar day. */
function withDays(messages) {
  const nodes = [];
  let prev = null;
  for (const m of messages) {
    if (m.created_at && (prev === null || otherDay(prev, m.created_at))) {
      nodes.push(el("li", { className: "day-separator", "data-testid": "day-separator" },
        el("span", { text: formatDay(m.created_at) })));
    }
    if (m.created_at) prev = m.created_at;
    nodes.push(renderMessage(m));
  }
  return nodes;
}

function timeNode(m) {
  return el("time", { datetime: m.created_at || "", title: m.created_at ? new Date(m.created_at).toLocaleString() : "",
                      text: formatTime(m.created_at) });
}

function renderNote(m) {
  return el("li", { className: "message note", "data-testid": "message", "data-direction": "note", "data-id": m.id, "data-seq": m.seq },
    el("div", { className: "bubble" },
      el("div", { className: "note-label", "data-testid": "note-label", text: t("message.note") }),
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: m.text || "" }),
      renderMedia(m),
      el("div", { className: "meta" }, timeNode(m))));
}

function failed(m) {
  return (m.status === "failed" || m.status === "undelivered") && !!m.error;
}

/** An outgoing message's status word (its reason is a line of its own: errorNode). */
function statusNode(m) {
  const status = m.status || "queued";
  return el("span", {
    className: `status status-${status}`,
    "data-testid": "message-status",
    "data-status": status,
    text: STATUS_LABELS[status] ? STATUS_LABELS[status]() : status,
  });
}

/** Why a message failed, in the provider's words. */
function errorNode(m) {
  return failed(m) ? el("div", { className: "message-error", "data-testid": "message-error", dir: "auto",
                                 text: t("message.provider_said", { error: m.error }) }) : null;
}

/** The line under an outgoing message: automatic or not, the time, from which number, its status, its parts. */
function outMeta(meta, m) {
  if (m.automatic) {
    meta.prepend(el("span", { className: "auto-label", "data-testid": "automatic-label",
                              text: m.compliance ? t("message.automatic_compliance") : t("message.automatic") }));
  }
  if (m.from) meta.appendChild(el("span", { className: "from muted", text: t("message.from", { number: m.from }) }));
  meta.appendChild(statusNode(m));
  if (m.segments > 1) meta.appendChild(el("span", { className: "muted", text: t("message.parts", { count: m.segments }) }));
}

function messageClass(m, out) {
  const found = state.search.found;
  return `message ${out ? "out" : "in"}${out && m.automatic ? " automatic" : ""}${out && failed(m) ? " failed" : ""}` +
    `${found && found.id === m.conversation_id && Number(found.seq) === Number(m.seq) ? " found" : ""}`;
}

export function renderMessage(m) {
  if (m.direction === "note") return renderNote(m);
  const out = m.direction === "out";
  const meta = el("div", { className: "meta" }, timeNode(m));
  if (out) outMeta(meta, m);
  const hasMedia = Array.isArray(m.media) && m.media.length > 0;
  const text = m.text || !hasMedia ? el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: m.text || "" }) : null;
  return el("li", {
    className: messageClass(m, out),
    "data-testid": "message",
    "data-automatic": out && m.automatic ? "true" : null,
    "data-direction": out ? "out" : "in",
    "data-id": m.id,
    "data-seq": m.seq,
  },
    el("div", { className: "bubble" }, text, renderMedia(m), errorNode(m), meta));
}

/** A send not confirmed yet: sending (or waiting for the link), or not confirmed with Retry and Discard. */
function renderPending(item) {
  const meta = pendingMeta(item); // composer.js: Sending… / Queued / not sent, with Retry and Discard
  const media = (item.payload && Array.isArray(item.payload.media)) ? item.payload.media.length : 0;
  return el("li", {
    className: "message out pending",
    "data-testid": "message",
    "data-direction": "out",
    "data-client-id": item.client_id,
  },
    el("div", { className: "bubble" },
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: item.text }),
      media ? el("div", { className: "muted", text: plural("attach.count", media) }) : null,
      meta));
}

// The transcript of the open conversation: the contact's earlier conversations (oldest first), its
// messages in seq order, then this agent's pending sends.
//
// Rules:
// - Message text is never HTML: el()/textContent only (dom.js). dir="auto" on every text the
//   customer or the agent wrote.
// - The transcript stays at the bottom when it was there, and jumps there when another conversation opens.
// - A message didchat sent itself (automatic: a scenario's greeting or away reply, the opt-out
//   confirmation) and a note only agents see are marked as such.

import { discardSend, retrySend } from "./composer.js";
import { $, el } from "./dom.js";
import { formatTime } from "./format.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";

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
  if (sel === null) { ol.replaceChildren(); return; }
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < AT_BOTTOM_PX;
  const list = sel === "new" ? [] : (state.messages.get(sel) || []);
  const nodes = [...(sel === "new" ? [] : renderEarlier(state.earlier.get(sel) || [])), ...list.map(renderMessage)];
  nodes.push(...state.outbox.forKey(sel).map(renderPending));
  if (nodes.length === 0) {
    nodes.push(el("li", { className: "transcript-empty muted", text: sel === "new" ? t("transcript.first") : t("transcript.empty") }));
  }
  ol.replaceChildren(...nodes);
  if (atBottom || ol.dataset.conv !== String(sel)) ol.scrollTop = ol.scrollHeight;
  ol.dataset.conv = String(sel);
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
      el("ol", { className: "transcript-earlier" }, ...(conv.messages || []).map(renderMessage)));
  });
}

function renderNote(m) {
  return el("li", { className: "message note", "data-testid": "message", "data-direction": "note", "data-id": m.id, "data-seq": m.seq },
    el("div", { className: "bubble" },
      el("div", { className: "note-label muted", text: t("message.note") }),
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: m.text || "" }),
      el("div", { className: "meta" }, el("time", { datetime: m.created_at || "", text: formatTime(m.created_at) }))));
}

/** An outgoing message's status, with the provider's words when it failed. */
function statusNode(m) {
  const status = m.status || "queued";
  const label = STATUS_LABELS[status] ? STATUS_LABELS[status]() : status;
  return el("span", {
    className: `status status-${status}`,
    "data-testid": "message-status",
    "data-status": status,
    text: (status === "failed" || status === "undelivered") && m.error ? t("message.status_error", { label, error: m.error }) : label,
  });
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

export function renderMessage(m) {
  if (m.direction === "note") return renderNote(m);
  const out = m.direction === "out";
  const meta = el("div", { className: "meta" },
    el("time", { datetime: m.created_at || "", title: m.created_at || "", text: formatTime(m.created_at) }));
  if (out) outMeta(meta, m);
  return el("li", {
    className: `message ${out ? "out" : "in"}${out && m.automatic ? " automatic" : ""}`,
    "data-testid": "message",
    "data-automatic": out && m.automatic ? "true" : null,
    "data-direction": out ? "out" : "in",
    "data-id": m.id,
    "data-seq": m.seq,
  },
    el("div", { className: "bubble" },
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: m.text || "" }),
      meta));
}

/** A send not confirmed yet: sending (or waiting for the link), or not confirmed with Retry and Discard. */
function renderPending(item) {
  const status = item.state === "sending" ? "sending" : "unconfirmed";
  const words = status === "sending" ? (state.connected ? t("status.sending") : t("status.waiting_for_link"))
    : t("status.unconfirmed", { error: item.error || "" });
  const meta = el("div", { className: "meta" },
    el("span", { className: `status status-${status}`, "data-testid": "message-status", "data-status": status, text: words }));
  if (status === "unconfirmed") {
    const retry = el("button", { type: "button", className: "link", "data-testid": "message-retry", text: t("pending.retry") });
    retry.addEventListener("click", () => retrySend(item));
    const discard = el("button", { type: "button", className: "link", text: t("pending.discard") });
    discard.addEventListener("click", () => discardSend(item));
    meta.append(retry, discard);
  }
  return el("li", {
    className: "message out pending",
    "data-testid": "message",
    "data-direction": "out",
    "data-client-id": item.client_id,
  },
    el("div", { className: "bubble" },
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: item.text }),
      meta));
}

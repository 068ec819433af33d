// The sidebar: this agent's conversations (newest activity first, snoozed ones last), the unread
// count in the tab's title, and the queue of conversations waiting for someone to take them.
//
// Rules:
// - An item is a plain focusable list item opened with a click, Enter or Space (a role of button
//   would take it out of the list for screen readers).
// - Text from the server goes in through el()/textContent only (dom.js).
// - A contact shows by name, its number smaller beside; without a name, by its number as its
//   country writes it once the server told us (contact.js), else in E.164. data-contact is E.164.

import { displayNumber } from "./contact.js";
import { $, clearError, el, showError } from "./dom.js";
import { contactLabel, formatTime, timeValue } from "./format.js";
import { unreadCount, upsertConversation } from "./merge.js";
import { keepFocus, selectConversation } from "./nav.js";
import { renderPane } from "./render.js";
import { renderSearch } from "./search.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";

export function isSnoozed(conv) {
  return conv.state !== "closed" && !!conv.snoozed_until && timeValue(conv.snoozed_until) > Date.now();
}

/** The server pushes the end of a snooze; this only moves the conversation back in the list on time. */
function scheduleSnoozeEnd() {
  clearTimeout(state.snoozeTimer);
  const ends = [...state.conversations.values()].filter(isSnoozed).map((c) => timeValue(c.snoozed_until));
  if (ends.length) state.snoozeTimer = setTimeout(() => { renderConversationList(); renderPane(); }, Math.min(...ends) - Date.now() + 50);
}

function convActivity(conv) {
  const list = state.messages.get(conv.id) || [];
  const last = list[list.length - 1];
  return Math.max(timeValue(conv.updated_at), last ? timeValue(last.created_at) : 0);
}

function sortedConversations() {
  // Not those opened from a search that sync does not list (state.extra): they show among its results.
  return [...state.conversations.values()].filter((c) => !state.extra.has(c.id)).sort((a, b) => {
    const s = Number(isSnoozed(a)) - Number(isSnoozed(b)); // snoozed ones last
    if (s !== 0) return s;
    const d = convActivity(b) - convActivity(a);
    return d !== 0 ? d : Number(b.id) - Number(a.id);
  });
}

/** A conversation's state words under its name: closed, snoozed or opted out ("" when open). */
function stateWords(conv, snoozed) {
  if (conv.state === "closed") return conv.outcome ? t("state.closed_with", { outcome: conv.outcome }) : t("state.closed");
  if (snoozed) return t("state.snoozed_until", { time: formatTime(conv.snoozed_until) });
  return conv.opted_out ? t("state.opted_out") : "";
}

/** The last message's preview, with who sent it when it went out. */
function preview(last) {
  if (!last) return "";
  const who = last.direction === "out" ? (last.automatic ? t("list.by_automatic") : t("list.by_you")) : "";
  return `${who}${last.text || ""}`;
}

function itemClass(conv, unread, snoozed) {
  return `conversation-item${state.selected === conv.id ? " selected" : ""}${unread ? " has-unread" : ""}` +
    `${conv.state === "closed" ? " closed" : ""}${snoozed ? " snoozed" : ""}`;
}

function renderItem(conv) {
  const { name, number } = contactLabel(conv);
  const shownNumber = displayNumber(conv.contact);
  const list = state.messages.get(conv.id) || [];
  const last = list[list.length - 1];
  const unread = unreadCount(state, conv);
  const snoozed = isSnoozed(conv);
  const li = el("li", {
    className: itemClass(conv, unread, snoozed),
    "data-testid": "conversation-item",
    "data-contact": number,
    "data-id": conv.id,
    tabindex: "0",
    "aria-current": state.selected === conv.id ? "true" : null,
  },
    el("div", { className: "ci-top" },
      el("span", { className: "ci-name", dir: "auto", "data-testid": "conversation-name", text: name || shownNumber }),
      el("span", { className: "ci-time muted", text: formatTime(last ? last.created_at : conv.updated_at) })),
    el("div", { className: "ci-bottom" },
      el("span", { className: "ci-sub muted", "data-testid": "conversation-status", text: [name ? shownNumber : "", stateWords(conv, snoozed)].filter(Boolean).join(" · ") }),
    ),
    el("div", { className: "ci-bottom" },
      el("span", { className: "ci-preview", dir: "auto", "data-testid": "conversation-preview", text: preview(last) }),
      unread ? el("span", { className: "badge", "data-testid": "unread-badge", text: String(unread), "aria-label": t("list.unread", { count: unread }) }) : null),
  );
  li.addEventListener("click", () => selectConversation(conv.id));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectConversation(conv.id); }
  });
  return li;
}

export function renderConversationList() {
  const convs = sortedConversations();
  $("conversation-empty").hidden = convs.length > 0;
  keepFocus($("conversation-list"), () => $("conversation-list").replaceChildren(...convs.map(renderItem)));
  const unread = convs.reduce((sum, conv) => sum + unreadCount(state, conv), 0);
  document.title = unread ? t("title.unread", { count: unread }) : t("app.name");
  renderQueue();
  scheduleSnoozeEnd();
  renderSearch(); // the search's results show the live snapshots too (search.js)
}

function renderQueueItem(q) {
  const { name } = contactLabel(q);
  const number = displayNumber(q.contact);
  const minutes = Math.floor((Number(q.waiting_seconds) || 0) / 60);
  const wait = minutes ? t("time.minutes", { count: minutes }) : t("time.just_now");
  const take = el("button", { type: "button", className: "small", "data-testid": "queue-take", text: t("queue.take") });
  take.addEventListener("click", () => takeQueued(q.id, take));
  return el("li", { className: "queue-item", "data-testid": "queue-item", "data-id": q.id },
    el("span", { className: "qi-text" },
      el("bdi", { dir: "auto", text: name || number }),
      el("span", { className: "muted", text: t("queue.where", { queue: q.queue, position: q.position, wait }) })),
    take);
}

function renderQueue() {
  const items = state.queue.filter((q) => !state.conversations.has(q.id));
  $("queue-section").hidden = items.length === 0;
  $("queue-title").textContent = t("queue.title_count", { count: items.length });
  $("queue-list").replaceChildren(...items.map(renderQueueItem));
}

async function takeQueued(id, button) {
  button.disabled = true;
  try {
    const ack = await emitWithAck("claim", { conversation_id: id });
    state.queue = state.queue.filter((q) => q.id !== id);
    if (ack && ack.ok) {
      if (ack.conversation) upsertConversation(state, ack.conversation);
      clearError();
      selectConversation(id);
    } else {
      showError((ack && ack.error) || t("queue.taken"));
    }
  } catch (err) {
    button.disabled = false;
    showError(t("error.because", { what: t("queue.take_failed"), error: err.message }));
  }
  renderConversationList();
}

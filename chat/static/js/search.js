// The search box and the filter chips above the conversation list: the server's `search` over names,
// numbers and message text, open / waiting / closed / unread, a page at a time ("Load more").
//
// Rules:
// - "All" with no text is the live list (sync's). Anything else asks the server's `search` (debounced
//   while typing), even a filter alone: the live list holds only sync's newest 500 conversations
//   assigned to the agent, so it cannot say which are closed past those, waiting for them, or taken by
//   a colleague on their number; one call gives every filter the same meaning, at any count.
// - Results stay as the server gave them (a conversation read while "Unread" is shown stays), each
//   shown with the live snapshot when the live list has it (its unread count, state, name as they are).
// - An answer to an older question is dropped (each search has a ticket); a page adds what is new.
// - The match's excerpt and the name are marked with <mark> built by DOM calls (format.js finds where).
// - Opening a result the live list lacks reads it with `transcript` (merge.js keeps it: data.extra).

import { displayNumber } from "./contact.js";
import { $, el, showError } from "./dom.js";
import { contactLabel, formatTime, nameRanges, wordRanges } from "./format.js";
import { addMessage, unreadCount, upsertConversation } from "./merge.js";
import { selectConversation } from "./nav.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { plural, t } from "./strings.js";
import { loadEarlier, showMessage } from "./transcript.js";

const DEBOUNCE_MS = 250;
const CALL_TIMEOUT_MS = 12000; // the server answers within its own 10 s
const FILTERS = { all: {}, open: { state: "open" }, waiting: { state: "waiting" }, closed: { state: "closed" },
                  unread: { unread: true } };
let typingTimer = null;

/** Typing in the search box: search once the agent pauses. */
export function onSearchInput() {
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => runSearch(false), DEBOUNCE_MS);
}

/** Escape clears the search, text and filter (the live list again); Enter searches at once. */
export function onSearchKey(e) {
  if (e.key === "Escape" && state.search.active) {
    e.preventDefault();
    $("search-q").value = "";
    state.search.filter = "all";
    runSearch(false);
  }
  if (e.key === "Enter") { e.preventDefault(); runSearch(false); }
}

/** A filter chip: that filter, with the text typed. */
export function onFilterClick(e) {
  const chip = e.target.closest("[data-filter]");
  if (!chip || !Object.hasOwn(FILTERS, chip.dataset.filter)) return;
  state.search.filter = chip.dataset.filter;
  runSearch(false);
}

/** The call's payload: the text, the filter, where the page starts. */
function payload(s, before) {
  return { ...(s.q ? { q: s.q } : {}), ...FILTERS[s.filter], ...(before ? { before } : {}) };
}

/** Search afresh (more: the next page of the same search). */
export async function runSearch(more) {
  clearTimeout(typingTimer);
  const s = state.search;
  if (!more) {
    s.q = $("search-q").value.trim();
    s.results = [];
    s.next = null;
    s.active = !!s.q || s.filter !== "all";
  }
  s.error = null;
  s.ticket += 1;
  const ticket = s.ticket;
  s.loading = s.active;
  renderSearch();
  if (!s.active) return;
  try {
    const ack = await emitWithAck("search", payload(s, more ? s.next : null), CALL_TIMEOUT_MS);
    if (ticket !== s.ticket) return; // a newer search was asked meanwhile
    if (ack && ack.ok && Array.isArray(ack.conversations)) {
      const have = new Set(s.results.map((c) => c.id));
      s.results.push(...ack.conversations.filter((c) => c && !have.has(c.id)));
      s.next = ack.next || null;
    } else {
      s.error = (ack && ack.error) || t("search.failed");
    }
  } catch (err) {
    if (ticket !== s.ticket) return;
    s.error = t("error.because", { what: t("search.failed"), error: err.message });
  }
  s.loading = false;
  renderSearch();
}

/** Pieces of `text` with the ranges marked: [text, <mark>, text, ...] (DOM nodes, never HTML). */
function marked(text, ranges) {
  const parts = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start > at) parts.push(text.slice(at, start));
    parts.push(el("mark", { text: text.slice(start, end) }));
    at = end;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

function stateWord(conv) {
  if (conv.state === "closed") return conv.outcome ? t("state.closed_with", { outcome: conv.outcome }) : t("state.closed");
  if (conv.state === "waiting") return t("search.waiting");
  return conv.opted_out ? t("state.opted_out") : "";
}

/** The result's second line: the match's excerpt, else the last message the live list holds. */
function excerpt(conv) {
  if (conv.match && conv.match.text) return marked(String(conv.match.text), wordRanges(conv.match.text, state.search.q));
  const list = state.messages.get(conv.id) || [];
  const last = list[list.length - 1];
  return last && last.text ? [String(last.text)] : [];
}

function renderResult(found) {
  const live = state.conversations.get(found.id);
  // The live snapshot is the newer; only it lacks "waiting" (sync shows a conversation as open or closed).
  const now = live && (live.state === "closed" ? "closed" : found.state === "waiting" ? "waiting" : "open");
  const conv = live ? { ...found, ...live, state: now } : found;
  const { name, number } = contactLabel(conv);
  const shownNumber = displayNumber(conv.contact); // as the live list shows it (contact.js)
  const unread = live ? unreadCount(state, live) : Number(conv.unread) || 0;
  const li = el("li", {
    className: `conversation-item search-item${state.selected === conv.id ? " selected" : ""}${unread ? " has-unread" : ""}` +
      `${conv.state === "closed" ? " closed" : ""}`,
    "data-testid": "search-result", "data-id": conv.id, "data-contact": number, "data-state": conv.state, tabindex: "0",
    "aria-current": state.selected === conv.id ? "true" : null,
  },
    el("div", { className: "ci-top" },
      el("span", { className: "ci-name", dir: "auto", ...(name ? {} : { text: shownNumber }) },
        ...(name ? marked(name, nameRanges(name, state.search.q)) : [])),
      el("span", { className: "ci-time muted", text: formatTime(conv.updated_at) })),
    el("div", { className: "ci-bottom" },
      el("span", { className: "ci-sub muted", text: [name ? shownNumber : "", stateWord(conv)].filter(Boolean).join(" · ") })),
    el("div", { className: "ci-bottom" },
      el("span", { className: "ci-preview", dir: "auto", "data-testid": "search-excerpt" }, ...excerpt(conv)),
      unread ? el("span", { className: "badge", text: String(unread), "aria-label": t("list.unread", { count: unread }) }) : null));
  li.addEventListener("click", () => openResult(found));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openResult(found); }
  });
  return li;
}

/** The status line: searching, nothing found, how many are shown, or why the search failed. */
function statusText(s) {
  if (s.error) return s.error;
  if (s.loading && !s.results.length) return t("search.searching");
  if (!s.results.length) return t("search.none");
  return plural("search.shown", s.results.length);
}

/** The sidebar: the live list, or the search's results in its place (list.js calls this on every change). */
export function renderSearch() {
  const s = state.search;
  $("search-view").closest(".sidebar").classList.toggle("searching", s.active);
  for (const chip of $("search-filters").querySelectorAll("[data-filter]")) {
    chip.setAttribute("aria-pressed", chip.dataset.filter === s.filter ? "true" : "false");
  }
  $("search-view").hidden = !s.active;
  if (!s.active) { $("search-results").replaceChildren(); return; }
  $("search-status").textContent = statusText(s);
  $("search-status").dataset.kind = s.error ? "error" : "";
  $("search-results").replaceChildren(...s.results.map(renderResult));
  $("search-more").hidden = !s.next;
  $("search-more").disabled = s.loading;
}

/** "Load more": the next page. */
export function loadMore() {
  if (state.search.next && !state.search.loading) runSearch(true);
}

/** Open a result: at once if the live list has it, else read it first (`transcript`); then show its match. */
async function openResult(found) {
  if (!state.conversations.has(found.id) && !(await loadConversation(found.id))) return;
  if (found.match) await loadEarlier(found.id); // first: earlier conversations put in later would move the match away
  state.search.found = found.match ? { id: found.id, seq: found.match.seq } : null;
  selectConversation(found.id);
  if (found.match) showMessage(found.match.seq);
}

async function loadConversation(id) {
  try {
    const ack = await emitWithAck("transcript", { conversation_id: id }, CALL_TIMEOUT_MS);
    if (!(ack && ack.ok && ack.conversation)) {
      showError((ack && ack.error) || t("search.open_failed"));
      return false;
    }
    state.extra.add(id); // first: a sync meanwhile must not drop it
    upsertConversation(state, ack.conversation);
    for (const m of ack.messages || []) addMessage(state, m);
    return true;
  } catch (err) {
    showError(t("error.because", { what: t("search.open_failed"), error: err.message }));
    return false;
  }
}

/** The search's controls, for main.js to listen to: [element id, event, handler]. */
export const SEARCH_LISTENERS = [
  ["search-q", "input", onSearchInput],
  ["search-q", "keydown", onSearchKey],
  ["search-filters", "click", onFilterClick],
  ["search-more", "click", loadMore],
];

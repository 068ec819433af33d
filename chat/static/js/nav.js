// Moving between views: open a conversation, back to the list (a phone), start a new one; and the
// keyboard shortcuts that do so (keys.js says which key is which; "?" lists them).
//
// Rules:
// - The open conversation is in the URL (#c=ID), so a reload opens it again.
// - A draft stays with its conversation while the page lives (state.drafts): moving to another one,
//   by a click or a key, loses nothing typed.
// - A shortcut does what its control does, through the same function (Alt+C is the Close button's
//   click, its outcome rules included); a key that finds nothing to do is left to the browser.
// - Keys pressed in a dialog are the dialog's (Escape closes it), and none acts on the login page.

import { loadContact } from "./contact.js";
import { $, clearError, showNotice } from "./dom.js";
import { moveIndex, nextUnread, neighbour, shortcutFor } from "./keys.js";
import { cancelSnoozeAt, showSnoozeAt } from "./lifecycle.js";
import { renderConversationList } from "./list.js";
import { dropConversation } from "./merge.js";
import { renderPane } from "./render.js";
import { state } from "./state.js";
import { t } from "./strings.js";
import { markRead } from "./sync.js";
import { loadEarlier } from "./transcript.js";
import { toggleTransfer } from "./transfer.js";

const TEXTLESS_INPUTS = new Set(["checkbox", "radio", "button", "submit", "reset", "range", "color", "file"]);
/** Whether Option types characters here (a Mac): read when a key is pressed, never at import. */
const onMac = () => /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");

/** Keep what the composer holds for the conversation being left, and give back the one's being opened. */
function swapDraft(next) {
  const textarea = $("reply-text");
  const leaving = state.selected;
  if (leaving !== null && leaving !== "new") {
    if (textarea.value) state.drafts.set(leaving, textarea.value); else state.drafts.delete(leaving);
  }
  textarea.value = next !== null && next !== "new" ? state.drafts.get(next) || "" : "";
}

/** Open a conversation (an id). */
export function selectConversation(id) {
  state.board = false;
  if (state.selected !== id) {
    swapDraft(id);
    $("snooze-choice").value = "";
    showSnoozeAt(false);
  }
  state.selected = id;
  history.replaceState(null, "", `#c=${id}`); // a reload opens it again
  clearError();
  renderConversationList();
  renderPane();
  markRead();
  loadEarlier(id);
  loadContact(id);
  $("reply-text").focus();
}

/** A phone's back button: the list again (on a wider screen the list is always beside the conversation). */
export function backToList() {
  const left = state.selected;
  state.board = false;
  swapDraft(null);
  state.selected = null;
  history.replaceState(null, "", location.pathname);
  renderConversationList();
  renderPane();
  // The focus goes back to the conversation just left, in the list or among search results, whichever shows.
  const shown = [...document.querySelectorAll('[data-testid="conversation-item"], [data-testid="search-result"]')]
    .filter((node) => node.getClientRects().length > 0);
  const item = shown.find((node) => node.dataset.id === String(left)) || shown[0];
  if (item) item.focus();
}

/** The composer for a first message to a number. */
export function startNewConversation() {
  state.board = false;
  swapDraft("new");
  state.selected = "new";
  state.newFrom = null;
  $("new-to").value = "";
  clearError();
  renderConversationList();
  renderPane();
  $("new-to").focus();
}

/** A conversation that is gone from this agent: close it if it is open. */
export function forgetSelected(id) {
  if (state.selected === id) { state.selected = null; $("transfer-form").hidden = true; }
}

/** Forget a conversation that is no longer this agent's (transferred, taken over). */
export function forgetConversation(id) {
  dropConversation(state, id);
  forgetSelected(id);
}

/** Where the focus is, as keys.js tells places apart. */
function focusKind(node) {
  if (!node || !node.tagName) return "other";
  if (node.tagName === "SELECT") return "select";
  if (node.tagName === "TEXTAREA" || node.isContentEditable) return "text";
  if (node.tagName === "INPUT") return TEXTLESS_INPUTS.has(node.type) ? "other" : "text";
  return node.dataset && node.dataset.testid === "conversation-item" ? "list" : "other";
}

/** The conversation list's items, in the order shown. */
const listItems = () => [...document.querySelectorAll('#conversation-list [data-testid="conversation-item"]')];
const itemId = (li) => Number(li.dataset.id);

/** Alt+↓ / Alt+↑: the next or previous conversation in the list. */
function openNeighbour(step) {
  const id = neighbour(listItems().map(itemId), state.selected, step);
  if (id === null) return false;
  selectConversation(id);
  return true;
}

/** Alt+N: the next conversation with unread messages (after the open one, round to the top). */
function openNextUnread() {
  const items = listItems();
  const unread = new Set(items.filter((li) => li.querySelector('[data-testid="unread-badge"]')).map(itemId));
  const id = nextUnread(items.map(itemId), unread, state.selected);
  if (id === null) { showNotice(t("keys.no_unread")); return true; }
  selectConversation(id);
  return true;
}

/** Alt+R, or R outside a text field: the composer, when a conversation is open and takes a reply. */
function focusComposer() {
  const textarea = $("reply-text");
  if ($("composer").hidden || textarea.disabled) return false;
  textarea.focus();
  return true;
}

/** Alt+C: what the Close button does (its outcome rules included), when it is there. */
function closeByKey() {
  const button = $("close-conversation");
  if ($("pane-header").hidden || $("conv-actions").hidden || button.hidden || button.disabled) return false;
  button.click();
  return true;
}

/** Escape: close the open form (transfer, snooze until), else back to the list where one view shows at a time. */
function escape() {
  if (!$("transfer-form").hidden) { toggleTransfer(false); $("transfer-open").focus(); return true; }
  if (!$("snooze-at-form").hidden) { cancelSnoozeAt(); $("snooze-choice").focus(); return true; }
  const oneView = getComputedStyle($("back-to-list")).display !== "none";
  if (oneView && $("app-view").dataset.view === "conversation") { backToList(); return true; }
  return false;
}

/** ↓ ↑ Home End in the conversation list: move the focus (Enter opens: list.js). */
function moveFocus(action, from) {
  const items = listItems();
  const to = items[moveIndex(action, items.indexOf(from), items.length)];
  if (to) to.focus();
  return !!to;
}

/** "?" or the Keys button: the list of shortcuts. */
export function openKeysHelp() {
  const dialog = $("keys-help");
  if (!dialog.open) dialog.showModal();
  $("keys-close").focus();
  return true;
}

export function closeKeysHelp() {
  $("keys-help").close();
}

const ACTIONS = {
  next: () => openNeighbour(1),
  previous: () => openNeighbour(-1),
  nextUnread: openNextUnread,
  reply: focusComposer,
  close: closeByKey,
  help: openKeysHelp,
  escape,
  focusNext: (e) => moveFocus("focusNext", e.target),
  focusPrevious: (e) => moveFocus("focusPrevious", e.target),
  focusFirst: (e) => moveFocus("focusFirst", e.target),
  focusLast: (e) => moveFocus("focusLast", e.target),
};

/** Every key press in the page (main.js listens): a shortcut's action, if it has one to do. */
export function onShortcut(e) {
  if (e.defaultPrevented || $("app-view").hidden) return; // another control took it (the "/" list), or logged out
  if (e.target && e.target.closest && e.target.closest("dialog")) return; // a dialog's keys are its own
  const action = shortcutFor(e, focusKind(e.target), onMac());
  if (action && ACTIONS[action](e)) e.preventDefault();
}

/** Rebuild a list (`render`) without losing the keyboard's place in it: the item with the same
 *  data-id takes the focus back (a push re-renders the conversation list while the agent moves in it). */
export function keepFocus(list, render) {
  const focused = document.activeElement;
  const id = focused && focused !== list && list.contains(focused) ? focused.dataset.id : undefined;
  render();
  if (id === undefined) return;
  const again = [...list.children].find((li) => li.dataset.id === id);
  if (again) again.focus({ preventScroll: true });
}

// Canned replies in the composer: the list this agent may use (`canned`, read on every connect and on
// `canned_changed`), and the "/" popup that inserts one with its variables filled in.
//
// Rules:
// - The composer's own module knows nothing of this: we listen to its textarea (input, caret moves,
//   blur) and to keydown on its form in the capture phase, so while the popup is open ArrowUp/Down,
//   Enter, Tab and Escape are ours and never reach the composer (Enter does not send).
// - ARIA: the textarea stays a multi-line textbox (a combobox is single-line, and a textarea may take
//   no role), with aria-autocomplete="list", aria-controls on the listbox and aria-activedescendant on
//   the active option; a polite live region says how many replies match.
// - An insertion goes through the editing commands (so Ctrl+Z undoes it) and fires `input`, so the
//   segment counter and anything else watching the composer see the new text.
// - The pure parts (what is typed, what matches, the variables) are shortcuts.js's.

import { $, el } from "./dom.js";
import { renderMyReplies } from "./myreplies.js";
import { fillVariables, matchingReplies, preview, replyVariables, shortcutAt } from "./shortcuts.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { plural, t } from "./strings.js";

const MAX_SHOWN = 50;
const PREVIEW_CHARS = 90;

/** Read the replies this agent may use (after each connect, and on `canned_changed`). */
export async function loadCanned() {
  try {
    const ack = await emitWithAck("canned", {});
    if (!(ack && ack.ok && Array.isArray(ack.replies))) return;
    state.canned = ack.replies;
  } catch {
    return; // read again after the next connect
  }
  if (state.cannedPopup || document.activeElement === $("reply-text")) updatePopup(); // a "/" typed before they came
  renderMyReplies();
}

/** The "/shortcut" at the textarea's caret, or null (a selection, a disabled composer). */
function typedShortcut() {
  const textarea = $("reply-text");
  if (textarea.disabled || textarea.selectionStart !== textarea.selectionEnd) return null;
  return shortcutAt(textarea.value, textarea.selectionStart);
}

/** The popup for what is typed now: opened, filtered, or closed. */
function updatePopup() {
  const at = typedShortcut();
  if (!at || state.cannedDismissed === at.start) {
    if (!at) state.cannedDismissed = null;
    closePopup();
    return;
  }
  const items = matchingReplies(state.canned, at.query).slice(0, MAX_SHOWN);
  if (!items.length) { closePopup(); return; }
  const before = state.cannedPopup && state.cannedPopup.items[state.cannedPopup.active];
  const kept = before ? items.findIndex((r) => r.id === before.id) : -1;
  state.cannedPopup = { ...at, items, active: Math.max(0, kept) };
  renderPopup();
}

function closePopup() {
  if (state.cannedPopup === null && $("canned-popup").hidden) return;
  state.cannedPopup = null;
  renderPopup();
}

/** The text a reply inserts in the open conversation (or the new one's number). */
function filled(reply) {
  const conv = state.conversations.get(state.selected) ||
    { contact: { number: state.selected === "new" ? $("new-to").value.trim() : "", name: "" } };
  return fillVariables(reply.text, replyVariables(conv, state.user));
}

function scopeLabel(reply) {
  if (reply.scope === "personal") return t("canned.scope_personal");
  if (reply.scope === "team") return t("canned.scope_team", { team: reply.team || "" });
  return "";
}

function option(reply, index, active) {
  const li = el("li", {
    id: `canned-option-${index}`,
    role: "option",
    className: `canned-option${active ? " active" : ""}`,
    "aria-selected": active ? "true" : "false",
    "data-testid": "canned-option",
    "data-shortcut": reply.shortcut,
  },
    el("span", { className: "canned-shortcut", text: `/${reply.shortcut}` }),
    scopeLabel(reply) ? el("span", { className: "canned-scope muted", text: scopeLabel(reply) }) : null,
    el("span", { className: "canned-text", dir: "auto", text: preview(filled(reply), PREVIEW_CHARS) }));
  li.addEventListener("mousedown", (e) => e.preventDefault()); // the textarea keeps the focus (and its caret)
  li.addEventListener("click", () => insertReply(index));
  return li;
}

function renderPopup() {
  const list = $("canned-popup");
  const textarea = $("reply-text");
  const popup = state.cannedPopup;
  list.hidden = !popup;
  if (!popup) {
    list.replaceChildren();
    textarea.removeAttribute("aria-activedescendant");
    $("canned-status").textContent = "";
    return;
  }
  list.replaceChildren(...popup.items.map((r, i) => option(r, i, i === popup.active)));
  textarea.setAttribute("aria-activedescendant", `canned-option-${popup.active}`);
  $("canned-status").textContent = plural("canned.count", popup.items.length);
  const active = list.children[popup.active];
  if (active && typeof active.scrollIntoView === "function") active.scrollIntoView({ block: "nearest" });
}

/** Put the reply in place of the typed "/shortcut". */
function insertReply(index) {
  const popup = state.cannedPopup;
  const reply = popup && popup.items[index];
  if (!reply) return;
  const textarea = $("reply-text");
  const text = filled(reply);
  state.cannedDismissed = null;
  closePopup();
  textarea.focus();
  textarea.setSelectionRange(popup.start, popup.end);
  // execCommand keeps the browser's undo history and fires `input` itself; it refuses an empty text.
  if (!(text && document.execCommand("insertText", false, text))) {
    textarea.setRangeText(text, popup.start, popup.end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

const MOVES = { ArrowDown: 1, ArrowUp: -1 };

/** Keys while the popup is open (keydown on the composer's form, capture phase: before the composer's). */
function onCannedKey(e) {
  const popup = state.cannedPopup;
  if (!popup || e.target !== $("reply-text") || e.isComposing || e.altKey || e.ctrlKey || e.metaKey) return;
  const at = typedShortcut();
  if (!at || at.start !== popup.start) { closePopup(); return; } // the text changed under it (another conversation)
  if (e.key in MOVES) {
    popup.active = (popup.active + MOVES[e.key] + popup.items.length) % popup.items.length;
    renderPopup();
  } else if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey) {
    insertReply(popup.active);
  } else if (e.key === "Escape") {
    state.cannedDismissed = popup.start; // not again for this "/", until it is typed anew
    closePopup();
  } else {
    return;
  }
  e.preventDefault();
  e.stopPropagation();
}

/** Caret moves that typing does not report (arrows, Home, End, a click). */
function onCaretKey(e) {
  if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) updatePopup();
}

/** The listeners main.js adds: [element id, event, handler, capture]. */
export const CANNED_LISTENERS = [
  ["reply-text", "input", updatePopup, false],
  ["reply-text", "click", updatePopup, false],
  ["reply-text", "keyup", onCaretKey, false],
  ["reply-text", "blur", closePopup, false],
  ["composer", "keydown", onCannedKey, true],
];

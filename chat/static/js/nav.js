// Moving between views: open a conversation, back to the list (a phone), start a new one.
//
// Rules:
// - The open conversation is in the URL (#c=ID), so a reload opens it again.
// - A draft is kept only while the agent stays on the same conversation.

import { $, clearError } from "./dom.js";
import { showSnoozeAt } from "./lifecycle.js";
import { renderConversationList } from "./list.js";
import { dropConversation } from "./merge.js";
import { renderPane } from "./render.js";
import { state } from "./state.js";
import { markRead } from "./sync.js";
import { loadEarlier } from "./transcript.js";

/** Open a conversation (an id). */
export function selectConversation(id) {
  state.board = false;
  if (state.selected !== id) {
    $("reply-text").value = "";
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
  $("reply-text").focus();
}

/** A phone's back button: the list again (on a wider screen the list is always beside the conversation). */
export function backToList() {
  state.board = false;
  state.selected = null;
  history.replaceState(null, "", location.pathname);
  renderConversationList();
  renderPane();
  const item = document.querySelector('[data-testid="conversation-item"]');
  if (item) item.focus();
}

/** The composer for a first message to a number. */
export function startNewConversation() {
  state.board = false;
  state.selected = "new";
  state.newFrom = null;
  $("new-to").value = "";
  $("reply-text").value = "";
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

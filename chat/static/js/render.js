// The page's frame: the user in the top bar, and the pane on the right (the board, a conversation,
// the new-conversation form, or nothing). Each pane's content has its own module: list.js (the
// conversation list and the queue), transcript.js, lifecycle.js (the conversation's actions),
// numbers.js (the From picker), supervisor.js (the board), presence.js.
//
// Rules:
// - A render function reads the state and rewrites its part of the page; it changes no data.
// - On a phone one view shows at a time: #app-view's data-view says which (app.css).
// - Text from the server goes in through el()/textContent only (dom.js).

import { renderAttach } from "./attach.js";
import { updateCounter } from "./composer.js";
import { displayNumber, renderContactPanel } from "./contact.js";
import { $, el } from "./dom.js";
import { contactLabel } from "./format.js";
import { renderActions } from "./lifecycle.js";
import { renderConversationList } from "./list.js";
import { renderFromPicker } from "./numbers.js";
import { renderPresence } from "./presence.js";
import { state } from "./state.js";
import { t } from "./strings.js";
import { stopMonitoring } from "./supervisor.js";
import { renderOptOut, renderTranscript } from "./transcript.js";

const PANE_PARTS = ["pane-empty", "pane-header", "transcript", "composer", "transfer-form", "optout-banner"];

export function renderAll() {
  renderUser();
  renderPresence();
  renderConversationList();
  renderPane();
}

export function renderUser() {
  const u = state.user;
  $("user-name").textContent = u ? (u.display_name || u.name || "") : "";
  $("board-open").hidden = !(u && (u.role === "supervisor" || u.role === "admin"));
}

/** The open conversation's title: the contact (its name, else its national number; E.164 smaller), the number it came to, closed or not. */
function renderTitle(conv) {
  const { name, number } = contactLabel(conv);
  const shown = name || displayNumber(conv.contact);
  // Each part isolated: an RTL override in a contact's name must not reverse the number after it.
  const part = (text) => el("bdi", { dir: "auto", text });
  $("conv-name").replaceChildren(part(shown), ...(shown !== number ? [" ", el("span", { className: "conv-number" }, part(number))] : []));
  const parts = [t("pane.to", { number: conv.access_number || "" })];
  if (conv.state === "closed") parts.push(conv.outcome ? t("state.closed_with", { outcome: conv.outcome }) : t("state.closed"));
  $("conv-sub").textContent = parts.join(" · ");
}

/** The board in place of a conversation (supervisors). */
function renderBoardPane() {
  for (const id of PANE_PARTS) $(id).hidden = true;
  $("app-view").dataset.view = "conversation";
}

export function renderPane() {
  if (!state.board) stopMonitoring();
  $("board-view").hidden = !state.board;
  $("board-open").setAttribute("aria-pressed", state.board ? "true" : "false");
  if (state.board) { renderBoardPane(); renderContactPanel(); return; }
  const sel = state.selected;
  const conv = sel !== null && sel !== "new" ? state.conversations.get(sel) : null;
  const active = sel === "new" || !!conv;
  $("app-view").dataset.view = active ? "conversation" : "list"; // a phone shows one of the two (app.css)
  $("pane-empty").hidden = active;
  $("pane-header").hidden = !active;
  $("transcript").hidden = !active;
  $("composer").hidden = !active;
  $("new-to-wrap").hidden = sel !== "new";
  $("conv-title").hidden = sel === "new";
  if (conv) renderTitle(conv);
  renderActions(conv);
  renderFromPicker();
  renderTranscript();
  renderOptOut(conv);
  renderAttach();
  updateCounter();
  renderContactPanel();
}

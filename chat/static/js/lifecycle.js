// A conversation's lifecycle from the agent's side: close (with an outcome), reopen, snooze; and
// what the composer allows (a closed conversation or an opted-out customer takes no reply).
//
// Rules:
// - The server decides; the client sends the call and shows the conversation the ack carries.
// - A snooze time is the agent's local time; the server's limit is a year ahead.

import { $, clearError, el, showError } from "./dom.js";
import { formatTime, localInputValue, snoozeUntil } from "./format.js";
import { isSnoozed, renderConversationList } from "./list.js";
import { upsertConversation } from "./merge.js";
import { renderPane } from "./render.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";

const YEAR_MS = 365 * 86400 * 1000;
const HOUR_MS = 3600 * 1000;

/** The outcome picker: rebuilt only when the choices change; each close picks afresh. */
function renderOutcomes(conv, closed) {
  const outcome = $("close-outcome");
  const choices = state.outcomes.choices || [];
  outcome.hidden = closed || choices.length === 0;
  if (outcome.dataset.choices !== JSON.stringify(choices)) {
    outcome.dataset.choices = JSON.stringify(choices);
    const first = el("option", { value: "", text: state.outcomes.required ? t("outcome.pick") : t("outcome.none") });
    outcome.replaceChildren(first, ...choices.map((c) => el("option", { value: c, text: c })));
  }
  if (closed || outcome.dataset.conv !== String(conv.id)) outcome.value = "";
  outcome.dataset.conv = String(conv.id);
}

/** The composer: disabled, with the reason in its placeholder, when no reply can go. */
function renderComposerAllowed(conv, closed) {
  const textarea = $("reply-text");
  const stopped = !closed && Boolean(conv) && conv.opted_out === true;
  textarea.disabled = closed || stopped;
  $("reply-send").disabled = closed || stopped;
  textarea.placeholder = closed ? t("composer.closed")
    : stopped ? t("composer.opted_out", { number: conv.presented_number || conv.access_number })
      : t("composer.placeholder");
}

function renderSnooze(conv, closed) {
  const snoozed = isSnoozed(conv);
  $("snooze-choice").hidden = closed;
  if ($("snooze-choice").value !== "at" || closed) { $("snooze-choice").value = ""; $("snooze-at-form").hidden = true; }
  $("snooze-choice").querySelector('option[value="off"]').hidden = !snoozed;
  $("snoozed-note").hidden = !snoozed;
  $("snoozed-note").textContent = snoozed ? t("snooze.note", { time: formatTime(conv.snoozed_until) }) : "";
}

/** The open conversation's action bar (none for a new conversation). */
export function renderActions(conv) {
  $("conv-actions").hidden = !conv;
  if (!conv) { $("transfer-form").hidden = true; renderComposerAllowed(null, false); return; }  // a new one: may write
  const closed = conv.state === "closed";
  $("close-conversation").hidden = closed;
  $("reopen-conversation").hidden = !closed;
  $("transfer-open").hidden = closed;
  if (closed) $("transfer-form").hidden = true;
  renderSnooze(conv, closed);
  renderOutcomes(conv, closed);
  renderComposerAllowed(conv, closed);
}

async function lifecycleCall(event, payload, failure) {
  try {
    const ack = await emitWithAck(event, payload);
    if (ack && ack.ok) {
      clearError();
      if (ack.conversation) upsertConversation(state, ack.conversation);
    } else {
      showError((ack && ack.error) || failure);
    }
  } catch (err) {
    showError(t("error.because", { what: failure, error: err.message }));
  }
  renderConversationList();
  renderPane();
}

export function closeConversation() {
  const conv = state.conversations.get(state.selected);
  if (!conv) return;
  const outcome = $("close-outcome").value;
  if (state.outcomes.required && !outcome) {
    showError(t("outcome.required"));
    $("close-outcome").focus();
    return;
  }
  lifecycleCall("close", outcome ? { conversation_id: conv.id, outcome } : { conversation_id: conv.id },
    t("close.failed"));
}

export function reopenConversation() {
  const conv = state.conversations.get(state.selected);
  if (conv) lifecycleCall("reopen", { conversation_id: conv.id }, t("reopen.failed"));
}

/** A choice in the Snooze menu: snooze now, or show the time picker. */
export function onSnoozeChoice() {
  const conv = state.conversations.get(state.selected);
  const choice = $("snooze-choice").value;
  if (!conv || !choice) return;
  if (choice === "at") { showSnoozeAt(true); return; }
  lifecycleCall("snooze", { conversation_id: conv.id, until: snoozeUntil(choice) }, t("snooze.failed"));
}

/** Show (or hide) the "snooze until" time picker, an hour from now to begin with. */
export function showSnoozeAt(show) {
  const form = $("snooze-at-form");
  form.hidden = !show;
  if (!show) return;
  const input = $("snooze-at");
  input.min = localInputValue(new Date());
  input.max = localInputValue(new Date(Date.now() + YEAR_MS));
  if (!input.value) input.value = localInputValue(new Date(Date.now() + HOUR_MS));
  input.focus();
}

export function cancelSnoozeAt() {
  showSnoozeAt(false);
  $("snooze-choice").value = "";
}

/** The time picker's Snooze. */
export function onSnoozeAt(event) {
  event.preventDefault();
  const conv = state.conversations.get(state.selected);
  const at = new Date($("snooze-at").value); // local time, as the agent typed it
  if (!conv) return;
  if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
    showError(t("snooze.past"));
    return;
  }
  cancelSnoozeAt();
  lifecycleCall("snooze", { conversation_id: conv.id, until: at.getTime() / 1000 }, t("snooze.failed"));
}

// Transferring the open conversation to a colleague or a team, with a note the customer never sees.
//
// Rules:
// - The targets come with the sync, and are asked for again when the form opens (presence changes).
// - A transferred conversation leaves this agent's list at once (the server confirms with `unassigned`).

import { $, el, showError, showNotice } from "./dom.js";
import { renderConversationList } from "./list.js";
import { forgetConversation } from "./nav.js";
import { renderPane } from "./render.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";

const PRESENCE_WORDS = {
  offline: () => t("presence.word.offline"),
  not_ready: () => t("presence.word.not_ready"),
};

function renderTransferTargets() {
  const options = [el("option", { value: "", text: t("transfer.choose") })];
  for (const u of state.targets.users || []) {
    const name = u.display_name || u.name;
    const away = u.presence === "ready" ? null : (PRESENCE_WORDS[u.presence] || PRESENCE_WORDS.not_ready)();
    options.push(el("option", { value: `user:${u.name}`, text: away ? t("transfer.user_away", { name, presence: away }) : name }));
  }
  for (const team of state.targets.teams || []) options.push(el("option", { value: `team:${team}`, text: t("transfer.team", { team }) }));
  $("transfer-target").replaceChildren(...options);
}

/** Open or close the transfer form. */
export function toggleTransfer(open) {
  $("transfer-form").hidden = !open;
  $("transfer-open").setAttribute("aria-expanded", open ? "true" : "false");
  if (!open) return;
  renderTransferTargets();
  $("transfer-note").value = "";
  $("transfer-target").focus();
  refreshTargets();
}

/** Presence changes while the form is open: ask again (the sync's list may be minutes old). */
async function refreshTargets() {
  try {
    const ack = await emitWithAck("targets", {});
    if (ack && ack.ok) {
      const chosen = $("transfer-target").value;
      state.targets = { users: ack.users || [], teams: ack.teams || [] };
      renderTransferTargets();
      $("transfer-target").value = chosen;
    }
  } catch { /* the sync's list stays */ }
}

/** The `transfer` call's body from the form ("user:NAME" or "team:NAME", and the note). */
function transferPayload(conv, choice) {
  const at = choice.indexOf(":");
  const note = $("transfer-note").value.trim();
  const payload = { conversation_id: conv.id, to: { [choice.slice(0, at)]: choice.slice(at + 1) } };
  if (note) payload.note = note;
  return payload;
}

export async function submitTransfer() {
  const conv = state.conversations.get(state.selected);
  const choice = $("transfer-target").value;
  if (!conv || !choice) { showError(t("transfer.choose_first")); return; }
  try {
    const ack = await emitWithAck("transfer", transferPayload(conv, choice));
    if (ack && ack.ok) {
      toggleTransfer(false);
      forgetConversation(conv.id);
      showNotice(ack.waiting ? t("transfer.waits", { to: ack.to }) : t("transfer.done", { to: ack.to }));
    } else {
      showError((ack && ack.error) || t("transfer.failed"));
    }
  } catch (err) {
    showError(t("error.because", { what: t("transfer.failed"), error: err.message }));
  }
  renderConversationList();
  renderPane();
}

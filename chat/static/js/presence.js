// The agent's presence switch: Ready (new conversations are routed to her) or Not ready.
//
// Rules:
// - The switch moves at once and goes back if the server refuses or does not answer.

import { $, showError } from "./dom.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";

export function renderPresence() {
  const ready = state.presence === "ready";
  const btn = $("presence");
  btn.dataset.state = ready ? "ready" : "not_ready";
  btn.setAttribute("aria-checked", ready ? "true" : "false");
  $("presence-label").textContent = ready ? t("presence.ready") : t("presence.not_ready");
}

export async function togglePresence() {
  const previous = state.presence;
  const next = previous === "ready" ? "not_ready" : "ready";
  state.presence = next;
  renderPresence();
  try {
    const ack = await emitWithAck("presence", { state: next });
    if (ack && ack.ok) {
      state.presence = ack.state || next;
    } else {
      state.presence = previous;
      showError((ack && ack.error) || t("presence.failed"));
    }
  } catch (err) {
    state.presence = previous;
    showError(t("error.because", { what: t("presence.failed"), error: err.message }));
  }
  renderPresence();
}

// The From picker: which of the agent's callback numbers a conversation presents to the customer,
// the default for new conversations, and "Automatic" when the agent has selection rules.
//
// Rules:
// - A conversation's current number is always shown, even when it is not (or no longer) the
//   agent's to choose (disabled then).
// - The server checks every choice (`present`, `default_number`); a refusal is shown as it says.

import { renderConversationList } from "./list.js";
import { $, clearError, el, showError, showNotice } from "./dom.js";
import { upsertConversation } from "./merge.js";
import { renderPane } from "./render.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";

/** The number the picker shows: the conversation's, or for a new one the chosen, automatic or default. */
function currentNumber(sel, conv, numbers) {
  if (conv) return conv.presented_number || conv.access_number || null;
  if (sel !== "new") return null;
  const def = numbers.find((n) => n.default) || numbers[0];
  // With selection rules the server picks (the customer's prefix, the number last used with them).
  return state.newFrom || (state.autoSelect ? "" : (def ? def.number : null));
}

function numberOption(n) {
  const extra = [n.language, n.category].filter(Boolean).join(", ");
  let label = n.label && n.label !== n.number ? t("numbers.labelled", { label: n.label, number: n.number }) : n.number;
  if (extra) label = t("numbers.with_extra", { label, extra });
  const opt = el("option", { value: n.number, text: n.default ? t("numbers.default", { label }) : label });
  if (n.unlisted) opt.disabled = true;
  return opt;
}

export function renderFromPicker() {
  const select = $("from-picker");
  const sel = state.selected;
  const conv = sel !== null && sel !== "new" ? state.conversations.get(sel) : null;
  const numbers = [...state.numbers];
  const current = currentNumber(sel, conv, numbers);
  if (current && !numbers.some((n) => n.number === current)) {
    numbers.unshift({ number: current, label: "", default: false, unlisted: true });
  }
  const options = numbers.map(numberOption);
  if (sel === "new" && state.autoSelect) options.unshift(el("option", { value: "", text: t("numbers.automatic") }));
  select.replaceChildren(...options);
  if (current !== null) select.value = current;
  select.disabled = numbers.length === 0;
  const picked = state.numbers.find((n) => n.number === select.value);
  $("make-default").hidden = !picked || picked.default;
}

/** "Make my default": the picked number for this agent's new conversations. */
export async function makeDefault() {
  const number = $("from-picker").value;
  try {
    const ack = await emitWithAck("default_number", { number });
    if (ack && ack.ok) { state.numbers = ack.numbers || state.numbers; showNotice(t("numbers.default_changed", { number })); }
    else showError((ack && ack.error) || t("numbers.default_failed"));
  } catch (err) {
    showError(t("error.because", { what: t("numbers.default_failed"), error: err.message }));
  }
  renderPane();
}

/** A number picked: remembered for a new conversation, presented at once for an open one. */
export async function onFromChange() {
  const select = $("from-picker");
  const number = select.value;
  if (state.selected === "new") { state.newFrom = number; renderFromPicker(); return; }
  const conv = state.conversations.get(state.selected);
  if (!conv) return;
  if (number === (conv.presented_number || conv.access_number)) return;
  select.disabled = true;
  try {
    const ack = await emitWithAck("present", { conversation_id: conv.id, number });
    if (ack && ack.ok) {
      clearError();
      if (ack.conversation) upsertConversation(state, ack.conversation);
      else state.conversations.set(conv.id, { ...conv, presented_number: number });
    } else {
      showError((ack && ack.error) || t("numbers.not_yours", { number }));
    }
  } catch (err) {
    showError(t("error.because", { what: t("numbers.change_failed"), error: err.message }));
  } finally {
    select.disabled = false;
    renderPane();
    renderConversationList();
  }
}

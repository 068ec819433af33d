// "My replies": a dialog where the agent adds, edits and deletes their own canned replies
// (`canned_save`, `canned_delete`); the global and team ones are the admins'.
//
// Rules:
// - A native modal <dialog> (focus kept inside, Escape closes, focus back on the opener).
// - The server checks everything; its refusal is shown next to the field it names (`shortcut`,
//   `text`), anything else under the form.
// - A save or delete reads the list again (`canned`): the server's order and shadowing stand.
// - Text from the server goes in through el()/textContent only (dom.js).

import { loadCanned } from "./canned.js";
import { $, el } from "./dom.js";
import { preview } from "./shortcuts.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";

const FIELD_ERRORS = { shortcut: "my-reply-shortcut-error", text: "my-reply-text-error" };
const INPUTS = { shortcut: "my-reply-shortcut", text: "my-reply-text" };

const mine = () => state.canned.filter((r) => r && r.scope === "personal")
  .sort((a, b) => a.shortcut.toLowerCase().localeCompare(b.shortcut.toLowerCase()));

function openMyReplies() {
  resetMyReplyForm();
  renderMyReplies();
  $("my-replies").showModal();
  $("my-reply-shortcut").focus();
}

function closeMyReplies() {
  $("my-replies").close();
}

/** The dialog closed (its button, or Escape): back to where the agent was. */
function onClosed() {
  resetMyReplyForm();
  $("my-replies-open").focus();
}

/** The list of the agent's own replies, each with Edit and Delete. */
export function renderMyReplies() {
  const dialog = $("my-replies");
  if (!dialog.open) return;
  const replies = mine();
  $("my-replies-empty").hidden = replies.length > 0;
  $("my-replies-list").replaceChildren(...replies.map(replyItem));
}

function replyItem(reply) {
  const edit = el("button", { type: "button", className: "ghost small", "data-testid": "my-reply-edit",
    "aria-label": t("my.edit_label", { shortcut: reply.shortcut }), text: t("my.edit") });
  edit.addEventListener("click", () => editReply(reply));
  const remove = el("button", { type: "button", className: "ghost small", "data-testid": "my-reply-delete",
    "aria-label": t("my.delete_label", { shortcut: reply.shortcut }), text: t("my.delete") });
  remove.addEventListener("click", () => deleteReply(reply, remove));
  return el("li", { className: "my-reply", "data-testid": "my-reply", "data-shortcut": reply.shortcut },
    el("span", { className: "my-reply-text" },
      el("span", { className: "canned-shortcut", text: `/${reply.shortcut}` }),
      el("span", { className: "muted", dir: "auto", text: preview(reply.text) })),
    edit, remove);
}

function showErrors(field, message) {
  for (const [name, id] of Object.entries(FIELD_ERRORS)) {
    const shown = name === field ? message : "";
    $(id).textContent = shown;
    $(id).hidden = !shown;
    $(INPUTS[name]).setAttribute("aria-invalid", shown ? "true" : "false");
  }
  const other = field in FIELD_ERRORS ? "" : message || "";
  $("my-reply-error").textContent = other;
  $("my-reply-error").hidden = !other;
}

/** The form, empty, for a new reply. */
function resetMyReplyForm() {
  state.myReplyEditing = null;
  $("my-reply-shortcut").value = "";
  $("my-reply-text").value = "";
  $("my-reply-form-title").textContent = t("my.new");
  $("my-reply-cancel").hidden = true;
  showErrors(null, "");
}

function editReply(reply) {
  state.myReplyEditing = reply.id;
  $("my-reply-shortcut").value = reply.shortcut;
  $("my-reply-text").value = reply.text;
  $("my-reply-form-title").textContent = t("my.editing", { shortcut: reply.shortcut });
  $("my-reply-cancel").hidden = false;
  showErrors(null, "");
  $("my-reply-shortcut").focus();
}

/** A server's error without the field's name before it ("shortcut: a shortcut is …"): the field shows where. */
function withoutField(error, field) {
  const text = String(error || t("error.generic"));
  return field && text.startsWith(`${field}: `) ? text.slice(field.length + 2) : text;
}

/** The form's Save: a new reply, or the one being edited. */
async function saveMyReply() {
  const payload = { shortcut: $("my-reply-shortcut").value.trim(), text: $("my-reply-text").value };
  if (state.myReplyEditing !== null) payload.id = state.myReplyEditing;
  const save = $("my-reply-save");
  save.disabled = true;
  try {
    const ack = await emitWithAck("canned_save", payload);
    if (ack && ack.ok) {
      resetMyReplyForm();
      $("my-replies-status").textContent = t("my.saved", { shortcut: payload.shortcut });
      await loadCanned();
      $("my-reply-shortcut").focus();
    } else {
      const field = ack && ack.field;
      showErrors(field, withoutField(ack && ack.error, field));
      if (field in INPUTS) $(INPUTS[field]).focus();
    }
  } catch (err) {
    showErrors(null, t("error.because", { what: t("my.save_failed"), error: err.message }));
  } finally {
    save.disabled = false;
  }
}

/** Delete, on a second press (the first one asks). */
async function deleteReply(reply, button) {
  if (button.dataset.confirm !== "yes") {
    button.dataset.confirm = "yes";
    button.textContent = t("my.delete_confirm");
    button.setAttribute("aria-label", t("my.delete_confirm_label", { shortcut: reply.shortcut }));
    return;
  }
  button.disabled = true;
  try {
    const ack = await emitWithAck("canned_delete", { id: reply.id });
    if (ack && ack.ok) {
      if (state.myReplyEditing === reply.id) resetMyReplyForm();
      $("my-replies-status").textContent = t("my.deleted", { shortcut: reply.shortcut });
      await loadCanned();
      $("my-reply-shortcut").focus();
    } else {
      showErrors(null, withoutField(ack && ack.error, ack && ack.field));
      button.disabled = false;
    }
  } catch (err) {
    showErrors(null, t("error.because", { what: t("my.delete_failed"), error: err.message }));
    button.disabled = false;
  }
}

/** The listeners main.js adds: [element id, event, handler, capture]. */
export const MY_REPLIES_LISTENERS = [
  ["my-replies-open", "click", openMyReplies, false],
  ["my-replies-close", "click", closeMyReplies, false],
  ["my-replies", "close", onClosed, false],
  ["my-reply-cancel", "click", () => { resetMyReplyForm(); $("my-reply-shortcut").focus(); }, false],
  ["my-reply-form", "submit", (e) => { e.preventDefault(); saveMyReply(); }, false],
];

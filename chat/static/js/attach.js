// Attachments on a message the agent writes: the Attach button (a labelled file input), each file uploaded
// at once with its progress and a Remove button, then sent with the message (`send` with `media`).
//
// Rules:
// - The button shows only where the message's number sends MMS (`numbers[].mms` in sync: its connector's;
//   SMPP and Vonage's SMS API send none). For a number the agent's list does not hold it shows, and the
//   server's refusal (in plain words) is shown as every refused send is.
// - POST /api/uploads with the agent's token, the file's type as Content-Type and its name in ?filename=:
//   an XMLHttpRequest, for its upload progress (fetch reports none).
// - A file belongs to the draft of the conversation it was chosen in (state.attachments, by key): opening
//   another conversation drops the others' (the server deletes an upload no send took within a day).
// - composer.js puts the ready files' ids in its send (withAttachments): they go with that message, and a
//   refusal shows on its pending bubble (with Retry and Discard, as any refused send).

import { refreshToken } from "./auth.js";
import { $, el } from "./dom.js";
import { formatSize } from "./format.js";
import { state } from "./state.js";
import { t } from "./strings.js";

const MAX_NAME = 200; // the server keeps a name of 1-200 characters
let uploads = 0;     // numbers each chosen file, for its row (data-upload)

function draftKey() {
  return state.selected === "new" ? "new" : state.selected;
}

/** The number the message will go out from ("" when the server picks it: the agent's selection rules). */
function sendingNumber() {
  if (state.selected === "new") return $("from-picker").value || "";
  const conv = state.conversations.get(state.selected);
  return conv ? (conv.presented_number || conv.access_number || "") : "";
}

/** Whether the message's number may carry attachments (true when the agent's list does not say). */
function mmsAllowed(number) {
  const known = state.numbers.find((n) => n.number === number);
  return !known || known.mms !== false;
}

const mine = () => state.attachments.filter((a) => a.key === draftKey());

/** The Attach button, the files chosen and, where the number sends none, why they cannot go. */
export function renderAttach() {
  for (const a of state.attachments) if (a.key !== draftKey() && a.xhr) a.xhr.abort();
  state.attachments = state.attachments.filter((a) => a.key === draftKey());
  const open = state.selected !== null && !$("composer").hidden && !$("reply-text").disabled;
  const number = sendingNumber();
  $("attach-open").hidden = !open || !mmsAllowed(number);
  const items = open ? mine() : [];
  $("attach-list").hidden = items.length === 0;
  $("attach-list").replaceChildren(...items.map(renderItem));
  const blocked = items.length > 0 && !mmsAllowed(number);
  $("attach-note").hidden = !blocked;
  $("attach-note").textContent = blocked ? t("attach.no_mms", { number }) : "";
}

function renderItem(a) {
  const remove = el("button", { type: "button", className: "link", "data-testid": "attachment-remove",
                                "aria-label": t("attach.remove", { name: a.name }), text: t("attach.remove_button") });
  remove.addEventListener("click", () => removeAttachment(a));
  return el("li", { className: "attach-item", "data-testid": "attachment", "data-upload": a.uid, "data-status": a.status },
    el("span", { className: "attach-name", dir: "auto", text: a.name }),
    el("span", { className: "muted", text: t("media.size", { size: formatSize(a.size) }) }),
    a.status === "uploading" ? el("progress", { max: "1", value: String(a.progress), "aria-label": t("attach.uploading", { name: a.name }) }) : null,
    a.status === "failed" ? el("span", { className: "attach-error", "data-testid": "attachment-error", text: a.error }) : null,
    remove);
}

/** The Attach button: the file picker. */
export function openAttach() {
  $("attach-input").click();
}

/** Files chosen: each is uploaded at once. */
export function onAttachChosen() {
  const input = $("attach-input");
  for (const file of input.files || []) {
    uploads += 1;
    const item = { uid: String(uploads), key: draftKey(), name: file.name || t("media.default_name"), size: file.size,
                   status: "uploading", progress: 0, id: null, error: null, xhr: null };
    state.attachments.push(item);
    upload(item, file, false);
  }
  input.value = ""; // the same file may be chosen again
  renderAttach();
}

function upload(item, file, retried) {
  const xhr = new XMLHttpRequest();
  item.xhr = xhr;
  xhr.open("POST", `/api/uploads?filename=${encodeURIComponent(item.name.slice(-MAX_NAME))}`);
  xhr.setRequestHeader("Authorization", `Bearer ${state.token}`);
  xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    item.progress = e.loaded / e.total;
    const bar = document.querySelector(`[data-upload="${item.uid}"] progress`);
    if (bar) bar.value = item.progress; // in place: a re-render would take the focus off Remove
  });
  xhr.addEventListener("load", () => uploaded(item, file, xhr, retried));
  xhr.addEventListener("error", () => settle(item, "failed", t("attach.failed", { name: item.name, error: t("attach.network") })));
  xhr.send(file);
}

async function uploaded(item, file, xhr, retried) {
  let body = null;
  try { body = JSON.parse(xhr.responseText); } catch { body = null; }
  if (xhr.status === 201 && body && Number.isInteger(body.id)) {
    item.id = body.id;
    item.size = Number(body.size) || item.size;
    settle(item, "ready", null);
  } else if (xhr.status === 401 && !retried && (await refreshToken())) {
    upload(item, file, true); // the token expired meanwhile
  } else if (xhr.status === 413) {
    settle(item, "failed", t("attach.too_large", { name: item.name }));
  } else {
    const error = (body && (body.detail || body.title)) || `HTTP ${xhr.status}`;
    settle(item, "failed", t("attach.failed", { name: item.name, error }));
  }
}

function settle(item, status, error) {
  item.status = status;
  item.error = error;
  item.xhr = null;
  renderAttach();
}

function removeAttachment(item) {
  if (item.xhr) item.xhr.abort();
  state.attachments = state.attachments.filter((a) => a !== item);
  renderAttach();
  $("reply-text").focus();
}

/** Whether files are ready to go with the message (then its text may be empty). */
export function hasAttachments() {
  return mine().some((a) => a.status === "ready");
}

/** Put the ready files' ids in a `send` payload (`media`), and take them off the composer. */
export function withAttachments(payload) {
  const ready = mine().filter((a) => a.status === "ready");
  if (!ready.length) return payload;
  payload.media = ready.map((a) => a.id);
  state.attachments = state.attachments.filter((a) => !ready.includes(a));
  renderAttach();
  return payload;
}

/** The attachments' controls, for main.js to listen to: [element id, event, handler]. */
export const ATTACH_LISTENERS = [
  ["attach-open", "click", openAttach],
  ["attach-input", "change", onAttachChosen],
  ["from-picker", "change", renderAttach], // a new conversation's number decides whether files may go
];

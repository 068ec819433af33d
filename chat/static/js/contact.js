// The contact panel of the open conversation: the name (editable), the number as its country writes
// it and in E.164, the opt-outs, the tags, the CRM fields and the earlier conversations
// (docs/agent-protocol.md, "Contact panel"); and a rename, pushed or made here, shown everywhere.
//
// Rules:
// - A desktop (wider than WIDE) shows the panel as a column beside the transcript unless the agent
//   hid it (this browser remembers that); a tablet or a phone opens it from the conversation's header
//   as its own view, with a back button. #app-view's data-contact says which: off, beside or view.
// - The panel is read with `contact` each time a conversation is opened; a rename (`contact_rename`'s
//   ack, or the `contact` push) sets the name of every conversation with that number, in place.
// - Text from the server goes in through el()/textContent only (dom.js); a name, a number and a CRM
//   value are each their own bidi island.
// - The panel's content is rebuilt only when what it shows changes (a focused control keeps its focus).

import { $, el } from "./dom.js";
import { contactLabel, formatTime } from "./format.js";
import { renderConversationList } from "./list.js";
import { renderPane } from "./render.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { LANG, plural, t } from "./strings.js";

export const WIDE = "(min-width: 1101px)"; // app.css's tablet layout ends here
const HIDDEN_KEY = "didchat.contact_panel";
const PREVIEW_CHARS = 120;

const wide = () => typeof window.matchMedia === "function" && window.matchMedia(WIDE).matches;
const bidi = (text, attrs = {}) => el("bdi", { dir: "auto", ...attrs, text });

/** The open conversation (not a new one, not the board), or null. */
function openConversation() {
  const sel = state.selected;
  if (state.board || sel === null || sel === "new") return null;
  return state.conversations.get(sel) || null;
}

function columnHidden() {
  if (state.contactHidden === null) state.contactHidden = localStorage.getItem(HIDDEN_KEY) === "hidden";
  return state.contactHidden;
}

/** How the panel shows now: "off", "beside" (a desktop's column) or "view" (a tablet's or phone's own view). */
function panelMode(conv) {
  if (!conv) return "off";
  if (wide()) return columnHidden() ? "off" : "beside";
  return state.contactView === conv.id ? "view" : "off";
}

/** A number as its country writes it, when the server told us (else as it is, E.164). */
export function displayNumber(contact) {
  const c = contact || {};
  return c.national || state.nationals.get(c.number) || c.number || "";
}

/** The header's Contact button and the panel (a part of renderPane). */
export function renderContactPanel() {
  const conv = openConversation();
  const mode = panelMode(conv);
  $("app-view").dataset.contact = mode;
  $("contact-open").hidden = !conv;
  $("contact-open").setAttribute("aria-expanded", mode === "off" ? "false" : "true");
  $("contact-panel").hidden = mode === "off";
  $("contact-back").hidden = mode !== "view";
  if (mode !== "off") renderContact(conv, state.contacts.get(conv.id));
}

function renderContact(conv, contact) {
  const name = contactLabel(conv).name;
  const key = JSON.stringify([conv.id, name, contact ? contact.loadedAt : null, contact && contact.error,
    conv.tags, conv.opted_out, conv.presented_number, conv.state]);
  renderRenameForm(conv);
  if (state.contactShown === key) return;
  state.contactShown = key;
  $("contact-name").replaceChildren(name ? bidi(name) : el("span", { className: "muted", text: t("contact.no_name") }));
  $("contact-details").replaceChildren(...(contact && !contact.error ? details(conv, contact) : [status(conv, contact)]));
}

/** Loading, or why the panel could not be read (with a Retry). */
function status(conv, contact) {
  if (!contact) return el("p", { className: "muted", "data-testid": "contact-status", text: t("loading") });
  const retry = el("button", { type: "button", className: "link", text: t("contact.retry") });
  retry.addEventListener("click", () => loadContact(conv.id));
  return el("p", { className: "muted", "data-testid": "contact-status" },
    t("error.because", { what: t("contact.failed"), error: contact.error }), retry);
}

/** Everything under the name: numbers, opt-outs, tags, CRM fields, earlier conversations. */
function details(conv, contact) {
  return [
    numbers(contact),
    optOut(conv, contact),
    section(t("contact.tags"), tags(Array.isArray(conv.tags) ? conv.tags : contact.tags)),
    section(t("contact.fields"), crmFields(contact.fields)),
    section(t("contact.earlier"), earlier(contact.conversations)),
  ].filter(Boolean);
}

function section(title, body) {
  return el("section", { className: "cp-section" }, el("h3", { text: title }), body);
}

function countryName(code) {
  if (!code) return "";
  try {
    return new Intl.DisplayNames([LANG], { type: "region" }).of(code) || code;
  } catch {
    return code;
  }
}

function numbers(contact) {
  const national = contact.national || contact.number || "";
  const country = countryName(contact.country);
  return el("dl", { className: "cp-numbers" },
    el("dt", { text: t("contact.national") }),
    el("dd", {}, bidi(national, { "data-testid": "contact-national" }),
      country ? el("span", { className: "muted", "data-testid": "contact-country", text: t("contact.country", { country }) }) : null),
    el("dt", { text: t("contact.e164") }),
    el("dd", {}, bidi(contact.number || "", { "data-testid": "contact-e164" })));
}

/** The opt-out state: of the number this conversation presents, or of others. */
function optOut(conv, contact) {
  const stopped = typeof conv.opted_out === "boolean" ? conv.opted_out : contact.opted_out === true;
  const others = (Array.isArray(contact.opted_out_of) ? contact.opted_out_of : []).filter((n) => typeof n === "string");
  let text = "";
  if (others.includes("*")) text = t("contact.opted_out_all");
  else if (stopped) text = t("contact.opted_out_here", { number: conv.presented_number || conv.access_number || "" });
  else if (others.length) text = t("contact.opted_out_other", { numbers: others.join(", ") });
  return text ? el("p", { className: "cp-optout", "data-testid": "contact-opted-out", text }) : null;
}

function tags(list) {
  const shown = (Array.isArray(list) ? list : []).filter((tag) => typeof tag === "string");
  if (!shown.length) return el("p", { className: "muted", text: t("contact.no_tags") });
  return el("ul", { className: "cp-tags", "data-testid": "contact-tags" },
    ...shown.map((tag) => el("li", {}, bidi(tag))));
}

function crmFields(fields) {
  const entries = Object.entries(fields && typeof fields === "object" ? fields : {});
  if (!entries.length) return el("p", { className: "muted", text: t("contact.no_fields") });
  return el("dl", { className: "cp-fields", "data-testid": "contact-fields" },
    ...entries.flatMap(([name, value]) => [el("dt", {}, bidi(name)), el("dd", {}, bidi(String(value ?? "")))]));
}

/** The contact's earlier conversations, newest first: each opens where the transcript shows it. */
function earlier(list) {
  const convs = (Array.isArray(list) ? list : []).filter((c) => c && c.id !== undefined);
  if (!convs.length) return el("p", { className: "muted", text: t("contact.no_earlier") });
  return el("ul", { className: "cp-earlier" }, ...convs.map((c) => {
    const msgs = Array.isArray(c.messages) ? c.messages : [];
    const when = formatTime(c.closed_at || c.updated_at);
    const head = [c.state === "closed" ? t("contact.earlier_closed", { when }) : t("contact.earlier_open", { when }),
      c.outcome || "", plural("contact.messages", msgs.length)].filter(Boolean).join(" · ");
    const first = msgs.find((m) => m && m.text);
    const button = el("button", { type: "button", className: "cp-earlier-item", "data-testid": "contact-earlier", "data-id": c.id },
      el("span", { className: "cp-earlier-head", text: head }),
      first ? el("span", { className: "cp-earlier-text muted", dir: "auto", text: first.text.slice(0, PREVIEW_CHARS) }) : null);
    button.addEventListener("click", () => showEarlier(c.id));
    return el("li", {}, button);
  }));
}

/** Show an earlier conversation where the transcript holds it (above the current one, read-only). */
function showEarlier(id) {
  if (state.contactView !== null) closeContactView(false);
  const item = $("transcript").querySelector(`[data-testid="earlier-conversation"][data-id="${Number(id)}"]`);
  if (!item) return;
  item.setAttribute("tabindex", "-1");
  item.scrollIntoView({ block: "start" });
  item.focus({ preventScroll: true });
}

/** Read the panel of a conversation (on opening it); the transcript's earlier conversations come with it. */
export async function loadContact(id) {
  if (id === null || id === "new") return;
  let contact;
  try {
    const ack = await emitWithAck("contact", { conversation_id: id });
    contact = ack && ack.ok && ack.contact ? ack.contact : { error: (ack && ack.error) || t("error.generic") };
  } catch (err) {
    contact = { error: err.message };
  }
  contact.loadedAt = Date.now();
  state.contacts.set(id, contact);
  if (contact.number && contact.national) state.nationals.set(contact.number, contact.national);
  if (Array.isArray(contact.conversations) && !state.earlier.has(id)) state.earlier.set(id, contact.conversations);
  if (state.selected === id) renderPane();
  renderConversationList(); // the national number, now known
}

/** The header's Contact button: a desktop's column shown or hidden; a narrower screen's view opened or closed. */
function toggleContact() {
  const conv = openConversation();
  if (!conv) return;
  if (wide()) {
    state.contactHidden = !columnHidden();
    localStorage.setItem(HIDDEN_KEY, state.contactHidden ? "hidden" : "shown");
    renderPane();
    return;
  }
  if (state.contactView === conv.id) { closeContactView(); return; }
  state.contactView = conv.id;
  renderPane();
  $("contact-back").focus();
}

/** The panel's back button (a tablet or phone): the conversation again. */
function closeContactView(focus = true) {
  state.contactView = null;
  renderPane();
  if (focus) $("contact-open").focus();
}

/** A contact's new name, from our rename's ack or the `contact` push: every conversation of that number shows it. */
export function contactRenamed(payload) {
  if (!payload || typeof payload.number !== "string") return;
  const name = typeof payload.name === "string" && payload.name ? payload.name : null;
  const renamed = (c) => (c && c.contact && c.contact.number === payload.number ? { ...c, contact: { ...c.contact, name } } : c);
  for (const [id, conv] of state.conversations) state.conversations.set(id, renamed(conv));
  state.queue = state.queue.map(renamed);
  for (const [id, contact] of state.contacts) {
    if (contact.number === payload.number) state.contacts.set(id, { ...contact, name });
  }
  renderConversationList();
  renderPane();
}

/** The name's edit form: shown while this conversation's contact is being renamed. */
function renderRenameForm(conv) {
  const editing = state.renaming === conv.id;
  $("contact-rename-form").hidden = !editing;
  $("contact-edit").hidden = editing;
}

function showRenameError(message) {
  const error = $("contact-name-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("contact-name-input").setAttribute("aria-invalid", message ? "true" : "false");
}

/** Edit: the form, holding the name as it is. */
function startRename() {
  const conv = openConversation();
  if (!conv) return;
  state.renaming = conv.id;
  $("contact-name-input").value = contactLabel(conv).name;
  showRenameError("");
  renderContactPanel();
  $("contact-name-input").focus();
  $("contact-name-input").select();
}

/** Cancel: the name as it was. */
function cancelRename() {
  state.renaming = null;
  showRenameError("");
  renderContactPanel();
  $("contact-edit").focus();
}

/** Save (the form's submit) or Clear (no name). */
async function rename(name) {
  const conv = openConversation();
  if (!conv || state.renaming !== conv.id) return;
  const buttons = $("contact-rename-form").querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const ack = await emitWithAck("contact_rename", { conversation_id: conv.id, name });
    if (ack && ack.ok && ack.contact) {
      state.renaming = null;
      showRenameError("");
      contactRenamed(ack.contact);
      $("contact-edit").focus();
    } else {
      showRenameError((ack && ack.error) || t("contact.rename_failed"));
      $("contact-name-input").focus();
    }
  } catch (err) {
    showRenameError(t("error.because", { what: t("contact.rename_failed"), error: err.message }));
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

/** Escape in the panel's own view: the conversation again (before the page's Escape, which goes back to the list). */
function onPanelKey(e) {
  if (e.key !== "Escape" || e.defaultPrevented || state.contactView === null) return;
  e.preventDefault();
  closeContactView();
}

/** Escape in the name's field cancels the edit. */
function onRenameKey(e) {
  if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cancelRename(); }
}

/** The listeners main.js adds: [element id, event, handler, capture]. */
export const CONTACT_LISTENERS = [
  ["contact-open", "click", toggleContact, false],
  ["contact-back", "click", () => closeContactView(), false],
  ["contact-edit", "click", startRename, false],
  ["contact-rename-cancel", "click", cancelRename, false],
  ["contact-rename-clear", "click", () => rename(""), false],
  ["contact-rename-form", "submit", (e) => { e.preventDefault(); rename($("contact-name-input").value); }, false],
  ["contact-name-input", "keydown", onRenameKey, false],
  ["contact-panel", "keydown", onPanelKey, false],
];

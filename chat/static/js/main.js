// didchat agent client — native ES modules, no build step; this module wires them and starts.
//
// Speaks docs/agent-protocol.md: HTTP login/refresh/logout (auth.js) and the Socket.IO namespace
// /agent (socket.js; its pushes in pushes.js). The server's database is the truth; pushes are a
// fast path, and `sync` (sent on every (re)connect with our per-conversation cursors, sync.js) is
// how the client catches up.
//
// Rules:
// - The only module with side effects at import: every other one only declares (so the modules
//   may import each other in a cycle; nothing runs until boot()).
// - State is in state.js, pure logic in sms.js, merge.js, pending.js, format.js; every text shown
//   in strings.js; DOM building (and the rule: textContent only, never innerHTML) in dom.js.
// - Every control's listener is added here, once; rendered items add their own in their render.

import { toggleAlerts, toggleSound, loadAlerts } from "./alerts.js";
import { ATTACH_LISTENERS } from "./attach.js";
import { login, logout, restoreSession } from "./auth.js";
import { CANNED_LISTENERS } from "./canned.js";
import { onOutboxStorage, submitComposer, updateCounter } from "./composer.js";
import { CONTACT_LISTENERS, WIDE } from "./contact.js";
import { $, applyStaticTexts, clearError, showError, showView } from "./dom.js";
import { cancelSnoozeAt, closeConversation, onSnoozeAt, onSnoozeChoice, reopenConversation } from "./lifecycle.js";
import { backToList, closeKeysHelp, onShortcut, openKeysHelp, startNewConversation } from "./nav.js";
import { MY_REPLIES_LISTENERS } from "./myreplies.js";
import { makeDefault, onFromChange } from "./numbers.js";
import { togglePresence } from "./presence.js";
import { renderPane } from "./render.js";
import { SEARCH_LISTENERS } from "./search.js";
import { reconnectNow } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";
import { showBoard, toggleBoard } from "./supervisor.js";
import { markRead } from "./sync.js";
import { TRANSCRIPT_LISTENERS } from "./transcript.js";
import { submitTransfer, toggleTransfer } from "./transfer.js";

/** What a click (or change) on each control does: element id -> [event, handler]. */
const CONTROLS = {
  logout: ["click", logout],
  "error-close": ["click", clearError],
  presence: ["click", togglePresence],
  "new-conversation": ["click", startNewConversation],
  "back-to-list": ["click", backToList],
  "keys-open": ["click", openKeysHelp],
  "keys-close": ["click", closeKeysHelp],
  alerts: ["click", toggleAlerts],
  "alert-sound": ["click", toggleSound],
  "from-picker": ["change", onFromChange],
  "make-default": ["click", makeDefault],
  "close-conversation": ["click", closeConversation],
  "reopen-conversation": ["click", reopenConversation],
  "snooze-choice": ["change", onSnoozeChoice],
  "snooze-at-form": ["submit", onSnoozeAt],
  "snooze-at-cancel": ["click", cancelSnoozeAt],
  "board-open": ["click", toggleBoard],
  "board-refresh": ["click", showBoard],
  "board-stuck": ["change", showBoard],
  "transfer-open": ["click", () => toggleTransfer($("transfer-form").hidden)],
  "transfer-cancel": ["click", () => toggleTransfer(false)],
  "transfer-form": ["submit", (e) => { e.preventDefault(); submitTransfer(); }],
  composer: ["submit", (e) => { e.preventDefault(); submitComposer(); }],
  "login-form": ["submit", (e) => { e.preventDefault(); login($("login-username").value.trim(), $("login-password").value); }],
};

/** Enter sends, Shift+Enter is a new line (not while an input method is composing). */
function onComposerKey(e) {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    submitComposer();
  }
}

function wire() {
  for (const [id, [event, handler]] of Object.entries(CONTROLS)) $(id).addEventListener(event, handler);
  // The contact panel's and canned replies' controls, and their hooks on the composer (capture: before its own).
  // The search's, the attachments' and the transcript's too.
  for (const [id, event, handler, capture] of [...CONTACT_LISTENERS, ...CANNED_LISTENERS, ...MY_REPLIES_LISTENERS,
    ...SEARCH_LISTENERS, ...ATTACH_LISTENERS, ...TRANSCRIPT_LISTENERS]) {
    $(id).addEventListener(event, handler, capture);
  }
  window.matchMedia(WIDE).addEventListener("change", renderPane); // the contact panel: a column or its own view
  const textarea = $("reply-text");
  textarea.addEventListener("input", updateCounter);
  textarea.addEventListener("keydown", onComposerKey);
  $("new-to").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); textarea.focus(); }
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) markRead(); });
  window.addEventListener("online", reconnectNow);
  window.addEventListener("storage", onOutboxStorage); // another tab's queued sends (outbox.js)
  document.addEventListener("keydown", onShortcut);    // the keyboard shortcuts (nav.js, keys.js)
}

async function boot() {
  applyStaticTexts();
  wire();
  updateCounter();
  loadAlerts();
  const named = /^#c=(\d+)$/.exec(location.hash);
  state.reopen = named ? Number(named[1]) : null;
  if (typeof window.io !== "function") {
    showView("login");
    showError(t("boot.no_socketio"));
    return;
  }
  showView("loading");
  if (await restoreSession()) return;
  showView("login");
  $("login-username").focus();
}

boot();

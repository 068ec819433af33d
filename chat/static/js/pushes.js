// What the server pushes on /agent (docs/agent-protocol.md, "Pushes"), one handler per event: the
// single place where pushes are dispatched. A new push is one line in PUSHES.
//
// Rules:
// - A push is a fast path, never the only one: anything it may have missed (a gap in seq numbers,
//   an unknown conversation, a queue change) is caught up through `sync`.
// - A handler takes (payload, socket) and is safe with any payload (missing fields, wrong types).

import { endSession } from "./auth.js";
import { loadCanned } from "./canned.js";
import { contactRenamed } from "./contact.js";
import { showError, showNotice } from "./dom.js";
import { contactLabel } from "./format.js";
import { renderConversationList } from "./list.js";
import { lastSeq, upsertConversation } from "./merge.js";
import { forgetConversation } from "./nav.js";
import { renderPane } from "./render.js";
import { renderPresence } from "./presence.js";
import { linkLost, setConnection } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";
import { receiveMonitored } from "./supervisor.js";
import { receiveMessages, receiveStatuses, scheduleSync } from "./sync.js";

const RESTART_WAIT_MS = 10000;  // after `server_restarting`: the server's shutdown_seconds and a margin

/** The server stops soon; it closes us and we reconnect (queued sends wait meanwhile). */
function serverRestarting(_payload, socket) {
  state.connected = false;
  setConnection("reconnecting");
  // Should it never close us, the link is rebuilt all the same.
  setTimeout(() => { if (state.socket === socket && socket.connected && !state.connected) linkLost(socket); },
    RESTART_WAIT_MS);
}

/** Logged out (in another tab) or revoked. */
function sessionEnded(info) {
  const reason = info && info.reason;
  endSession(reason === "logged_out" ? t("session.logged_out_elsewhere") : t("session.ended"));
}

/** Transferred away (maybe from another tab or by a supervisor): it is no longer this agent's. */
function unassigned(data) {
  const conv = data && state.conversations.get(data.conversation_id);
  if (!conv) return;
  forgetConversation(conv.id);
  const who = contactLabel(conv);
  showNotice(t("notice.unassigned", { who: who.name || who.national, to: data.to || t("notice.a_colleague") }));
  renderConversationList();
  renderPane();
}

/** A conversation's new snapshot; messages it has that we lack come by sync. */
function conversation(conv) {
  upsertConversation(state, conv);
  renderConversationList();
  if (conv && state.selected === conv.id) renderPane();
  if (conv && Number(conv.last_seq) > lastSeq(state, conv.id)) scheduleSync();
}

function numbers(list) {
  if (Array.isArray(list)) { state.numbers = list; renderPane(); }
}

function presence(p) {
  if (p && p.state) { state.presence = p.state; renderPresence(); }
}

/** For admins: e.g. a scenario file that failed to reload. */
function notice(n) {
  if (n && n.text) showError(n.text);
}

export const PUSHES = {
  server_restarting: serverRestarting,
  session_ended: sessionEnded,
  queue_changed: () => scheduleSync(),
  numbers,
  unassigned,
  conversation,
  monitored: (copy) => receiveMonitored(copy),
  message: (msg) => receiveMessages([msg]),
  messages: (list) => receiveMessages(list),
  status: (st) => receiveStatuses([st]),
  statuses: (list) => receiveStatuses(list),
  presence,
  notice,
  contact: contactRenamed,
  canned_changed: () => loadCanned(),
};

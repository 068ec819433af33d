// The supervisor's board (agents, queues, conversations; take over) and live monitoring of one
// conversation, read-only.
//
// Rules:
// - The board reads itself again every BOARD_REFRESH_MS while it is shown, and after each action.
// - Monitoring shows copies of the pushes to the conversation's agent (`monitored`); the customer
//   and the agent see nothing of it. Leaving the board stops it; a new link starts it again.

import { $, el, showError, showNotice } from "./dom.js";
import { contactLabel } from "./format.js";
import { upsertConversation } from "./merge.js";
import { renderPane } from "./render.js";
import { emitWithAck } from "./socket.js";
import { state } from "./state.js";
import { t } from "./strings.js";
import { renderMessage } from "./transcript.js";

const BOARD_REFRESH_MS = 10000;

const PRESENCE_WORDS = {
  ready: () => t("presence.word.ready"),
  not_ready: () => t("presence.word.not_ready"),
  offline: () => t("presence.word.offline"),
};

/** Show the board (or read it again). */
export async function showBoard() {
  state.board = true;
  clearTimeout(state.boardTimer);
  renderPane();
  try {
    const ack = await emitWithAck("board", $("board-stuck").checked ? { stuck: true } : {});
    if (!ack || !ack.ok) { showError((ack && ack.error) || t("board.failed")); return; }
    if (state.board) renderBoard(ack);
  } catch (err) {
    showError(t("error.because", { what: t("board.failed"), error: err.message }));
  } finally {
    clearTimeout(state.boardTimer);
    if (state.board) state.boardTimer = setTimeout(() => { if (state.board) showBoard(); }, BOARD_REFRESH_MS);
  }
}

/** The Board button: show the board, or the conversation again. */
export function toggleBoard() {
  if (state.board) { state.board = false; renderPane(); } else showBoard();
}

const cell = (text) => el("td", { dir: "auto", text: String(text ?? "") });

function agentRow(a) {
  const presence = PRESENCE_WORDS[a.presence] ? PRESENCE_WORDS[a.presence]() : String(a.presence).replace("_", " ");
  return el("tr", { "data-name": a.name },
    cell(a.display_name || a.name), cell(presence), cell(a.capacity ? t("board.load", { open: a.open, capacity: a.capacity }) : a.open));
}

function queueRow(q) {
  return el("tr", {},
    cell(q.name), cell(q.waiting), cell(t("time.minutes", { count: Math.round(q.oldest_seconds / 60) })), cell(q.members_available));
}

function conversationRow(c) {
  const { name, number } = contactLabel(c);
  const take = el("button", { type: "button", className: "small", "data-testid": "board-take-over", text: t("board.take_over") });
  take.addEventListener("click", () => boardCall("take_over", { conversation_id: c.id }));
  const watch = el("button", { type: "button", className: "small", "data-testid": "board-monitor-open", text: t("board.monitor") });
  watch.addEventListener("click", () => monitorConversation(c.id));
  const where = c.assigned || (c.owner ? t("board.waits_for", { owner: c.owner }) : c.queue || "");
  return el("tr", { className: c.stuck ? "stuck" : "", "data-testid": "board-conversation", "data-id": c.id },
    cell(name || number), cell(c.access_number), cell(c.stuck ? t("board.stuck", { state: c.state }) : c.state),
    cell(where), el("td", {}, watch, " ", take));
}

function renderBoard(data) {
  $("board-agents").replaceChildren(...(data.agents || []).map(agentRow));
  $("board-queues").replaceChildren(...(data.queues || []).map(queueRow));
  $("board-conversations").replaceChildren(...(data.conversations || []).map(conversationRow));
}

async function boardCall(event, payload) {
  try {
    const ack = await emitWithAck(event, payload);
    if (ack && ack.ok) {
      showNotice(ack.waiting ? t("board.waits", { to: ack.to }) : t("board.moved", { to: ack.to }));
      if (ack.conversation) upsertConversation(state, ack.conversation);
    } else {
      showError((ack && ack.error) || t("board.move_failed"));
    }
  } catch (err) {
    showError(t("error.because", { what: t("board.move_failed"), error: err.message }));
  }
  showBoard();
}

/** Watch a conversation live: its messages so far, then copies of its pushes. */
export async function monitorConversation(id) {
  try {
    const ack = await emitWithAck("monitor", { conversation_id: id });
    if (!ack || !ack.ok) { showError((ack && ack.error) || t("monitor.failed")); return; }
    state.monitor = { conversation: ack.conversation, messages: new Map((ack.messages || []).map((m) => [m.id, m])) };
    renderMonitor();
  } catch (err) {
    showError(t("error.because", { what: t("monitor.failed"), error: err.message }));
  }
}

/** A copy of a push to the monitored conversation's agent: its messages, their statuses, its state. */
export function receiveMonitored(copy) {
  const watched = state.monitor;
  const item = copy && copy.payload;
  if (!watched || !item) return;
  const id = watched.conversation.id;
  if (copy.event === "conversation" && item.id === id) {
    watched.conversation = { ...watched.conversation, ...item };
  } else if (copy.event === "message" && item.conversation_id === id) {
    watched.messages.set(item.id, item);
  } else if (copy.event === "status" && item.conversation_id === id && watched.messages.has(item.id)) {
    watched.messages.set(item.id, { ...watched.messages.get(item.id), status: item.status, error: item.error });
  } else {
    return;
  }
  renderMonitor();
}

/** The monitored conversation's messages (also when an attachment in them has loaded: media.js). */
export function renderMonitor() {
  const box = $("board-monitor");
  const watched = state.monitor;
  if (!watched) { box.replaceChildren(); box.hidden = true; return; }
  const { name, number } = contactLabel(watched.conversation);
  const stop = el("button", { type: "button", className: "small", "data-testid": "board-monitor-stop", text: t("monitor.stop") });
  stop.addEventListener("click", stopMonitoring);
  const list = [...watched.messages.values()].sort((a, b) => a.seq - b.seq);
  box.replaceChildren(
    el("div", { className: "muted", text: t("monitor.watching", { who: name || number }) }, stop),
    el("ol", { "aria-live": "polite", "data-testid": "board-monitor-messages" }, ...list.map(renderMessage)));
  box.hidden = false;
}

export function stopMonitoring() {
  if (!state.monitor) return;
  state.monitor = null;
  renderMonitor();
  emitWithAck("unmonitor", {}).catch(() => {}); // a lost link watches nothing anyway
}

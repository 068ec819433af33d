// The Socket.IO link to /agent: connecting, the link's state as the agent sees it, and calls with acks.
//
// Rules:
// - The state shown is the truth: "Connected" only once the first sync of this link is merged,
//   "Reconnecting…" as soon as the link is lost (the websocket closes: a killed or stopped server),
//   or a heartbeat goes unanswered for HEARTBEAT_LATE_MS (a silent link: a frozen server, a network
//   cut, which no close ever reports), or a call goes unanswered (ACK_TIMEOUT_MS). Either way within
//   2 s of the server going away.
// - A late heartbeat answered after all shows the link as it was; one unanswered for HEARTBEAT_DEAD_MS,
//   or any call unanswered in time, means the link is dead or stuck: close it and let the manager
//   reconnect; pending sends stay queued and go again, with the same client_id, after the next sync.
// - A call refused for an expired token (`reauth`) is repeated once after a refresh.
// - The server's pushes are dispatched from one table, PUSHES in pushes.js; this module handles only
//   the link's own events (connect, disconnect, connect_error).

import { refreshToken } from "./auth.js";
import { loadCanned } from "./canned.js";
import { $ } from "./dom.js";
import { openOutbox } from "./outbox.js";
import { PUSHES } from "./pushes.js";
import { state } from "./state.js";
import { t } from "./strings.js";
import { monitorConversation } from "./supervisor.js";
import { sync } from "./sync.js";

// The server answers every call within its own 10 s, "retry" included: not answered this soon,
// the link is gone.
export const ACK_TIMEOUT_MS = 2500;
// A `ping` every 0.75 s: unanswered after a second, "Reconnecting…" (1.75 s at most after the server
// went silent); after four, the link is given up. The server answers it without the store (but for the
// session check every few seconds that any call has: chat/agents/link_calls.py).
const HEARTBEAT_MS = 750;
const HEARTBEAT_LATE_MS = 1000;
const HEARTBEAT_DEAD_MS = 4000;
const UNAUTHORIZED = /unauthori[sz]ed/i;

const CONNECTION_TEXTS = {
  connected: () => t("connection.connected"),
  connecting: () => t("connection.connecting"),
  syncing: () => t("connection.syncing"),
  reconnecting: () => t("connection.reconnecting"),
};

/** Show the link's state: connecting, syncing, connected or reconnecting. */
export function setConnection(s) {
  const node = $("connection");
  node.dataset.state = s;
  node.textContent = (CONNECTION_TEXTS[s] || CONNECTION_TEXTS.reconnecting)();
  $("presence").disabled = s !== "connected";
}

/** Drop the link (logout, or before a new one). */
export function closeSocket() {
  if (!state.socket) return;
  state.socket.removeAllListeners();
  state.socket.disconnect();
  state.socket = null;
}

/** Open the link; the token is asked for on every (re)connection attempt. */
export function connectSocket() {
  closeSocket();
  openOutbox(); // this user's sends saved in the browser: they go after the first sync
  const socket = window.io("/agent", {
    auth: (cb) => cb({ token: state.token }),
    transports: ["websocket"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  state.socket = socket;
  setConnection("connecting");
  watchLink(socket);
  heartbeat(socket);
  for (const [event, handler] of Object.entries(PUSHES)) socket.on(event, (payload) => handler(payload, socket));
}

/** The link's own events: connected (sync first), lost, refused. */
function watchLink(socket) {
  let unauthorizedStreak = 0;
  socket.on("connect", () => {
    unauthorizedStreak = 0;
    state.connected = true;
    state.synced = false;
    setConnection("syncing"); // "connected" once the first sync of this connection is merged
    sync();
    loadCanned(); // canned replies: read again on every connect (a change of teams is not pushed)
    if (state.monitor) monitorConversation(state.monitor.conversation.id); // a new socket watches nothing yet
  });
  socket.on("disconnect", (reason) => {
    state.connected = false;
    state.synced = false;
    setConnection("reconnecting");
    state.outbox.linkLost();
    // The server closed us (e.g. token expired): no automatic reconnection; refresh and retry.
    if (reason === "io server disconnect") reauthenticate();
  });
  socket.on("connect_error", (err) => {
    state.connected = false;
    setConnection("reconnecting");
    const unauthorized = UNAUTHORIZED.test(String((err && err.message) || "")) ||
      (err && err.data && UNAUTHORIZED.test(String(err.data.message || "")));
    // A refusal by the server (socket no longer active) is not retried by the manager itself;
    // other errors (network) are.
    if (unauthorized || !socket.active) {
      unauthorizedStreak += 1;
      reauthenticate(unauthorizedStreak);
    }
  });
}

/** Ping the server every HEARTBEAT_MS while this socket is the link: a silent link shows within 2 s. */
function heartbeat(socket) {
  let out = null; // the engine (one link) a ping is out on: one at a time per link
  const timer = setInterval(() => {
    if (state.socket !== socket) { clearInterval(timer); return; }
    const engine = socket.io.engine;
    if (!socket.connected || out === engine) return;
    out = engine;
    const same = () => state.socket === socket && socket.io.engine === engine; // not a link gone since
    const late = setTimeout(() => { if (same() && socket.connected) setConnection("reconnecting"); }, HEARTBEAT_LATE_MS);
    socket.timeout(HEARTBEAT_DEAD_MS).emit("ping", {}, (err) => {
      clearTimeout(late);
      if (out === engine) out = null;
      if (!same()) return;
      if (err) { if (socket.connected) linkLost(socket); return; }
      if (state.connected && $("connection").dataset.state === "reconnecting") {
        setConnection(state.synced ? "connected" : "syncing"); // late, but answered: the link is what it was
      }
    });
  }, HEARTBEAT_MS);
}

/** Refused or closed by the server: refresh the token, then connect again (backing off on repeats). */
async function reauthenticate(streak = 1) {
  if (!state.token) return;
  setConnection("reconnecting");
  let ok;
  try {
    ok = await refreshToken();
  } catch {
    ok = null; // network problem: retry below
  }
  if (ok === false) return; // refreshToken already sent us to the login form
  if (!state.socket || !state.token) return;
  const delay = ok ? Math.min(30000, 500 * 2 ** Math.max(0, streak - 1)) : 3000;
  setTimeout(() => {
    if (state.socket && !state.socket.connected && state.token) state.socket.connect();
  }, streak > 1 || !ok ? delay : 0);
}

/** Hand the open socket the current token, so its calls go on being answered. */
export async function sendAuth() {
  const socket = state.socket;
  if (!socket || !socket.connected || !state.token) return;
  try {
    await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("auth", { token: state.token });
  } catch { /* the next call that is refused with `reauth` tries again */ }
}

/** An unanswered call: the link is dead or stuck. Show it, and let the manager reconnect. */
export function linkLost(socket) {
  state.connected = false;
  state.synced = false;
  setConnection("reconnecting");
  state.outbox.linkLost();
  if (socket.io && socket.io.engine) socket.io.engine.close(); // the manager reconnects, then we sync
}

function emitOnce(event, payload, timeout) {
  return new Promise((resolve, reject) => {
    const socket = state.socket;
    if (!socket || !socket.connected || !state.connected) { reject(new Error(t("error.not_connected"))); return; }
    const engine = socket.io.engine;
    socket.timeout(timeout).emit(event, payload, (err, ack) => {
      if (!err) { resolve(ack); return; }
      // Unanswered on this link: it is stuck (a call of a link since rebuilt says nothing of the new one).
      if (state.socket === socket && socket.io.engine === engine && socket.connected) linkLost(socket);
      reject(err);
    });
  });
}

/** A call with its ack; a call refused for an expired token is repeated once after a refresh. */
export async function emitWithAck(event, payload, timeout = ACK_TIMEOUT_MS) {
  const ack = await emitOnce(event, payload, timeout);
  if (!(ack && ack.ok === false && ack.reauth)) return ack;
  if (!(await refreshToken())) return ack;
  return emitOnce(event, payload, timeout);
}

/** The link, asked to come back now (the browser says it is online again). */
export function reconnectNow() {
  if (state.socket && !state.socket.connected && state.token) state.socket.connect();
}

// didchat agent client — plain JavaScript, no build step.
//
// Speaks docs/agent-protocol.md: HTTP login/refresh/logout and the Socket.IO namespace /agent.
// The server's database is the truth; pushes are a fast path, and `sync` (sent on every
// (re)connect with our per-conversation cursors) is how the client catches up.
//
// SECURITY: everything that comes from the server (message text, contact names, numbers,
// errors) is put in the page with textContent / createTextNode only. Never innerHTML.

"use strict";

// ---------------------------------------------------------------------------------------------
// SMS length rules (GSM 03.38 / UCS-2), for the composer counter.

const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION = "\f^{}\\[~]|€";
const GSM_BASIC_SET = new Set(GSM_BASIC);
const GSM_EXTENSION_SET = new Set(GSM_EXTENSION);

/** Count an SMS text: {encoding, units, segments}. Segments never split an escape pair
 *  (GSM-7) or a surrogate pair (UCS-2), like the sender does. */
export function smsCount(text) {
  let gsm = true;
  for (const ch of text) {
    if (!GSM_BASIC_SET.has(ch) && !GSM_EXTENSION_SET.has(ch)) { gsm = false; break; }
  }
  // Each "char" is a list of unit widths that must stay in one segment.
  const widths = [];
  if (gsm) {
    for (const ch of text) widths.push(GSM_EXTENSION_SET.has(ch) ? 2 : 1);
  } else {
    for (const ch of text) widths.push(ch.length); // UTF-16 code units: 1, or 2 for a surrogate pair
  }
  const units = widths.reduce((a, b) => a + b, 0);
  const single = gsm ? 160 : 70;
  const part = gsm ? 153 : 67;
  let segments;
  if (units === 0) segments = 0;
  else if (units <= single) segments = 1;
  else {
    segments = 1;
    let used = 0;
    for (const w of widths) {
      if (used + w > part) { segments += 1; used = 0; }
      used += w;
    }
  }
  return { encoding: gsm ? "GSM-7" : "UCS-2", units, segments };
}

export function counterText({ encoding, units, segments }) {
  const chars = `${units} character${units === 1 ? "" : "s"}`;
  if (segments === 0) return `${chars} (${encoding})`;
  return `${chars} (${segments} message${segments === 1 ? "" : "s"}, ${encoding})`;
}

// ---------------------------------------------------------------------------------------------
// State

const state = {
  token: null,
  expiresAt: null,        // unix seconds (server clock)
  user: null,
  refreshTimer: null,
  socket: null,
  connected: false,
  since: null,            // server_time of the last successful sync
  syncing: false,
  syncAgain: false,
  presence: "not_ready",
  numbers: [],            // [{number, label, default}]
  conversations: new Map(), // id -> Conversation
  messages: new Map(),      // conversation id -> Message[] sorted by seq
  messageById: new Map(),   // message id -> Message
  pendingStatus: new Map(), // message id -> status payload that arrived before its message
  localRead: new Map(),     // conversation id -> seq we marked read
  outbox: [],             // local sends awaiting an ack: {client_id, payload, conversationKey, text, state, error}
  selected: null,         // conversation id, or "new"
  outcomes: { choices: [], required: false }, // what a close may give (sync)
  earlier: new Map(),     // conversation id -> the contact's earlier conversations (history), with messages
  snoozeTimer: null,      // re-renders the list when the next snooze ends
  targets: { users: [], teams: [] }, // whom a conversation may be transferred to (sync)
  queue: [],              // conversations waiting in this agent's queues, oldest first (sync)
  board: false,           // the supervisor's board is shown instead of a conversation
  boardTimer: null,       // the board's next refresh
  monitor: null,          // the conversation a supervisor monitors live: { conversation, messages: Map id -> message }
  autoSelect: false,      // this agent has selection rules: a new conversation's number may be left to them
  newFrom: null,          // chosen "from" in new-conversation mode
  reopen: null,           // the conversation the URL named (#c=ID), opened once a sync has it
  alerts: false,          // desktop notifications on (and permitted)
  sound: false,           // a chime for new messages
  audio: null,            // the AudioContext the chime plays on (made on the click that turned it on)
};

// A call not answered this soon means the link is gone (the server answers every call within
// its own 10 s, "retry" included): say "Reconnecting…" and reconnect rather than show
// "Connected" while sends hang. Sends stay queued and go again with the same client_id.
const ACK_TIMEOUT_MS = 2500;
const SYNC_TIMEOUT_MS = 15000;
const SYNC_COMPLETE_BELOW = 500;  // a sync lists at most this many conversations (the newest)
const SEND_ATTEMPTS = 8;          // answers with `retry` (the server's store is unavailable)
const RETRY_MAX_MS = 10000;
const RESTART_WAIT_MS = 10000;    // after `server_restarting`: the server's shutdown_seconds and a margin

// ---------------------------------------------------------------------------------------------
// DOM helpers

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "className") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else node.setAttribute(k, String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function showError(message) {
  $("error-text").textContent = String(message || "Something went wrong");
  $("error-banner").dataset.kind = "error";
  $("error-banner").hidden = false;
}

function clearError() {
  $("error-text").textContent = "";
  $("error-banner").hidden = true;
}

function showView(name) {
  $("login-view").hidden = name !== "login";
  $("loading-view").hidden = name !== "loading";
  $("app-view").hidden = name !== "app";
}

function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

function timeValue(iso) {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  // Fallback for non-secure contexts (plain http on a LAN address).
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const STATUS_LABELS = {
  sending: "Sending…",
  queued: "Queued",
  sent: "Sent",
  delivered: "Delivered",
  undelivered: "Undelivered",
  failed: "Failed",
  received: "Received",
};

// ---------------------------------------------------------------------------------------------
// Auth (HTTP)

async function postJSON(url, body) {
  const res = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { res, data };
}

function acceptToken(res, data) {
  state.token = data.token;
  state.expiresAt = Number(data.expires_at) || null;
  state.user = data.user || state.user;
  // Schedule the refresh by the server's clock (Date header) so a skewed client clock is harmless.
  clearTimeout(state.refreshTimer);
  let serverNow = Date.now() / 1000;
  const dateHeader = res.headers.get("Date");
  if (dateHeader && !Number.isNaN(Date.parse(dateHeader))) serverNow = Date.parse(dateHeader) / 1000;
  let lifetime = state.expiresAt ? state.expiresAt - serverNow : 15 * 60;
  if (!(lifetime > 0)) lifetime = 60;
  const delay = Math.max(5, Math.min(lifetime - 60, lifetime * 0.8));
  state.refreshTimer = setTimeout(() => { refreshToken().catch(() => {}); }, delay * 1000);
  renderUser();
}

/** POST /api/refresh, one tab at a time: the server ends the session when one refresh token is
 *  presented twice, and the tabs of this browser share the cookie that holds it. */
function postRefresh() {
  if (navigator.locks && navigator.locks.request) {
    return navigator.locks.request("didchat-refresh", () => postJSON("/api/refresh"));
  }
  return postJSON("/api/refresh");
}

let refreshing = null;
/** POST /api/refresh; resolves true with a new token, false when the session is gone. */
function refreshToken() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const { res, data } = await postRefresh();
      if (res.ok && data && data.token) {
        acceptToken(res, data);
        await sendAuth();
        return true;
      }
      if (res.status === 401 || res.status === 403) {
        if (state.token) endSession("Your session has ended. Please sign in again.");
        return false;
      }
      throw new Error(`refresh failed (${res.status})`);
    } catch (err) {
      // Network trouble: keep the session, try again shortly.
      if (state.token) {
        clearTimeout(state.refreshTimer);
        state.refreshTimer = setTimeout(() => { refreshToken().catch(() => {}); }, 10000);
      }
      throw err;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function login(username, password) {
  clearError();
  $("login-submit").disabled = true;
  try {
    const { res, data } = await postJSON("/api/login", { username, password });
    if (res.ok && data && data.token) {
      $("login-password").value = "";
      acceptToken(res, data);
      startSession();
    } else {
      showError((data && data.error) || (res.status === 401 ? "Wrong username or password" : `Login failed (${res.status})`));
    }
  } catch (err) {
    showError(`Cannot reach the server: ${err.message}`);
  } finally {
    $("login-submit").disabled = false;
  }
}

async function logout() {
  endSession(null); // first: this tab's own `session_ended` needs no message
  try { await postJSON("/api/logout"); } catch { /* left anyway; the session lapses */ }
}

/** Hand the open socket the current token, so its calls go on being answered. */
async function sendAuth() {
  const socket = state.socket;
  if (!socket || !socket.connected || !state.token) return;
  try {
    await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("auth", { token: state.token });
  } catch { /* the next call that is refused with `reauth` tries again */ }
}

function resetData() {
  state.since = null;
  state.presence = "not_ready";
  state.numbers = [];
  state.conversations.clear();
  state.messages.clear();
  state.messageById.clear();
  state.pendingStatus.clear();
  state.localRead.clear();
  state.outbox = [];
  state.selected = null;
  state.newFrom = null;
  state.earlier.clear();
  state.queue = [];
  $("reply-text").value = "";
  $("new-to").value = "";
}

function endSession(message) {
  clearTimeout(state.refreshTimer);
  state.reopen = null;
  if (location.hash) history.replaceState(null, "", location.pathname);
  state.token = null;
  state.expiresAt = null;
  state.user = null;
  if (state.socket) {
    state.socket.removeAllListeners();
    state.socket.disconnect();
    state.socket = null;
  }
  state.connected = false;
  resetData();
  renderAll();
  showView("login");
  if (message) showError(message); else clearError();
  $("login-username").focus();
}

// ---------------------------------------------------------------------------------------------
// Socket.IO

function startSession() {
  showView("app");
  renderAll();
  connectSocket();
}

function connectSocket() {
  if (state.socket) {
    state.socket.removeAllListeners();
    state.socket.disconnect();
  }
  // auth as a callback so every reconnection attempt carries the current token.
  const socket = window.io("/agent", {
    auth: (cb) => cb({ token: state.token }),
    transports: ["websocket"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  state.socket = socket;
  setConnection("connecting");

  let unauthorizedStreak = 0;

  socket.on("connect", () => {
    unauthorizedStreak = 0;
    state.connected = true;
    setConnection("syncing"); // "connected" once the first sync of this connection is merged
    sync();
    if (state.monitor) monitorConversation(state.monitor.conversation.id); // a new socket watches nothing yet
  });

  socket.on("server_restarting", () => {  // the server stops soon; it closes us, we reconnect
    state.connected = false;
    setConnection("reconnecting");
    // Should it never close us, the link is rebuilt all the same (queued sends wait meanwhile).
    setTimeout(() => { if (state.socket === socket && socket.connected && !state.connected) linkLost(socket); },
      RESTART_WAIT_MS);
  });

  socket.on("session_ended", (info) => {  // logged out (in another tab) or revoked
    const reason = info && info.reason;
    endSession(reason === "logged_out" ? "You logged out in another tab." : "Your session has ended. Please sign in again.");
  });

  socket.on("disconnect", (reason) => {
    state.connected = false;
    setConnection("reconnecting");
    for (const item of state.outbox) if (item.state === "sending") item.inFlight = false;
    if (reason === "io server disconnect") {
      // The server closed us (e.g. token expired): no automatic reconnection; refresh and retry.
      reauthenticate();
    }
  });

  socket.on("connect_error", (err) => {
    state.connected = false;
    setConnection("reconnecting");
    const msg = String((err && err.message) || "");
    const unauthorized = /unauthori[sz]ed/i.test(msg) ||
      (err && err.data && /unauthori[sz]ed/i.test(String(err.data.message || "")));
    // A refusal by the server (socket no longer active) is not retried by the manager itself.
    if (unauthorized || !socket.active) {
      unauthorizedStreak += 1;
      reauthenticate(unauthorizedStreak);
    }
    // Other errors (network): the manager reconnects by itself.
  });

  socket.on("queue_changed", () => scheduleSync());
  socket.on("numbers", (numbers) => { if (Array.isArray(numbers)) { state.numbers = numbers; renderPane(); } });

  socket.on("unassigned", (data) => {
    // Transferred away (maybe from another tab or by a supervisor): it is no longer this agent's.
    const conv = data && state.conversations.get(data.conversation_id);
    if (!conv) return;
    dropConversation(conv.id);
    const who = contactLabel(conv);
    showNotice(`The conversation with ${who.name || who.number} went to ${data.to || "a colleague"}.`);
    renderConversationList();
    renderPane();
  });

  socket.on("conversation", (conv) => {
    upsertConversation(conv);
    renderConversationList();
    if (state.selected === conv.id) renderPane();
    const have = lastSeq(conv.id);
    if (Number(conv.last_seq) > have) scheduleSync();
  });

  socket.on("monitored", (copy) => receiveMonitored(copy));

  socket.on("message", (msg) => receiveMessages([msg]));
  socket.on("messages", (list) => receiveMessages(list));

  socket.on("status", (st) => receiveStatuses([st]));
  socket.on("statuses", (list) => receiveStatuses(list));

  socket.on("presence", (p) => {
    if (p && p.state) { state.presence = p.state; renderPresence(); }
  });

  socket.on("notice", (n) => {  // admins: e.g. a scenario file that failed to reload
    if (n && n.text) showError(n.text);
  });
}

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

function setConnection(s) {
  const node = $("connection");
  node.dataset.state = s;
  node.textContent = { connected: "Connected", connecting: "Connecting…", syncing: "Syncing…" }[s] || "Reconnecting…";
  $("presence").disabled = s !== "connected";
}

function emitOnce(event, payload, timeout) {
  return new Promise((resolve, reject) => {
    const socket = state.socket;
    if (!socket || !socket.connected || !state.connected) { reject(new Error("not connected")); return; }
    socket.timeout(timeout).emit(event, payload, (err, ack) => {
      if (!err) { resolve(ack); return; }
      if (state.socket === socket && socket.connected) linkLost(socket);
      reject(err);
    });
  });
}

/** An unanswered call: the link is dead or stuck. Show it, and let the manager reconnect. */
function linkLost(socket) {
  state.connected = false;
  setConnection("reconnecting");
  for (const item of state.outbox) if (item.state === "sending") item.inFlight = false;
  if (socket.io && socket.io.engine) socket.io.engine.close(); // the manager reconnects, then we sync
}

/** A call with its ack; a call refused for an expired token is repeated once after a refresh. */
async function emitWithAck(event, payload, timeout = ACK_TIMEOUT_MS) {
  const ack = await emitOnce(event, payload, timeout);
  if (!(ack && ack.ok === false && ack.reauth)) return ack;
  if (!(await refreshToken())) return ack;
  return emitOnce(event, payload, timeout);
}

let syncTimer = null;
function scheduleSync() {
  clearTimeout(syncTimer);
  syncTimer = setTimeout(sync, 150);
}

async function sync() {
  if (!state.connected) return;
  if (state.syncing) { state.syncAgain = true; return; }
  state.syncing = true;
  const cursors = {};
  for (const id of state.conversations.keys()) cursors[id] = lastSeq(id);
  try {
    const ack = await emitWithAck("sync", { cursors, since: state.since }, SYNC_TIMEOUT_MS);
    if (!ack || ack.ok === false) throw new Error((ack && ack.error) || "sync refused");
    mergeSync(ack);
    if (state.connected) setConnection("connected");
  } catch (err) {
    if (state.connected) {
      state.syncing = false;
      setTimeout(sync, 2000);
      return;
    }
  } finally {
    state.syncing = false;
  }
  flushOutbox();
  if (state.syncAgain) { state.syncAgain = false; sync(); }
}

function mergeSync(ack) {
  if (ack.user) { state.user = ack.user; renderUser(); }
  if (ack.presence) state.presence = typeof ack.presence === "string" ? ack.presence : ack.presence.state || state.presence;
  if (Array.isArray(ack.numbers)) state.numbers = ack.numbers;
  if (ack.outcomes && Array.isArray(ack.outcomes.choices)) state.outcomes = ack.outcomes;
  if (ack.transfer_targets) state.targets = ack.transfer_targets;
  if (typeof ack.auto_select === "boolean") state.autoSelect = ack.auto_select;
  if (Array.isArray(ack.queue)) state.queue = ack.queue;
  const touched = new Set();
  for (const conv of ack.conversations || []) { upsertConversation(conv); touched.add(conv.id); }
  if (Array.isArray(ack.conversations) && ack.conversations.length < SYNC_COMPLETE_BELOW) {
    // A complete list: what it lacks was transferred away (or taken over) while this tab was not listening.
    for (const id of [...state.conversations.keys()]) if (!touched.has(id)) dropConversation(id);
  }
  for (const msg of ack.messages || []) { addMessage(msg); touched.add(msg.conversation_id); }
  for (const st of ack.statuses || []) applyStatus(st);
  if (ack.server_time !== undefined && ack.server_time !== null) state.since = ack.server_time;
  renderPresence();
  afterMessagesChanged([...touched]);
  renderAll();
  const reopen = state.reopen; // the conversation the URL named when the page loaded
  if (reopen !== null && state.conversations.has(reopen)) {
    state.reopen = null;
    selectConversation(reopen);
  }
}

// ---------------------------------------------------------------------------------------------
// Data merging

function upsertConversation(conv) {
  if (!conv || conv.id === undefined || conv.id === null) return;
  const old = state.conversations.get(conv.id);
  if (old && timeValue(conv.updated_at) < timeValue(old.updated_at)) {
    // An older snapshot than we have: keep ours, but never move read_seq backwards.
    return;
  }
  state.conversations.set(conv.id, { ...(old || {}), ...conv });
  if (!state.messages.has(conv.id)) state.messages.set(conv.id, []);
}

function lastSeq(convId) {
  const list = state.messages.get(convId);
  return list && list.length ? Number(list[list.length - 1].seq) : 0;
}

function addMessage(msg) {
  if (!msg || msg.id === undefined || msg.id === null) return;
  const existing = state.messageById.get(msg.id);
  if (existing) {
    // Keep the newest status we know of.
    if (timeValue(msg.updated_at) >= timeValue(existing.updated_at)) Object.assign(existing, msg);
    return;
  }
  const m = { ...msg };
  const pending = state.pendingStatus.get(m.id);
  if (pending) {
    state.pendingStatus.delete(m.id);
    if (timeValue(pending.updated_at) >= timeValue(m.updated_at)) {
      m.status = pending.status; m.error = pending.error; m.updated_at = pending.updated_at;
    }
  }
  state.messageById.set(m.id, m);
  const conv = state.conversations.get(m.conversation_id);
  if (conv && m.direction === "in" && conv.snoozed_until) conv.snoozed_until = null; // the customer texted: back in the list
  let list = state.messages.get(m.conversation_id);
  if (!list) { list = []; state.messages.set(m.conversation_id, list); }
  // Insert in seq order (usually at the end).
  let i = list.length;
  while (i > 0 && Number(list[i - 1].seq) > Number(m.seq)) i -= 1;
  list.splice(i, 0, m);
  // A local pending send with the same client_id is now stored.
  if (m.client_id) state.outbox = state.outbox.filter((o) => o.client_id !== m.client_id);
}

const STATUS_RANK = { queued: 1, sent: 2, delivered: 3, undelivered: 3, failed: 3 };

function applyStatus(st) {
  if (!st || st.id === undefined) return;
  const m = state.messageById.get(st.id);
  if (!m) {
    const prev = state.pendingStatus.get(st.id);
    if (!prev || timeValue(st.updated_at) >= timeValue(prev.updated_at)) state.pendingStatus.set(st.id, st);
    return;
  }
  const newer = timeValue(st.updated_at) > timeValue(m.updated_at);
  const same = timeValue(st.updated_at) === timeValue(m.updated_at);
  if (newer || (same && (STATUS_RANK[st.status] || 0) >= (STATUS_RANK[m.status] || 0))) {
    m.status = st.status;
    m.error = st.error;
    if (st.updated_at) m.updated_at = st.updated_at;
  }
}

function unreadCount(conv) {
  const readSeq = Math.max(Number(conv.read_seq) || 0, state.localRead.get(conv.id) || 0);
  const list = state.messages.get(conv.id) || [];
  let local = 0;
  for (const m of list) if (m.direction === "in" && Number(m.seq) > readSeq) local += 1;
  const serverCurrent = (Number(conv.read_seq) || 0) >= (state.localRead.get(conv.id) || 0);
  return serverCurrent ? Math.max(Number(conv.unread) || 0, local) : local;
}

// Pushed status changes: one (`status`) or a burst (`statuses`, in order), rendered once.
function receiveStatuses(list) {
  if (!Array.isArray(list)) return;
  const changed = new Set();
  for (const st of list) {
    applyStatus(st);
    const m = st && state.messageById.get(st.id);
    if (m) changed.add(m.conversation_id);
  }
  if (changed.size) afterMessagesChanged([...changed]);
}

// Pushed messages: one (`message`) or a burst (`messages`, in order), rendered once.
function receiveMessages(list) {
  if (!Array.isArray(list)) return;
  const changed = new Set();
  let missed = false;
  const fresh = [];
  for (const msg of list) {
    if (!msg) continue;
    const known = state.conversations.has(msg.conversation_id);
    const have = lastSeq(msg.conversation_id);
    if (!state.messageById.has(msg.id)) fresh.push(msg);
    addMessage(msg);
    // A gap (or an unknown conversation) means we missed something: catch up through sync.
    if (!known || Number(msg.seq) > have + 1) missed = true;
    changed.add(msg.conversation_id);
  }
  if (missed) scheduleSync();
  if (changed.size) afterMessagesChanged([...changed]);
  alertFor(fresh);
}

function afterMessagesChanged(convIds) {
  renderConversationList();
  if (state.selected !== null && convIds.includes(state.selected)) {
    renderTranscript();
    markRead();
  }
}

function markRead() {
  const id = state.selected;
  if (id === null || id === "new" || document.hidden) return;
  const conv = state.conversations.get(id);
  if (!conv) return;
  const seq = lastSeq(id);
  if (!seq) return;
  const already = Math.max(Number(conv.read_seq) || 0, state.localRead.get(id) || 0);
  if (seq <= already && unreadCount(conv) === 0) return;
  state.localRead.set(id, seq);
  renderConversationList();
  if (state.connected) {
    emitWithAck("read", { conversation_id: id, seq }).catch(() => {
      // Not confirmed: forget it so it is sent again later.
      if (state.localRead.get(id) === seq) state.localRead.delete(id);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Sending

function currentFrom() {
  const v = $("from-picker").value;
  return v || null;
}

function submitComposer() {
  const textarea = $("reply-text");
  const text = textarea.value;
  if (!text.trim()) return;
  let payload;
  if (state.selected === "new") {
    const to = $("new-to").value.trim().replace(/[\s().-]/g, "");
    if (!/^\+?\d{3,15}$/.test(to)) {
      showError("Enter the customer's number in international format, e.g. +15551234567");
      $("new-to").focus();
      return;
    }
    payload = { to, text };
    const from = currentFrom();
    if (from) payload.from = from;
  } else if (state.selected !== null) {
    payload = { conversation_id: state.selected, text };
  } else {
    return;
  }
  const item = {
    client_id: newClientId(),
    payload,
    conversationKey: state.selected === "new" ? `to:${payload.to}` : state.selected,
    text,
    state: "sending",
    error: null,
    attempts: 0,
    inFlight: false,
    createdAt: new Date().toISOString(),
  };
  item.payload.client_id = item.client_id;
  state.outbox.push(item);
  textarea.value = "";
  updateCounter();
  clearError();
  renderTranscript();
  trySend(item);
}

async function trySend(item) {
  if (item.inFlight || item.state !== "sending") return;
  if (!state.connected) return; // flushed after the next sync
  item.inFlight = true;
  item.attempts += 1;
  let ack;
  try {
    ack = await emitWithAck("send", item.payload); // same client_id on every retry
  } catch (err) {
    item.inFlight = false; // unanswered: the link is being rebuilt; sent again after the next sync
    renderTranscript();
    return;
  }
  item.inFlight = false;
  if (ack && ack.ok === false && ack.retry && state.outbox.includes(item)) {
    // The server could not store it just now; the same client_id keeps a retry from doubling it.
    if (item.attempts < SEND_ATTEMPTS) {
      setTimeout(() => trySend(item), Math.min(RETRY_MAX_MS, 500 * 2 ** item.attempts));
    } else {
      item.state = "unconfirmed";
      item.error = ack.error || "The server could not store it";
      renderTranscript();
    }
    return;
  }
  if (ack && ack.ok && ack.message) {
    state.outbox = state.outbox.filter((o) => o !== item);
    const msg = ack.message;
    if (ack.conversation) upsertConversation(ack.conversation);
    addMessage(msg);
    if (!state.conversations.has(msg.conversation_id)) scheduleSync();
    if (state.selected === "new" && String(item.conversationKey).startsWith("to:")) {
      selectConversation(msg.conversation_id);
    }
    afterMessagesChanged([msg.conversation_id]);
  } else {
    state.outbox = state.outbox.filter((o) => o !== item);
    const error = (ack && ack.error) || "The message was not sent";
    showError(ack && ack.field ? `${error} (${ack.field})` : error);
    // Give the text back so it is not lost.
    const textarea = $("reply-text");
    if (!textarea.value && state.selected === item.conversationKey) {
      textarea.value = item.text;
      updateCounter();
    } else if (!textarea.value && String(item.conversationKey).startsWith("to:") && state.selected === "new") {
      textarea.value = item.text;
      updateCounter();
    }
    renderTranscript();
  }
}

function retrySend(item) {
  item.state = "sending";
  item.error = null;
  item.attempts = 0;
  renderTranscript();
  trySend(item);
}

function discardSend(item) {
  state.outbox = state.outbox.filter((o) => o !== item);
  renderTranscript();
}

function flushOutbox() {
  for (const item of state.outbox) if (item.state === "sending" && !item.inFlight) trySend(item);
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderAll() {
  renderUser();
  renderPresence();
  renderConversationList();
  renderPane();
}

function renderUser() {
  const u = state.user;
  $("user-name").textContent = u ? (u.display_name || u.name || "") : "";
  $("board-open").hidden = !(u && (u.role === "supervisor" || u.role === "admin"));
}

function renderPresence() {
  const ready = state.presence === "ready";
  const btn = $("presence");
  btn.dataset.state = ready ? "ready" : "not_ready";
  btn.setAttribute("aria-checked", ready ? "true" : "false");
  $("presence-label").textContent = ready ? "Ready" : "Not ready";
}

function isSnoozed(conv) {
  return conv.state !== "closed" && !!conv.snoozed_until && timeValue(conv.snoozed_until) > Date.now();
}

function scheduleSnoozeEnd() {
  // The server pushes the end of a snooze; this only moves the conversation back in the list on time.
  clearTimeout(state.snoozeTimer);
  const ends = [...state.conversations.values()].filter(isSnoozed).map((c) => timeValue(c.snoozed_until));
  if (ends.length) state.snoozeTimer = setTimeout(() => { renderConversationList(); renderPane(); }, Math.min(...ends) - Date.now() + 50);
}

function sortedConversations() {
  return [...state.conversations.values()].sort((a, b) => {
    const s = Number(isSnoozed(a)) - Number(isSnoozed(b)); // snoozed ones last
    if (s !== 0) return s;
    const d = convActivity(b) - convActivity(a);
    return d !== 0 ? d : Number(b.id) - Number(a.id);
  });
}

function convActivity(conv) {
  const list = state.messages.get(conv.id) || [];
  const last = list[list.length - 1];
  return Math.max(timeValue(conv.updated_at), last ? timeValue(last.created_at) : 0);
}

function contactLabel(conv) {
  const c = conv.contact || {};
  return { name: c.name || "", number: c.number || "" };
}

function renderQueue() {
  const items = state.queue.filter((q) => !state.conversations.has(q.id));
  $("queue-section").hidden = items.length === 0;
  $("queue-title").textContent = `Waiting (${items.length})`;
  $("queue-list").replaceChildren(...items.map((q) => {
    const { name, number } = contactLabel(q);
    const minutes = Math.floor((Number(q.waiting_seconds) || 0) / 60);
    const take = el("button", { type: "button", className: "small", "data-testid": "queue-take", text: "Take" });
    take.addEventListener("click", () => takeQueued(q.id, take));
    return el("li", { className: "queue-item", "data-testid": "queue-item", "data-id": q.id },
      el("span", { className: "qi-text" },
        el("bdi", { dir: "auto", text: name || number }),
        el("span", { className: "muted", text: ` · ${q.queue} #${q.position} · ${minutes ? `${minutes} min` : "just now"}` })),
      take);
  }));
}

async function takeQueued(id, button) {
  button.disabled = true;
  try {
    const ack = await emitWithAck("claim", { conversation_id: id });
    state.queue = state.queue.filter((q) => q.id !== id);
    if (ack && ack.ok) {
      if (ack.conversation) upsertConversation(ack.conversation);
      clearError();
      selectConversation(id);
    } else {
      showError((ack && ack.error) || "Someone else took it first");
    }
  } catch (err) {
    button.disabled = false;
    showError(`Could not take the conversation: ${err.message}`);
  }
  renderConversationList();
}

function renderConversationList() {
  const ul = $("conversation-list");
  const convs = sortedConversations();
  $("conversation-empty").hidden = convs.length > 0;
  const items = convs.map((conv) => {
    const { name, number } = contactLabel(conv);
    const list = state.messages.get(conv.id) || [];
    const last = list[list.length - 1];
    const unread = unreadCount(conv);
    const snoozed = isSnoozed(conv);
    const status = conv.state === "closed" ? (conv.outcome ? `closed · ${conv.outcome}` : "closed")
      : snoozed ? `snoozed until ${formatTime(conv.snoozed_until)}` : conv.opted_out ? "opted out" : "";
    const who = last && last.direction === "out" ? (last.automatic ? "Automatic: " : "You: ") : "";
    const preview = last ? `${who}${last.text || ""}` : "";
    const li = el("li", {
      className: `conversation-item${state.selected === conv.id ? " selected" : ""}${unread ? " has-unread" : ""}${conv.state === "closed" ? " closed" : ""}${snoozed ? " snoozed" : ""}`,
      "data-testid": "conversation-item",
      "data-contact": number,
      "data-id": conv.id,
      tabindex: "0", // a list item she opens with Enter or Space (a role of button would take it out of the list)
      "aria-current": state.selected === conv.id ? "true" : null,
    },
      el("div", { className: "ci-top" },
        el("span", { className: "ci-name", dir: "auto", text: name || number }),
        el("span", { className: "ci-time muted", text: formatTime(last ? last.created_at : conv.updated_at) })),
      el("div", { className: "ci-bottom" },
        el("span", { className: "ci-sub muted", "data-testid": "conversation-status", text: [name ? number : "", status].filter(Boolean).join(" · ") }),
      ),
      el("div", { className: "ci-bottom" },
        el("span", { className: "ci-preview", dir: "auto", "data-testid": "conversation-preview", text: preview }),
        unread ? el("span", { className: "badge", "data-testid": "unread-badge", text: String(unread), "aria-label": `${unread} unread` }) : null),
    );
    li.addEventListener("click", () => selectConversation(conv.id));
    li.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectConversation(conv.id); }
    });
    return li;
  });
  ul.replaceChildren(...items);
  const unread = convs.reduce((sum, conv) => sum + unreadCount(conv), 0);
  document.title = unread ? `(${unread}) didchat` : "didchat";
  renderQueue();
  scheduleSnoozeEnd();
}

// ---------------------------------------------------------------------------------------------
// Alerts: desktop notifications (permission asked from the Alerts button, never on load) and a
// sound, each switched on per browser (localStorage), for a customer's message the agent is not
// looking at: another conversation, or this tab hidden.

const ALERTS_KEY = "didchat.alerts";
const SOUND_KEY = "didchat.sound";

function loadAlerts() {
  const canNotify = "Notification" in window && window.Notification.permission === "granted";
  state.alerts = canNotify && localStorage.getItem(ALERTS_KEY) === "on";
  state.sound = localStorage.getItem(SOUND_KEY) === "on";
  renderAlerts();
}

function renderAlerts() {
  $("alerts").setAttribute("aria-pressed", state.alerts ? "true" : "false");
  $("alert-sound").setAttribute("aria-pressed", state.sound ? "true" : "false");
}

async function toggleAlerts() {
  if (!state.alerts) {
    if (!("Notification" in window)) { showError("This browser cannot show notifications."); return; }
    let permission = window.Notification.permission;
    if (permission === "default") permission = await window.Notification.requestPermission();
    if (permission !== "granted") {
      showError("Notifications are blocked for this site: allow them in the browser's site settings, then press Alerts again.");
      return;
    }
  }
  state.alerts = !state.alerts;
  localStorage.setItem(ALERTS_KEY, state.alerts ? "on" : "off");
  renderAlerts();
}

function toggleSound() {
  state.sound = !state.sound;
  localStorage.setItem(SOUND_KEY, state.sound ? "on" : "off");
  if (state.sound && !state.audio && window.AudioContext) state.audio = new window.AudioContext(); // on a click: allowed to play
  renderAlerts();
}

function chime() {
  const button = $("alert-sound");
  button.dataset.played = String(Number(button.dataset.played || 0) + 1);
  const audio = state.audio;
  if (!audio) return;
  const tone = audio.createOscillator();
  const gain = audio.createGain();
  tone.frequency.value = 880;
  gain.gain.setValueAtTime(0.15, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
  tone.connect(gain).connect(audio.destination);
  tone.start();
  tone.stop(audio.currentTime + 0.25);
}

function alertFor(fresh) {
  let sounded = false;
  for (const msg of fresh) {
    if (msg.direction !== "in") continue;
    if (!document.hidden && state.selected === msg.conversation_id) continue; // she is looking at it
    if (state.alerts && "Notification" in window && window.Notification.permission === "granted") {
      const { name, number } = contactLabel(state.conversations.get(msg.conversation_id) || {});
      const note = new window.Notification(name || number || "New message", {
        body: (msg.text || "").slice(0, 200), tag: `didchat-${msg.conversation_id}`,
      });
      note.onclick = () => { window.focus(); selectConversation(msg.conversation_id); note.close(); };
    }
    if (state.sound && !sounded) { chime(); sounded = true; }
  }
}

const BOARD_REFRESH_MS = 10000;  // the board reads itself again this often while it is shown

async function showBoard() {
  state.board = true;
  clearTimeout(state.boardTimer);
  renderPane();
  try {
    const ack = await emitWithAck("board", $("board-stuck").checked ? { stuck: true } : {});
    if (!ack || !ack.ok) { showError((ack && ack.error) || "Could not read the board"); return; }
    if (state.board) renderBoard(ack);
  } catch (err) {
    showError(`Could not read the board: ${err.message}`);
  } finally {
    clearTimeout(state.boardTimer);
    if (state.board) state.boardTimer = setTimeout(() => { if (state.board) showBoard(); }, BOARD_REFRESH_MS);
  }
}

function renderBoard(data) {
  const cell = (text) => el("td", { dir: "auto", text: String(text ?? "") });
  $("board-agents").replaceChildren(...(data.agents || []).map((a) => el("tr", { "data-name": a.name },
    cell(a.display_name || a.name), cell(a.presence.replace("_", " ")), cell(a.capacity ? `${a.open} / ${a.capacity}` : a.open))));
  $("board-queues").replaceChildren(...(data.queues || []).map((q) => el("tr", {},
    cell(q.name), cell(q.waiting), cell(`${Math.round(q.oldest_seconds / 60)} min`), cell(q.members_available))));
  $("board-conversations").replaceChildren(...(data.conversations || []).map((c) => {
    const { name, number } = contactLabel(c);
    const take = el("button", { type: "button", className: "small", "data-testid": "board-take-over", text: "Take over" });
    take.addEventListener("click", () => boardCall("take_over", { conversation_id: c.id }));
    const watch = el("button", { type: "button", className: "small", "data-testid": "board-monitor-open", text: "Monitor" });
    watch.addEventListener("click", () => monitorConversation(c.id));
    return el("tr", { className: c.stuck ? "stuck" : "", "data-testid": "board-conversation", "data-id": c.id },
      cell(name || number), cell(c.access_number), cell(c.stuck ? `${c.state} · nobody can take it` : c.state),
      cell(c.assigned || (c.owner ? `waits for ${c.owner}` : c.queue || "")), el("td", {}, watch, " ", take));
  }));
}

async function boardCall(event, payload) {
  try {
    const ack = await emitWithAck(event, payload);
    if (ack && ack.ok) {
      showNotice(ack.waiting ? `It waits for ${ack.to}.` : `Now with ${ack.to}.`);
      if (ack.conversation) upsertConversation(ack.conversation);
    } else {
      showError((ack && ack.error) || "Could not move the conversation");
    }
  } catch (err) {
    showError(`Could not move the conversation: ${err.message}`);
  }
  showBoard();
}

async function monitorConversation(id) {
  try {
    const ack = await emitWithAck("monitor", { conversation_id: id });
    if (!ack || !ack.ok) { showError((ack && ack.error) || "Could not read the conversation"); return; }
    state.monitor = { conversation: ack.conversation, messages: new Map((ack.messages || []).map((m) => [m.id, m])) };
    renderMonitor();
  } catch (err) {
    showError(`Could not read the conversation: ${err.message}`);
  }
}

function receiveMonitored(copy) {
  // A copy of a push to the monitored conversation's agent: its messages, their statuses, its state.
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

function renderMonitor() {
  const box = $("board-monitor");
  const watched = state.monitor;
  if (!watched) { box.replaceChildren(); box.hidden = true; return; }
  const { name, number } = contactLabel(watched.conversation);
  const stop = el("button", { type: "button", className: "small", "data-testid": "board-monitor-stop", text: "Stop monitoring" });
  stop.addEventListener("click", stopMonitoring);
  const list = [...watched.messages.values()].sort((a, b) => a.seq - b.seq);
  box.replaceChildren(
    el("div", { className: "muted", text: `Monitoring ${name || number}, live (read-only; the customer sees nothing). ` }, stop),
    el("ol", { "aria-live": "polite", "data-testid": "board-monitor-messages" }, ...list.map(renderMessage)));
  box.hidden = false;
}

function stopMonitoring() {
  if (!state.monitor) return;
  state.monitor = null;
  renderMonitor();
  emitWithAck("unmonitor", {}).catch(() => {}); // a lost link watches nothing anyway
}

function selectConversation(id) {
  state.board = false;
  if (state.selected !== id) {
    // Keep a draft only within the same target.
    $("reply-text").value = "";
    $("snooze-choice").value = "";
    showSnoozeAt(false);
  }
  state.selected = id;
  history.replaceState(null, "", `#c=${id}`); // a reload opens it again
  clearError();
  renderConversationList();
  renderPane();
  markRead();
  loadEarlier(id);
  $("reply-text").focus();
}

function backToList() {
  // A phone's back button: the list again (on a wider screen the list is always beside the conversation).
  state.board = false;
  state.selected = null;
  history.replaceState(null, "", location.pathname);
  renderConversationList();
  renderPane();
  const item = document.querySelector('[data-testid="conversation-item"]');
  if (item) item.focus();
}

function startNewConversation() {
  state.board = false;
  state.selected = "new";
  state.newFrom = null;
  $("new-to").value = "";
  $("reply-text").value = "";
  clearError();
  renderConversationList();
  renderPane();
  $("new-to").focus();
}

function renderPane() {
  if (!state.board) stopMonitoring();
  $("board-view").hidden = !state.board;
  $("board-open").setAttribute("aria-pressed", state.board ? "true" : "false");
  if (state.board) {
    for (const id of ["pane-empty", "pane-header", "transcript", "composer", "transfer-form"]) $(id).hidden = true;
    $("app-view").dataset.view = "conversation";
    return;
  }
  const sel = state.selected;
  const conv = sel !== null && sel !== "new" ? state.conversations.get(sel) : null;
  const active = sel === "new" || !!conv;
  $("app-view").dataset.view = active ? "conversation" : "list"; // a phone shows one of the two (app.css)
  $("pane-empty").hidden = active;
  $("pane-header").hidden = !active;
  $("transcript").hidden = !active;
  $("composer").hidden = !active;
  $("new-to-wrap").hidden = sel !== "new";
  $("conv-title").hidden = sel === "new";
  if (conv) {
    const { name, number } = contactLabel(conv);
    // Each part isolated: an RTL override in a contact's name must not reverse the number after it.
    const part = (text) => el("bdi", { dir: "auto", text });
    $("conv-name").replaceChildren(...(name ? [part(name), " · ", part(number)] : [part(number)]));
    const parts = [`to ${conv.access_number || ""}`];
    if (conv.state === "closed") parts.push(conv.outcome ? `closed · ${conv.outcome}` : "closed");
    $("conv-sub").textContent = parts.join(" · ");
  }
  renderActions(conv);
  renderFromPicker();
  renderTranscript();
  updateCounter();
}

function dropConversation(id) {
  state.conversations.delete(id);
  for (const m of state.messages.get(id) || []) state.messageById.delete(m.id);
  state.messages.delete(id);
  state.earlier.delete(id);
  state.localRead.delete(id);
  if (state.selected === id) { state.selected = null; $("transfer-form").hidden = true; }
}

function showNotice(message) {
  showError(message);
  $("error-banner").dataset.kind = "notice";
}

function renderTransferTargets() {
  const options = [el("option", { value: "", text: "Choose…" })];
  for (const u of state.targets.users || []) {
    const away = u.presence === "ready" ? "" : ` (${u.presence === "offline" ? "offline" : "not ready"})`;
    options.push(el("option", { value: `user:${u.name}`, text: `${u.display_name || u.name}${away}` }));
  }
  for (const t of state.targets.teams || []) options.push(el("option", { value: `team:${t}`, text: `Team ${t}` }));
  $("transfer-target").replaceChildren(...options);
}

function toggleTransfer(open) {
  const form = $("transfer-form");
  form.hidden = !open;
  $("transfer-open").setAttribute("aria-expanded", open ? "true" : "false");
  if (!open) return;
  renderTransferTargets();
  $("transfer-note").value = "";
  $("transfer-target").focus();
  refreshTargets();
}

async function refreshTargets() {
  // Presence changes while the form is open: ask again (the sync's list may be minutes old).
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

async function submitTransfer() {
  const conv = state.conversations.get(state.selected);
  const choice = $("transfer-target").value;
  if (!conv || !choice) { showError("Choose whom to transfer the conversation to"); return; }
  const [kind, name] = [choice.slice(0, choice.indexOf(":")), choice.slice(choice.indexOf(":") + 1)];
  const note = $("transfer-note").value.trim();
  const payload = { conversation_id: conv.id, to: { [kind]: name } };
  if (note) payload.note = note;
  try {
    const ack = await emitWithAck("transfer", payload);
    if (ack && ack.ok) {
      toggleTransfer(false);
      dropConversation(conv.id);
      showNotice(ack.waiting ? `Transferred: it waits for ${ack.to}.` : `Transferred to ${ack.to}.`);
    } else {
      showError((ack && ack.error) || "Could not transfer the conversation");
    }
  } catch (err) {
    showError(`Could not transfer the conversation: ${err.message}`);
  }
  renderConversationList();
  renderPane();
}

function renderActions(conv) {
  $("conv-actions").hidden = !conv;
  if (!conv) { $("transfer-form").hidden = true; return; }
  const closed = conv.state === "closed";
  const snoozed = isSnoozed(conv);
  $("close-conversation").hidden = closed;
  $("reopen-conversation").hidden = !closed;
  $("transfer-open").hidden = closed;
  if (closed) $("transfer-form").hidden = true;
  $("snooze-choice").hidden = closed;
  if ($("snooze-choice").value !== "at" || closed) { $("snooze-choice").value = ""; $("snooze-at-form").hidden = true; }
  $("snooze-choice").querySelector('option[value="off"]').hidden = !snoozed;
  $("snoozed-note").hidden = !snoozed;
  $("snoozed-note").textContent = snoozed ? `Snoozed until ${formatTime(conv.snoozed_until)}` : "";
  const outcome = $("close-outcome");
  const choices = state.outcomes.choices || [];
  outcome.hidden = closed || choices.length === 0;
  if (outcome.dataset.choices !== JSON.stringify(choices)) {
    outcome.dataset.choices = JSON.stringify(choices);
    const first = el("option", { value: "", text: state.outcomes.required ? "Outcome…" : "No outcome" });
    outcome.replaceChildren(first, ...choices.map((c) => el("option", { value: c, text: c })));
  }
  if (closed || outcome.dataset.conv !== String(conv.id)) outcome.value = ""; // each close picks afresh
  outcome.dataset.conv = String(conv.id);
  const textarea = $("reply-text");
  const stopped = !closed && conv.opted_out === true;
  textarea.disabled = closed || stopped;
  $("reply-send").disabled = closed || stopped;
  textarea.placeholder = closed ? "This conversation is closed: reopen it to reply"
    : stopped ? `The customer opted out of SMS from ${conv.presented_number || conv.access_number} (they texted STOP)`
      : "Type a message — Enter to send, Shift+Enter for a new line";
}

async function lifecycleCall(event, payload, failure) {
  try {
    const ack = await emitWithAck(event, payload);
    if (ack && ack.ok) {
      clearError();
      if (ack.conversation) upsertConversation(ack.conversation);
    } else {
      showError((ack && ack.error) || failure);
    }
  } catch (err) {
    showError(`${failure}: ${err.message}`);
  }
  renderConversationList();
  renderPane();
}

function closeConversation() {
  const conv = state.conversations.get(state.selected);
  if (!conv) return;
  const outcome = $("close-outcome").value;
  if (state.outcomes.required && !outcome) {
    showError("Pick an outcome to close this conversation");
    $("close-outcome").focus();
    return;
  }
  lifecycleCall("close", outcome ? { conversation_id: conv.id, outcome } : { conversation_id: conv.id },
    "Could not close the conversation");
}

function reopenConversation() {
  const conv = state.conversations.get(state.selected);
  if (conv) lifecycleCall("reopen", { conversation_id: conv.id }, "Could not reopen the conversation");
}

function snoozeUntil(choice) {
  const now = new Date();
  if (choice === "off") return null;
  if (choice === "tomorrow" || choice === "week") {
    const at = new Date(now);
    at.setDate(at.getDate() + (choice === "week" ? 7 : 1));
    at.setHours(9, 0, 0, 0);
    return at.getTime() / 1000;
  }
  return now.getTime() / 1000 + Number(choice);
}

function onSnoozeChoice() {
  const conv = state.conversations.get(state.selected);
  const choice = $("snooze-choice").value;
  if (!conv || !choice) return;
  if (choice === "at") { showSnoozeAt(true); return; }
  lifecycleCall("snooze", { conversation_id: conv.id, until: snoozeUntil(choice) }, "Could not snooze the conversation");
}

function localInputValue(date) {
  // A datetime-local input's value (local time, to the minute).
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function showSnoozeAt(show) {
  const form = $("snooze-at-form");
  form.hidden = !show;
  if (!show) return;
  const input = $("snooze-at");
  const soon = new Date(Date.now() + 3600 * 1000);
  input.min = localInputValue(new Date());
  input.max = localInputValue(new Date(Date.now() + 365 * 86400 * 1000)); // the server's limit: a year ahead
  if (!input.value) input.value = localInputValue(soon);
  input.focus();
}

function onSnoozeAt(event) {
  event.preventDefault();
  const conv = state.conversations.get(state.selected);
  const at = new Date($("snooze-at").value); // local time, as the agent typed it
  if (!conv) return;
  if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
    showError("Pick a time in the future to snooze until.");
    return;
  }
  showSnoozeAt(false);
  $("snooze-choice").value = "";
  lifecycleCall("snooze", { conversation_id: conv.id, until: at.getTime() / 1000 }, "Could not snooze the conversation");
}

async function loadEarlier(id) {
  if (id === null || id === "new" || state.earlier.has(id)) return;
  try {
    const ack = await emitWithAck("history", { conversation_id: id });
    if (ack && ack.ok && Array.isArray(ack.conversations)) {
      state.earlier.set(id, ack.conversations);
      if (state.selected === id) renderTranscript();
    }
  } catch { /* shown again when the conversation is selected next */ }
}

function renderEarlier(list) {
  // Oldest first, above the current conversation's messages.
  return [...list].reverse().map((conv) => {
    const when = conv.closed_at || conv.updated_at;
    const head = `Earlier conversation · ${conv.state === "closed" ? "closed" : "open"} ${formatTime(when)}${conv.outcome ? ` · ${conv.outcome}` : ""}`;
    return el("li", { className: "earlier", "data-testid": "earlier-conversation", "data-id": conv.id },
      el("div", { className: "earlier-head muted", text: head }),
      el("ol", { className: "transcript-earlier" }, ...(conv.messages || []).map(renderMessage)));
  });
}

function renderFromPicker() {
  const select = $("from-picker");
  const sel = state.selected;
  const conv = sel !== null && sel !== "new" ? state.conversations.get(sel) : null;
  const numbers = [...state.numbers];
  let current = null;
  if (conv) {
    current = conv.presented_number || conv.access_number || null;
  } else if (sel === "new") {
    const def = numbers.find((n) => n.default) || numbers[0];
    // With selection rules the server picks (the customer's prefix, the number last used with them).
    current = state.newFrom || (state.autoSelect ? "" : (def ? def.number : null));
  }
  if (current && !numbers.some((n) => n.number === current)) {
    numbers.unshift({ number: current, label: "", default: false, unlisted: true });
  }
  const options = numbers.map((n) => {
    const extra = [n.language, n.category].filter(Boolean).join(", ");
    const label = (n.label && n.label !== n.number ? `${n.label} — ${n.number}` : n.number) + (extra ? ` (${extra})` : "");
    const opt = el("option", { value: n.number, text: n.default ? `${label} (default)` : label });
    if (n.unlisted) opt.disabled = true;
    return opt;
  });
  if (sel === "new" && state.autoSelect) options.unshift(el("option", { value: "", text: "Automatic (your rules)" }));
  select.replaceChildren(...options);
  if (current !== null) select.value = current;
  select.disabled = numbers.length === 0;
  const picked = state.numbers.find((n) => n.number === select.value);
  $("make-default").hidden = !picked || picked.default;
}

async function makeDefault() {
  const number = $("from-picker").value;
  try {
    const ack = await emitWithAck("default_number", { number });
    if (ack && ack.ok) { state.numbers = ack.numbers || state.numbers; showNotice(`New conversations now come from ${number}.`); }
    else showError((ack && ack.error) || "Could not change your default number");
  } catch (err) {
    showError(`Could not change your default number: ${err.message}`);
  }
  renderPane();
}

async function onFromChange() {
  const select = $("from-picker");
  const number = select.value;
  if (state.selected === "new") { state.newFrom = number; renderFromPicker(); return; }
  const conv = state.conversations.get(state.selected);
  if (!conv) return;
  const previous = conv.presented_number || conv.access_number;
  if (number === previous) return;
  select.disabled = true;
  try {
    const ack = await emitWithAck("present", { conversation_id: conv.id, number });
    if (ack && ack.ok) {
      clearError();
      if (ack.conversation) upsertConversation(ack.conversation);
      else state.conversations.set(conv.id, { ...conv, presented_number: number });
    } else {
      showError((ack && ack.error) || `You cannot send from ${number}`);
    }
  } catch (err) {
    showError(`Could not change the number: ${err.message}`);
  } finally {
    select.disabled = false;
    renderPane();
    renderConversationList();
  }
}

function renderTranscript() {
  const ol = $("transcript");
  const sel = state.selected;
  if (sel === null) { ol.replaceChildren(); return; }
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
  const list = sel === "new" ? [] : (state.messages.get(sel) || []);
  const nodes = [...(sel === "new" ? [] : renderEarlier(state.earlier.get(sel) || [])), ...list.map(renderMessage)];
  for (const item of state.outbox) {
    if (item.conversationKey === sel || (sel === "new" && String(item.conversationKey).startsWith("to:"))) {
      nodes.push(renderPending(item));
    }
  }
  if (list.length === 0 && nodes.length === 0) {
    nodes.push(el("li", { className: "transcript-empty muted", text: sel === "new" ? "Write the first message below." : "No messages yet." }));
  }
  ol.replaceChildren(...nodes);
  if (atBottom || ol.dataset.conv !== String(sel)) ol.scrollTop = ol.scrollHeight;
  ol.dataset.conv = String(sel);
}

function renderNote(m) {
  return el("li", { className: "message note", "data-testid": "message", "data-direction": "note", "data-id": m.id, "data-seq": m.seq },
    el("div", { className: "bubble" },
      el("div", { className: "note-label muted", text: "Note (only you see this)" }),
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: m.text || "" }),
      el("div", { className: "meta" }, el("time", { datetime: m.created_at || "", text: formatTime(m.created_at) }))));
}

function renderMessage(m) {
  if (m.direction === "note") return renderNote(m);
  const out = m.direction === "out";
  const meta = el("div", { className: "meta" },
    el("time", { datetime: m.created_at || "", title: m.created_at || "", text: formatTime(m.created_at) }));
  if (out && m.automatic) {
    // didchat sent it, not an agent: a scenario's greeting or away reply, or the opt-out confirmation
    meta.prepend(el("span", { className: "auto-label", "data-testid": "automatic-label",
                              text: m.compliance ? "Automatic: opt-out confirmation" : "Automatic" }));
  }
  if (out) {
    if (m.from) meta.appendChild(el("span", { className: "from muted", text: `from ${m.from}` }));
    const status = m.status || "queued";
    const label = STATUS_LABELS[status] || status;
    const statusNode = el("span", {
      className: `status status-${status}`,
      "data-testid": "message-status",
      "data-status": status,
      text: (status === "failed" || status === "undelivered") && m.error ? `${label}: ${m.error}` : label,
    });
    meta.appendChild(statusNode);
    if (m.segments > 1) meta.appendChild(el("span", { className: "muted", text: `${m.segments} parts` }));
  }
  return el("li", {
    className: `message ${out ? "out" : "in"}${out && m.automatic ? " automatic" : ""}`,
    "data-testid": "message",
    "data-automatic": out && m.automatic ? "true" : null,
    "data-direction": out ? "out" : "in",
    "data-id": m.id,
    "data-seq": m.seq,
  },
    el("div", { className: "bubble" },
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: m.text || "" }),
      meta));
}

function renderPending(item) {
  const status = item.state === "sending" ? "sending" : "unconfirmed";
  const meta = el("div", { className: "meta" },
    el("span", {
      className: `status status-${status}`,
      "data-testid": "message-status",
      "data-status": status,
      text: status === "sending" ? (state.connected ? "Sending…" : "Waiting for connection…") : `Not confirmed: ${item.error || ""}`,
    }));
  if (status === "unconfirmed") {
    const retry = el("button", { type: "button", className: "link", "data-testid": "message-retry", text: "Retry" });
    retry.addEventListener("click", () => retrySend(item));
    const discard = el("button", { type: "button", className: "link", text: "Discard" });
    discard.addEventListener("click", () => discardSend(item));
    meta.append(retry, discard);
  }
  return el("li", {
    className: "message out pending",
    "data-testid": "message",
    "data-direction": "out",
    "data-client-id": item.client_id,
  },
    el("div", { className: "bubble" },
      el("div", { className: "message-text", dir: "auto", "data-testid": "message-text", text: item.text }),
      meta));
}

function updateCounter() {
  const c = smsCount($("reply-text").value);
  const node = $("composer-counter");
  node.textContent = counterText(c);
  node.dataset.encoding = c.encoding;
  node.dataset.segments = String(c.segments);
  node.dataset.units = String(c.units);
}

// ---------------------------------------------------------------------------------------------
// Presence

async function togglePresence() {
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
      showError((ack && ack.error) || "Could not change presence");
    }
  } catch (err) {
    state.presence = previous;
    showError(`Could not change presence: ${err.message}`);
  }
  renderPresence();
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    login($("login-username").value.trim(), $("login-password").value);
  });
  $("logout").addEventListener("click", logout);
  $("error-close").addEventListener("click", clearError);
  $("presence").addEventListener("click", togglePresence);
  $("new-conversation").addEventListener("click", startNewConversation);
  $("back-to-list").addEventListener("click", backToList);
  $("alerts").addEventListener("click", toggleAlerts);
  $("alert-sound").addEventListener("click", toggleSound);
  $("from-picker").addEventListener("change", onFromChange);
  $("make-default").addEventListener("click", makeDefault);
  $("close-conversation").addEventListener("click", closeConversation);
  $("reopen-conversation").addEventListener("click", reopenConversation);
  $("snooze-choice").addEventListener("change", onSnoozeChoice);
  $("snooze-at-form").addEventListener("submit", onSnoozeAt);
  $("snooze-at-cancel").addEventListener("click", () => { showSnoozeAt(false); $("snooze-choice").value = ""; });
  $("board-open").addEventListener("click", () => { if (state.board) { state.board = false; renderPane(); } else showBoard(); });
  $("board-refresh").addEventListener("click", showBoard);
  $("board-stuck").addEventListener("change", showBoard);
  $("transfer-open").addEventListener("click", () => toggleTransfer($("transfer-form").hidden));
  $("transfer-cancel").addEventListener("click", () => toggleTransfer(false));
  $("transfer-form").addEventListener("submit", (e) => { e.preventDefault(); submitTransfer(); });
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); submitComposer(); });
  const textarea = $("reply-text");
  textarea.addEventListener("input", updateCounter);
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitComposer();
    }
  });
  $("new-to").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); textarea.focus(); }
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) markRead(); });
  window.addEventListener("online", () => {
    if (state.socket && !state.socket.connected && state.token) state.socket.connect();
  });
}

async function boot() {
  wire();
  updateCounter();
  loadAlerts();
  const named = /^#c=(\d+)$/.exec(location.hash);
  state.reopen = named ? Number(named[1]) : null;
  if (typeof window.io !== "function") {
    showView("login");
    showError("The Socket.IO client did not load (/static/vendor/socket.io.min.js).");
    return;
  }
  showView("loading");
  // A reload keeps no token in memory: try the httpOnly refresh cookie first.
  try {
    const { res, data } = await postJSON("/api/refresh");
    if (res.ok && data && data.token) {
      acceptToken(res, data);
      startSession();
      return;
    }
  } catch { /* fall through to the login form */ }
  showView("login");
  $("login-username").focus();
}

boot();

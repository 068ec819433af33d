// The client's state: one object, the only one; every module reads and changes it here.
//
// Rules:
// - The server's data (newData in merge.js) and the pending sends live here with the client's own
//   fields (session, link, what is on screen); nothing else keeps state of its own, apart from the
//   timers a module owns.
// - resetData() forgets everything one agent's session held, so the next login starts clean.

import { newData } from "./merge.js";
import { PendingQueue } from "./pending.js";

export const state = {
  ...newData(),
  token: null,
  expiresAt: null,        // unix seconds (server clock)
  refreshTimer: null,
  socket: null,
  connected: false,       // linked and synced at least once on this link: calls may go out
  syncing: false,
  syncAgain: false,
  outbox: new PendingQueue(), // local sends awaiting an ack (pending.js)
  selected: null,         // conversation id, or "new"
  snoozeTimer: null,      // re-renders the list when the next snooze ends
  board: false,           // the supervisor's board is shown instead of a conversation
  boardTimer: null,       // the board's next refresh
  monitor: null,          // the conversation a supervisor monitors live: { conversation, messages: Map id -> message }
  newFrom: null,          // chosen "from" in new-conversation mode
  reopen: null,           // the conversation the URL named (#c=ID), opened once a sync has it
  alerts: false,          // desktop notifications on (and permitted)
  sound: false,           // a chime for new messages
  audio: null,            // the AudioContext the chime plays on (made on the click that turned it on)
};

/** Forget the session's data (logout, session ended). */
export function resetData() {
  state.since = null;
  state.presence = "not_ready";
  state.numbers = [];
  state.conversations.clear();
  state.messages.clear();
  state.messageById.clear();
  state.pendingStatus.clear();
  state.localRead.clear();
  state.outbox.clear();
  state.selected = null;
  state.newFrom = null;
  state.earlier.clear();
  state.queue = [];
}

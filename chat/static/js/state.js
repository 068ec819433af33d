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
  synced: false,          // this link's first sync is merged: "Connected" may show (socket.js)
  syncing: false,
  syncAgain: false,
  outbox: new PendingQueue(), // local sends awaiting an ack (pending.js)
  selected: null,         // conversation id, or "new"
  drafts: new Map(),      // conversation id -> what the composer held when the agent moved to another (nav.js)
  snoozeTimer: null,      // re-renders the list when the next snooze ends
  board: false,           // the supervisor's board is shown instead of a conversation
  boardTimer: null,       // the board's next refresh
  monitor: null,          // the conversation a supervisor monitors live: { conversation, messages: Map id -> message }
  newFrom: null,          // chosen "from" in new-conversation mode
  reopen: null,           // the conversation the URL named (#c=ID), opened once a sync has it
  alerts: false,          // desktop notifications on (and permitted)
  sound: false,           // a chime for new messages
  audio: null,            // the AudioContext the chime plays on (made on the click that turned it on)
  // Contact panel and canned replies (contact.js, canned.js, myreplies.js)
  contacts: new Map(),    // conversation id -> its contact as the `contact` call gave it
  nationals: new Map(),   // contact number -> as its country writes it (from those answers)
  contactHidden: null,    // a desktop's contact column hidden by the agent (null: not read from this browser yet)
  contactView: null,      // a tablet's or phone's: the conversation whose contact panel is open as its own view
  contactShown: "",       // what the panel shows now (rebuilt only when that changes)
  renaming: null,         // the conversation whose contact's name is being edited
  canned: [],             // the canned replies this agent may use (the `canned` call)
  cannedPopup: null,      // the "/" list while open: {start, end, query, items, active}
  cannedDismissed: null,  // where the "/" the agent closed the list of with Escape is
  myReplyEditing: null,   // the id of the reply "My replies" edits (null: a new one)
  // Search and filters, media, attachments (search.js, media.js, attach.js)
  search: newSearch(),    // what the sidebar's search shows instead of the live list
  media: new Map(),       // attachment url -> {view, status, blobUrl, size, error}: fetched for the open conversation
  attachments: [],        // the composer's files: {key, name, size, status, progress, id, error, xhr}
  transcriptStuck: true,  // the transcript was scrolled to its bottom (a picture that loads keeps it there)
};

/** The search's state: the text asked and the filter, its results so far and where the next page starts. */
export function newSearch() {
  return { q: "", filter: "all", active: false, results: [], next: null, loading: false, error: null, ticket: 0, found: null };
}

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
  state.drafts.clear();
  state.selected = null;
  state.newFrom = null;
  state.earlier.clear();
  state.queue = [];
  state.contacts.clear();
  state.nationals.clear();
  state.contactView = null;
  state.contactShown = "";
  state.renaming = null;
  state.canned = [];
  state.cannedPopup = null;
  state.search = newSearch();
  state.extra.clear();
  state.attachments = [];   // uploads not sent are deleted by the server within a day
}

// The pending-send queue: the agent's sends that the server has not confirmed yet, in the order typed.
//
// Rules:
// - An item keeps its client_id for its whole life: every retry sends the same one, so the server
//   stores the message once (docs/agent-protocol.md, `send`).
// - An item is "sending" (sent, or waiting for a link), "unconfirmed" (given up after the server's
//   `retry` answers) or "refused" (the server said no, with its reason); the last two wait for the
//   agent's Retry or Discard. It leaves the queue when the server confirms it (its ack, or its
//   message arriving by push or sync with the same client_id), or when the agent discards it.
// - `inFlight` (a call is out now) is the link's business, not the data's: it is never saved.
// - What left the queue by settle() or remove() is listed until takeRemoved() (outbox.js forgets
//   those in the browser's storage); clear() lists nothing (a session that ends keeps its storage).
// - Pure data: no DOM, no socket, no clock or random source of its own (the caller passes client
//   ids and times), so it can be saved as JSON (localStorage) and read back.

const SAVED = ["client_id", "payload", "conversationKey", "text", "state", "error", "attempts", "createdAt"];
const STATES = new Set(["sending", "unconfirmed", "refused"]);

export class PendingQueue {
  constructor(items = []) {
    this.items = items;
    this.removed = [];
  }

  /** Queue a send: `payload` is the `send` call's body (its client_id is set to `clientId`). */
  add({ clientId, payload, conversationKey, text, createdAt }) {
    const item = {
      client_id: clientId,
      payload: { ...payload, client_id: clientId },
      conversationKey,
      text,
      state: "sending",
      error: null,
      attempts: 0,
      inFlight: false,
      createdAt,
    };
    this.items.push(item);
    return item;
  }

  /** Whether `item` is still waiting (it may have been confirmed or discarded meanwhile). */
  has(item) {
    return this.items.includes(item);
  }

  /** The item with this client_id, or undefined. */
  find(clientId) {
    return this.items.find((o) => o.client_id === clientId);
  }

  /** The server stored it: forget the item with this client_id. */
  settle(clientId) {
    const item = this.find(clientId);
    if (item) this.remove(item);
  }

  /** Forget one item (confirmed by its ack, or discarded by the agent). */
  remove(item) {
    if (!this.has(item)) return;
    this.items = this.items.filter((o) => o !== item);
    this.removed.push(item.client_id);
  }

  /** The client ids that left the queue since the last call. */
  takeRemoved() {
    const gone = this.removed;
    this.removed = [];
    return gone;
  }

  /** Give up for now: the server kept answering `retry`. */
  fail(item, error) {
    item.state = "unconfirmed";
    item.error = error;
  }

  /** The server refused it (ok false, no retry): it waits for the agent, with the server's reason. */
  refuse(item, error) {
    item.state = "refused";
    item.error = error;
  }

  /** Send it again from the start, with the same client_id. */
  retry(item) {
    item.state = "sending";
    item.error = null;
    item.attempts = 0;
  }

  /** The items waiting to go out: sending, and no call out for them now. */
  sendable() {
    return this.items.filter((item) => item.state === "sending" && !item.inFlight);
  }

  /** The link is gone: no call is out any more, every sending item goes again on the next link. */
  linkLost() {
    for (const item of this.items) if (item.state === "sending") item.inFlight = false;
  }

  /** Take an item as another tab saved it: a new one in the order typed, or news of one we hold
   *  (its link state stays ours). The item, or null when `saved` cannot be read. */
  merge(saved) {
    const read = PendingQueue.readItem(saved);
    if (!read) return null;
    const held = this.find(read.client_id);
    if (held) {
      for (const k of SAVED) held[k] = read[k];
      return held;
    }
    let i = this.items.length;
    while (i > 0 && String(this.items[i - 1].createdAt || "") > String(read.createdAt || "")) i -= 1;
    this.items.splice(i, 0, read);
    return read;
  }

  /** The items shown under a conversation (`key`: its id, or "new" for every send to a new number). */
  forKey(key) {
    return this.items.filter((item) => item.conversationKey === key ||
      (key === "new" && String(item.conversationKey).startsWith("to:")));
  }

  clear() {
    this.items = [];
    this.removed = [];
  }

  get length() {
    return this.items.length;
  }

  /** What JSON.stringify saves: the items without their link state. */
  toJSON() {
    return this.items.map(PendingQueue.itemJSON);
  }

  /** One item as it is saved (without its link state). */
  static itemJSON(item) {
    return Object.fromEntries(SAVED.map((k) => [k, item[k]]));
  }

  /** One saved item read back, or null when it cannot be read (never thrown). */
  static readItem(o) {
    if (!(o && typeof o.client_id === "string" && o.payload && typeof o.payload === "object")) return null;
    return {
      ...PendingQueue.itemJSON(o),
      payload: { ...o.payload, client_id: o.client_id },
      state: STATES.has(o.state) ? o.state : "sending",
      error: o.error ?? null,
      attempts: Number(o.attempts) || 0,
      inFlight: false,
    };
  }

  /** The queue read back from its JSON (anything unreadable is left out, never thrown). */
  static fromJSON(data) {
    const list = Array.isArray(data) ? data : [];
    return new PendingQueue(list.map(PendingQueue.readItem).filter(Boolean));
  }
}

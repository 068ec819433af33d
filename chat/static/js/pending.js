// The pending-send queue: the agent's sends that the server has not confirmed yet, in the order typed.
//
// Rules:
// - An item keeps its client_id for its whole life: every retry sends the same one, so the server
//   stores the message once (docs/agent-protocol.md, `send`).
// - An item is "sending" (sent, or waiting for a link) or "unconfirmed" (given up after the server's
//   `retry` answers; the agent may retry or discard it). It leaves the queue when the server
//   confirms it (its ack, or its message arriving by push or sync with the same client_id).
// - `inFlight` (a call is out now) is the link's business, not the data's: it is never saved.
// - Pure data: no DOM, no socket, no clock or random source of its own (the caller passes client
//   ids and times), so it can be saved as JSON (localStorage) and read back.

const SAVED = ["client_id", "payload", "conversationKey", "text", "state", "error", "attempts", "createdAt"];

export class PendingQueue {
  constructor(items = []) {
    this.items = items;
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

  /** The server stored it: forget the item with this client_id. */
  settle(clientId) {
    this.items = this.items.filter((o) => o.client_id !== clientId);
  }

  /** Forget one item (confirmed by its ack, refused for good, or discarded by the agent). */
  remove(item) {
    this.items = this.items.filter((o) => o !== item);
  }

  /** Give up for now: the server kept answering `retry`. */
  fail(item, error) {
    item.state = "unconfirmed";
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

  /** The items shown under a conversation (`key`: its id, or "new" for every send to a new number). */
  forKey(key) {
    return this.items.filter((item) => item.conversationKey === key ||
      (key === "new" && String(item.conversationKey).startsWith("to:")));
  }

  clear() {
    this.items = [];
  }

  get length() {
    return this.items.length;
  }

  /** What JSON.stringify saves: the items without their link state. */
  toJSON() {
    return this.items.map((item) => Object.fromEntries(SAVED.map((k) => [k, item[k]])));
  }

  /** The queue read back from its JSON (anything unreadable is left out, never thrown). */
  static fromJSON(data) {
    const list = Array.isArray(data) ? data : [];
    const ok = (o) => o && typeof o.client_id === "string" && o.payload && typeof o.payload === "object";
    return new PendingQueue(list.filter(ok).map((o) => ({
      ...Object.fromEntries(SAVED.map((k) => [k, o[k]])),
      state: o.state === "unconfirmed" ? "unconfirmed" : "sending",
      error: o.error ?? null,
      attempts: Number(o.attempts) || 0,
      inFlight: false,
    })));
  }
}

// The agent's keyboard shortcuts: which key does what (nav.js acts on them; index.html's "?" list
// and README's agent section name them).
//
// Rules:
// - Never a key the browser or a screen reader owns: nothing with Ctrl or Meta (the browser's and the
//   system's), no Alt+letter that opens a browser menu (F, E, V, S, B, T, H, D), nothing with Insert or
//   Caps Lock (NVDA's and JAWS's keys); plain letters and "?" only outside text fields, where they
//   would type nothing.
// - Alt+letter is read by the key's place (`code`), so it works on any layout; inside a text field
//   only where Alt types no character (on a Mac, Option+N is how one types ñ: that stays the text's).
// - Alt+↓/↑ are left to a <select> (its own "open the list" key).
// - Pure: it reads the key event's fields, and is handed where the focus is; no DOM.

/** Alt + these keys, from anywhere (a text field included). */
const ALT_KEYS = { ArrowDown: "next", ArrowUp: "previous" };
/** Alt + the key at this place, from anywhere. */
const ALT_CODES = { KeyN: "nextUnread", KeyR: "reply", KeyC: "close" };
/** These keys alone, outside text fields. */
const PLAIN_KEYS = { r: "reply", "?": "help" };
/** In the conversation list: these keys move the focus. */
const LIST_KEYS = { ArrowDown: "focusNext", ArrowUp: "focusPrevious", Home: "focusFirst", End: "focusLast" };

/** The action a key press asks for, or null. `where`: "text" (a text field), "select", "list" (a
 *  conversation item) or "other"; `mac`: Option types characters there. */
export function shortcutFor(e, where, mac = false) {
  if (!e || e.ctrlKey || e.metaKey || e.isComposing) return null;
  if (e.key === "Escape") return e.altKey || e.shiftKey ? null : "escape";
  if (e.altKey) return e.shiftKey ? null : altShortcut(e, where, mac);
  if (where === "list" && !e.shiftKey && LIST_KEYS[e.key]) return LIST_KEYS[e.key];
  if (where === "text" || where === "select") return null;
  return Object.hasOwn(PLAIN_KEYS, e.key) ? PLAIN_KEYS[e.key] : null;
}

function altShortcut(e, where, mac) {
  if (Object.hasOwn(ALT_KEYS, e.key)) return where === "select" ? null : ALT_KEYS[e.key];
  const action = Object.hasOwn(ALT_CODES, e.code) ? ALT_CODES[e.code] : null;
  if (!action) return null;
  // In a text field on a Mac, Option+letter types a character (e.key is it, or "Dead"): leave it be.
  if (where === "text" && mac && String(e.key).toLowerCase() !== e.code.slice(3).toLowerCase()) return null;
  return action;
}

/** The neighbour of `index` in a list of `length` for a move ("focusNext", …); -1 when empty. */
export function moveIndex(action, index, length) {
  if (length === 0) return -1;
  const moves = {
    focusNext: () => Math.min(length - 1, index + 1),
    focusPrevious: () => Math.max(0, index - 1),
    focusFirst: () => 0,
    focusLast: () => length - 1,
  };
  return moves[action] ? moves[action]() : index;
}

/** The conversation after (step 1) or before (-1) the open one in the list, by position; none open: the first. */
export function neighbour(ids, selected, step) {
  if (ids.length === 0) return null;
  const at = ids.indexOf(selected);
  if (at === -1) return ids[0];
  const next = at + step;
  return next >= 0 && next < ids.length ? ids[next] : null;
}

/** The next conversation with unread messages after the open one, wrapping round; null when none. */
export function nextUnread(ids, unread, selected) {
  const at = ids.indexOf(selected);
  for (let i = 1; i <= ids.length; i += 1) {
    const id = ids[(at + i + ids.length) % ids.length];
    if (unread.has(id) && id !== selected) return id;
  }
  return null;
}

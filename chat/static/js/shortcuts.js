// Canned replies' pure parts: the "/shortcut" being typed, the replies it matches, and a reply's
// variables filled in (docs/agent-protocol.md, "Canned replies").
//
// Rules:
// - A shortcut is typed as "/" at the start of the text or after a space (so "and/or" and a URL's
//   slashes open nothing), then 0-32 of the characters a shortcut has (a-z A-Z 0-9 - _).
// - Only the reply that wins a shortcut is offered (`shadowed` ones are not); matching is case-blind,
//   those that start with what was typed first, then those that contain it.
// - The variables are the server's four; a variable with no value becomes "" without leaving a double
//   space, a space before punctuation or a lone comma ("Hello {contact.name}, hi" -> "Hello, hi";
//   "Thanks, {contact.name}!" -> "Thanks!"). Any other {name} stays as written: the server refuses
//   to save one, so it is text the admin meant.
// - Pure: no DOM, no state.

const TYPED = /(^|\s)\/([A-Za-z0-9_-]{0,32})$/;
const REST = /^[A-Za-z0-9_-]*/;
const VARIABLE = /\{([A-Za-z_][A-Za-z0-9_.]*)\}/g; // as chat.domain.canned.VARIABLE: other braces are text
const CLOSES = /[\s,.;:!?)\]]/;                     // after an emptied variable: its space before goes too
const PUNCTUATION = /[,.;:!?]/;                      // ... and a comma before it too

/** The "/shortcut" the caret is in: {start (of the "/"), end (of the word), query (typed before the caret)}, or null. */
export function shortcutAt(value, caret) {
  const text = String(value || "");
  const at = Math.max(0, Math.min(Number(caret) || 0, text.length));
  const typed = TYPED.exec(text.slice(0, at));
  if (!typed) return null;
  const query = typed[2];
  return { start: at - query.length - 1, end: at + REST.exec(text.slice(at))[0].length, query };
}

/** The replies offered for what was typed after "/": winners only, prefix matches first, then the others. */
export function matchingReplies(replies, query) {
  const q = String(query || "").toLowerCase();
  const winners = (Array.isArray(replies) ? replies : [])
    .filter((r) => r && !r.shadowed && typeof r.shortcut === "string" && typeof r.text === "string");
  const byShortcut = (a, b) => a.shortcut.toLowerCase().localeCompare(b.shortcut.toLowerCase());
  const starts = winners.filter((r) => r.shortcut.toLowerCase().startsWith(q)).sort(byShortcut);
  const within = winners.filter((r) => !r.shortcut.toLowerCase().startsWith(q) && r.shortcut.toLowerCase().includes(q))
    .sort(byShortcut);
  return [...starts, ...within];
}

/** The values of the variables for a conversation's contact and the signed-in agent. */
export function replyVariables(conv, user) {
  const contact = (conv && conv.contact) || {};
  const agent = user || {};
  return {
    "contact.name": contact.name || "",
    "contact.number": contact.number || "",
    "agent.name": agent.name || "",
    "agent.display_name": agent.display_name || agent.name || "",
  };
}

/** `text` with its known variables filled from `vars` (see Rules for the empty ones). */
export function fillVariables(text, vars) {
  const source = String(text || "");
  let out = "";
  let from = 0;
  for (const match of source.matchAll(VARIABLE)) {
    const name = match[1];
    out += source.slice(from, match.index);
    from = match.index + match[0].length;
    if (!Object.hasOwn(vars || {}, name)) { out += match[0]; continue; }
    const value = String(vars[name] ?? "");
    if (value) { out += value; continue; }
    const next = source.charAt(from);
    if (/[ \t]$/.test(out) && (next === "" || CLOSES.test(next))) {
      out = out.replace(/[ \t]$/, "");
      if (out.endsWith(",") && (next === "" || PUNCTUATION.test(next))) out = out.slice(0, -1); // "Thanks, {x}!" -> "Thanks!"
    } else if ((out === "" || out.endsWith("\n")) && (next === " " || next === "\t")) {
      from += 1;
    }
  }
  return out + source.slice(from);
}

/** A one-line start of a reply's text, for the list of replies. */
export function preview(text, length = 80) {
  const line = String(text || "").replace(/\s+/g, " ").trim();
  return line.length > length ? `${line.slice(0, length - 1)}…` : line;
}

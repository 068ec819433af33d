// Small pure helpers: times as the client shows them, and a contact's name and number.
//
// Rules:
// - Times follow the browser's locale; an unreadable or missing time is "" (shown) or 0 (compared).
// - No DOM, no state.

/** A time as the list and the transcript show it: the time today, else the date and the time. */
export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

/** An ISO time as milliseconds, for comparing (0 when missing or unreadable). */
export function timeValue(iso) {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** A datetime-local input's value (local time, to the minute). */
export function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The unix time a snooze choice of the menu ends at ("off": null, no end). */
export function snoozeUntil(choice, now = new Date()) {
  if (choice === "off") return null;
  if (choice === "tomorrow" || choice === "week") {
    const at = new Date(now);
    at.setDate(at.getDate() + (choice === "week" ? 7 : 1));
    at.setHours(9, 0, 0, 0);
    return at.getTime() / 1000;
  }
  return now.getTime() / 1000 + Number(choice);
}

/** A conversation's (or queue item's) contact: {name, number}, "" where unknown. */
export function contactLabel(conv) {
  const c = (conv && conv.contact) || {};
  return { name: c.name || "", number: c.number || "" };
}

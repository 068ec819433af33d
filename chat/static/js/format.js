// Small pure helpers: times as the client shows them, and a contact's name and number.
//
// Rules:
// - Times follow the browser's locale and time zone (Intl); `opts` may name others ({locale, timeZone, now}),
//   as the tests do. "Today", "Yesterday" and how a day and a time are joined come from the catalogue.
// - Days are calendar days in that zone (a day across a DST change is still one day).
// - An unreadable or missing time is "" (shown) or 0 (compared). No DOM, no state.

import { t } from "./strings.js";

const DAY_MS = 86400 * 1000;
const YEAR_MS = 365 * DAY_MS;
const formatters = new Map();

/** An Intl.DateTimeFormat, made once per (locale, zone, options). */
function formatter(locale, timeZone, options) {
  const key = JSON.stringify([locale || "", timeZone || "", options]);
  if (!formatters.has(key)) formatters.set(key, new Intl.DateTimeFormat(locale || undefined, { ...options, timeZone }));
  return formatters.get(key);
}

/** The calendar day of `date` in `timeZone` as a number of days since 1970 (days compare and subtract). */
export function dayNumber(date, timeZone) {
  const parts = Object.fromEntries(formatter("en-US", timeZone, { year: "numeric", month: "numeric", day: "numeric" })
    .formatToParts(date).map((p) => [p.type, Number(p.value)]));
  return Math.round(Date.UTC(parts.year, parts.month - 1, parts.day) / DAY_MS);
}

function readDate(iso) {
  if (!iso) return null;
  const d = iso instanceof Date ? iso : new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

// Days from today -> their word.
const NEAR_DAYS = { 0: () => t("date.today"), [-1]: () => t("date.yesterday"), 1: () => t("date.tomorrow") };

/** "Today", "Yesterday", "Tomorrow", or null for any other day. */
function nearDay(d, now, timeZone) {
  const word = NEAR_DAYS[dayNumber(d, timeZone) - dayNumber(now, timeZone)];
  return word ? word() : null;
}

/** A message's time: "Today 14:03", "Yesterday 09:12", "3 Dec 09:12", older than a year "3 Dec 2023 09:12". */
export function formatTime(iso, { now = new Date(), timeZone, locale } = {}) {
  const d = readDate(iso);
  if (!d) return "";
  const time = formatter(locale, timeZone, { hour: "2-digit", minute: "2-digit" }).format(d);
  const withYear = Math.abs(now.getTime() - d.getTime()) > YEAR_MS;
  const day = nearDay(d, now, timeZone) ||
    formatter(locale, timeZone, { day: "numeric", month: "short", ...(withYear ? { year: "numeric" } : {}) }).format(d);
  return t("date.stamp", { day, time });
}

/** A day separator's words: "Today", "Yesterday", "Tuesday 3 December", older than a year "3 December 2023". */
export function formatDay(iso, { now = new Date(), timeZone, locale } = {}) {
  const d = readDate(iso);
  if (!d) return "";
  const withYear = Math.abs(now.getTime() - d.getTime()) > YEAR_MS;
  const options = withYear ? { day: "numeric", month: "long", year: "numeric" } : { weekday: "long", day: "numeric", month: "long" };
  return nearDay(d, now, timeZone) || formatter(locale, timeZone, options).format(d);
}

/** Whether two times fall on different calendar days (a separator goes between them); false if either is unreadable. */
export function otherDay(a, b, timeZone) {
  const da = readDate(a);
  const db = readDate(b);
  return !!da && !!db && dayNumber(da, timeZone) !== dayNumber(db, timeZone);
}

/** A file's size in the locale's words: "512 byte", "12 kB", "1.5 MB" (decimal units, as Intl names them). */
export function formatSize(bytes, { locale } = {}) {
  const n = Math.max(0, Number(bytes) || 0);
  const [unit, value] = n < 1000 ? ["byte", n] : n < 1e6 ? ["kilobyte", n / 1e3] : ["megabyte", n / 1e6];
  return new Intl.NumberFormat(locale || undefined, { style: "unit", unit, unitDisplay: "short",
                                                      maximumFractionDigits: value < 10 && unit !== "byte" ? 1 : 0 }).format(value);
}

/** Where each word of a search starts a word of `text`: [[start, end], ...] in order (for <mark>). */
export function wordRanges(text, query) {
  const words = [...String(query || "").toLowerCase().matchAll(/[\p{L}\p{N}\p{M}]+/gu)].map((m) => m[0]);
  const lower = String(text || "").toLowerCase();
  const ranges = [];
  for (const w of new Set(words)) {
    for (let i = lower.indexOf(w); i !== -1; i = lower.indexOf(w, i + 1)) {
      const before = i === 0 ? "" : lower[i - 1];
      const wordStart = !/[\p{L}\p{N}\p{M}]/u.test(before);
      const whole = w.length > 1 || !/[\p{L}\p{N}\p{M}]/u.test(lower[i + 1] || ""); // one letter: a whole word
      if (wordStart && whole) ranges.push([i, i + w.length]);
    }
  }
  return mergeRanges(ranges, String(text || ""), lower);
}

/** Where `query` (or each of its words) appears anywhere in a name, as a name search finds it. */
export function nameRanges(name, query) {
  const lower = String(name || "").toLowerCase();
  const words = String(query || "").toLowerCase().split(/\s+/).filter(Boolean);
  const ranges = [];
  for (const w of new Set(words)) {
    for (let i = lower.indexOf(w); i !== -1; i = lower.indexOf(w, i + 1)) ranges.push([i, i + w.length]);
  }
  return mergeRanges(ranges, String(name || ""), lower);
}

function mergeRanges(ranges, text, lower) {
  if (text.length !== lower.length) return []; // lower-casing changed the length (e.g. "İ"): offsets would be wrong
  const out = [];
  for (const [s, e] of ranges.sort((a, b) => a[0] - b[0] || b[1] - a[1])) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
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
  return { name: c.name || "", number: c.number || "", national: c.national || c.number || "" };
}

// Dates as the client shows them (chat/static/js/format.js): "Today 14:03", "Yesterday 09:12", "3 Dec 09:12",
// a year on "3 Dec 2023 09:12"; day separators; calendar days in the zone given (not the machine's); and
// where a search's words are marked. Every test names its locale and zone, so none depends on this machine.
import assert from "node:assert/strict";
import { test } from "node:test";

import { dayNumber, formatDay, formatSize, formatTime, nameRanges, otherDay, wordRanges } from "../../chat/static/js/format.js";

const LONDON = { timeZone: "Europe/London", locale: "en-GB" };
const NOW = new Date("2024-12-05T10:00:00Z"); // a Thursday
const at = (iso, extra = {}) => formatTime(iso, { ...LONDON, now: NOW, ...extra });
const day = (iso, extra = {}) => formatDay(iso, { ...LONDON, now: NOW, ...extra });

test("a message's time: today, yesterday, a date, and with the year once it is over a year old", () => {
  assert.equal(at("2024-12-05T14:03:00Z"), "Today 14:03");
  assert.equal(at("2024-12-05T00:00:00Z"), "Today 00:00");
  assert.equal(at("2024-12-04T09:12:00Z"), "Yesterday 09:12");
  assert.equal(at("2024-12-04T23:59:00Z"), "Yesterday 23:59");
  assert.equal(at("2024-12-03T09:12:00Z"), "3 Dec 09:12");
  assert.equal(at("2024-01-10T09:12:00Z"), "10 Jan 09:12"); // within a year: no year
  assert.equal(at("2023-11-03T09:12:00Z"), "3 Nov 2023 09:12");
  assert.equal(at("2024-12-06T09:00:00Z"), "Tomorrow 09:00"); // a snooze's end
});

test("days are the zone's: the same instant is today in London and yesterday in Los Angeles", () => {
  const instant = "2024-12-05T03:00:00Z";
  assert.equal(at(instant), "Today 03:00");
  assert.equal(at(instant, { timeZone: "America/Los_Angeles", locale: "en-GB" }), "Yesterday 19:00");
  assert.equal(at(instant, { timeZone: "Asia/Tokyo", locale: "en-GB" }), "Today 12:00");
  assert.equal(otherDay("2024-12-05T03:00:00Z", "2024-12-05T09:00:00Z", "Europe/London"), false);
  assert.equal(otherDay("2024-12-05T03:00:00Z", "2024-12-05T09:00:00Z", "America/Los_Angeles"), true);
});

test("a day across a clock change is one day", () => {
  // Europe/London went to summer time on 31 March 2024 (a 23-hour day).
  const before = dayNumber(new Date("2024-03-30T23:30:00Z"), "Europe/London");
  const during = dayNumber(new Date("2024-03-31T00:30:00Z"), "Europe/London");
  const after = dayNumber(new Date("2024-04-01T00:30:00Z"), "Europe/London"); // 01:30 BST
  assert.deepEqual([during - before, after - during], [1, 1]);
  const now = new Date("2024-04-01T08:00:00Z");
  assert.equal(formatTime("2024-03-31T23:30:00Z", { ...LONDON, now }), "Today 00:30");
  assert.equal(formatTime("2024-03-31T00:30:00Z", { ...LONDON, now }), "Yesterday 00:30");
});

test("the locale decides the order and the clock", () => {
  const us = { timeZone: "America/New_York", locale: "en-US", now: NOW };
  assert.equal(formatTime("2024-12-03T14:12:00Z", us), "Dec 3 09:12 AM");
  assert.match(formatTime("2024-12-03T14:12:00Z", { timeZone: "Europe/Berlin", locale: "de-DE", now: NOW }), /^3\. Dez\.? 15:12$/);
});

test("day separators: Today, Yesterday, the weekday and date, the year once over a year old", () => {
  assert.equal(day("2024-12-05T08:00:00Z"), "Today");
  assert.equal(day("2024-12-04T08:00:00Z"), "Yesterday");
  assert.equal(day("2024-12-03T08:00:00Z"), "Tuesday 3 December");
  assert.equal(day("2023-06-01T08:00:00Z"), "1 June 2023");
});

test("an unreadable or missing time shows as nothing", () => {
  for (const bad of [null, undefined, "", "not a time"]) {
    assert.equal(at(bad), "");
    assert.equal(day(bad), "");
  }
  assert.equal(otherDay(null, "2024-12-05T08:00:00Z", "UTC"), false);
});

test("a search's words are marked where they start a word, a name's anywhere", () => {
  const text = "Where is my delivery? It was due Tuesday";
  const marked = (ranges, of = text) => ranges.map(([s, e]) => of.slice(s, e));
  assert.deepEqual(marked(wordRanges(text, "deliv TUES")), ["deliv", "Tues"]);
  assert.deepEqual(wordRanges(text, "livery"), []); // not the start of a word: the server finds nothing either
  assert.deepEqual(marked(wordRanges(text, "i")), []); // one letter: a whole word only
  assert.deepEqual(marked(wordRanges("I said I would", "i"), "I said I would"), ["I", "I"]);
  assert.deepEqual(marked(wordRanges(text, "\"due\" (tues)*")), ["due", "Tues"]); // punctuation only separates
  const name = "Maria O'Brien";
  assert.deepEqual(marked(nameRanges(name, "brien mar"), name), ["Mar", "Brien"]);
  assert.deepEqual(wordRanges("İstanbul", "istanbul"), []); // lower-casing changes the length: no wrong marks
});

test("sizes in the locale's units", () => {
  assert.equal(formatSize(512, { locale: "en-GB" }), "512 byte");
  assert.equal(formatSize(12345, { locale: "en-GB" }), "12 kB");
  assert.equal(formatSize(1500000, { locale: "en-GB" }), "1.5 MB");
  assert.equal(formatSize(-1, { locale: "en-GB" }), "0 byte");
});

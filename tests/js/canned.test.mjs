// Canned replies' pure parts (chat/static/js/shortcuts.js): the "/shortcut" at the caret, the replies it
// matches (winners only, prefix first, case-blind), and the variables filled in without stray spaces.
import assert from "node:assert/strict";
import { test } from "node:test";

import { fillVariables, matchingReplies, preview, replyVariables, shortcutAt } from "../../chat/static/js/shortcuts.js";

const reply = (id, shortcut, text = "", extra = {}) => ({ id, scope: "global", team: null, shortcut, text, shadowed: false, ...extra });

test("a shortcut is a / at the start or after a space, up to the caret; the word after the caret is replaced too", () => {
  assert.deepEqual(shortcutAt("/hel", 4), { start: 0, end: 4, query: "hel" });
  assert.deepEqual(shortcutAt("Hi /", 4), { start: 3, end: 4, query: "" });
  assert.deepEqual(shortcutAt("Hi\n/re", 6), { start: 3, end: 6, query: "re" });
  assert.deepEqual(shortcutAt("/hello there", 3), { start: 0, end: 6, query: "he" });
  assert.deepEqual(shortcutAt("x /a_b-9", 8), { start: 2, end: 8, query: "a_b-9" });
});

test("no shortcut inside a word, a URL, after punctuation, past a space or a 33rd character", () => {
  for (const [text, caret] of [["and/or", 6], ["http://x.y/path", 15], ["(/x", 3], ["/hello ", 7], ["/a.b", 4],
    ["", 0], [`/${"a".repeat(33)}`, 34]]) {
    assert.equal(shortcutAt(text, caret), null, JSON.stringify([text, caret]));
  }
  assert.equal(shortcutAt(null, 3), null);
  assert.deepEqual(shortcutAt("/ab", 99), { start: 0, end: 3, query: "ab" }); // a caret past the end is the end
});

test("matching: winners only, case-blind, those that start with the query first, then those that contain it", () => {
  const replies = [reply(1, "thanks"), reply(2, "hello"), reply(3, "Hello", "", { shadowed: true }),
    reply(4, "othello"), reply(5, "Help"), reply(6, "bye"), { id: 7 }, null];
  assert.deepEqual(matchingReplies(replies, "HEL").map((r) => r.id), [2, 5, 4]);
  assert.deepEqual(matchingReplies(replies, "").map((r) => r.shortcut), ["bye", "hello", "Help", "othello", "thanks"]);
  assert.deepEqual(matchingReplies(replies, "zz"), []);
  assert.deepEqual(matchingReplies(undefined, "a"), []);
});

test("variables come from the conversation's contact and the agent; the display name falls back to the name", () => {
  const vars = replyVariables({ contact: { number: "+12125550199", name: "Jane" } }, { name: "alice", display_name: "Alice" });
  assert.deepEqual(vars, { "contact.name": "Jane", "contact.number": "+12125550199", "agent.name": "alice", "agent.display_name": "Alice" });
  assert.deepEqual(replyVariables(null, { name: "bob", display_name: null }),
    { "contact.name": "", "contact.number": "", "agent.name": "bob", "agent.display_name": "bob" });
  const text = "Hello {contact.name}, this is {agent.display_name} ({agent.name}) about {contact.number}.";
  assert.equal(fillVariables(text, vars), "Hello Jane, this is Alice (alice) about +12125550199.");
});

test("an empty variable leaves no double space, no space before punctuation and no lone comma", () => {
  const none = replyVariables({ contact: { number: "+1", name: null } }, { name: "alice" });
  const cases = {
    "Hello {contact.name}, how can I help?": "Hello, how can I help?",
    "Hi {contact.name} welcome back": "Hi welcome back",
    "{contact.name} welcome": "welcome",
    "Dear {contact.name}!": "Dear!",
    "Thanks {contact.name}": "Thanks",
    "Thanks {contact.name}\nBye": "Thanks\nBye",
    "Hi\n{contact.name} there": "Hi\nthere",
    "Dear {contact.name} {contact.name} friend": "Dear friend",
    "Hi{contact.name}!": "Hi!",
    "Shipped today, {contact.name}!": "Shipped today!",
    "Thanks, {contact.name}": "Thanks",
    "Hi, {contact.name}, how are you?": "Hi, how are you?",
  };
  for (const [text, want] of Object.entries(cases)) assert.equal(fillVariables(text, none), want, text);
});

test("other braces and unknown variables stay as written; text is never interpreted", () => {
  const vars = replyVariables({ contact: { number: "+1", name: "$& {agent.name} <b>" } }, { name: "alice" });
  assert.equal(fillVariables("{} { x } {contact.nam} {name}", vars), "{} { x } {contact.nam} {name}");
  assert.equal(fillVariables("Hi {contact.name}", vars), "Hi $& {agent.name} <b>"); // filled once, not re-read
  assert.equal(fillVariables("", vars), "");
});

test("the list shows a one-line start of a reply's text", () => {
  assert.equal(preview("line one\n\nline   two"), "line one line two");
  assert.equal(preview("x".repeat(100), 10), `${"x".repeat(9)}…`);
});

// The keyboard shortcuts (chat/static/js/keys.js): which key does what where, and which keys are left
// to the browser, a screen reader, a <select> or the text being typed.
import assert from "node:assert/strict";
import { test } from "node:test";

import { moveIndex, nextUnread, neighbour, shortcutFor } from "../../chat/static/js/keys.js";

const key = (k, more = {}) => ({ key: k, code: more.code || "", altKey: false, shiftKey: false, ctrlKey: false, metaKey: false, ...more });
const alt = (k, code, more = {}) => key(k, { altKey: true, code, ...more });

test("Alt+arrows, Alt+N, Alt+R and Alt+C work from anywhere, the composer included", () => {
  for (const where of ["text", "other", "list"]) {
    assert.equal(shortcutFor(alt("ArrowDown", "ArrowDown"), where), "next");
    assert.equal(shortcutFor(alt("ArrowUp", "ArrowUp"), where), "previous");
    assert.equal(shortcutFor(alt("n", "KeyN"), where), "nextUnread");
    assert.equal(shortcutFor(alt("r", "KeyR"), where), "reply");
    assert.equal(shortcutFor(alt("c", "KeyC"), where), "close");
  }
  assert.equal(shortcutFor(alt("т", "KeyN"), "other"), "nextUnread", "by the key's place: any layout");
});

test("plain keys act only outside text fields; the list moves with its arrows", () => {
  assert.equal(shortcutFor(key("r"), "other"), "reply");
  assert.equal(shortcutFor(key("?", { shiftKey: true }), "other"), "help");
  assert.equal(shortcutFor(key("r"), "text"), null);
  assert.equal(shortcutFor(key("?", { shiftKey: true }), "text"), null);
  assert.equal(shortcutFor(key("ArrowDown"), "list"), "focusNext");
  assert.equal(shortcutFor(key("End"), "list"), "focusLast");
  assert.equal(shortcutFor(key("ArrowDown"), "other"), null, "arrows scroll the page elsewhere");
  assert.equal(shortcutFor(key("Escape"), "text"), "escape");
});

test("the browser's, the system's and a screen reader's keys are left alone", () => {
  assert.equal(shortcutFor(key("n", { ctrlKey: true, altKey: true, code: "KeyN" }), "other"), null, "AltGr is Ctrl+Alt");
  assert.equal(shortcutFor(key("r", { metaKey: true, code: "KeyR" }), "other"), null);
  assert.equal(shortcutFor(alt("ArrowLeft", "ArrowLeft"), "other"), null, "Alt+← is Back");
  assert.equal(shortcutFor(alt("f", "KeyF"), "other"), null, "Alt+F opens the browser's menu");
  assert.equal(shortcutFor(alt("N", "KeyN", { shiftKey: true }), "other"), null);
  assert.equal(shortcutFor(alt("ArrowDown", "ArrowDown"), "select"), null, "a <select>'s own Alt+↓");
  assert.equal(shortcutFor({ ...alt("n", "KeyN"), isComposing: true }, "text"), null, "an input method is composing");
});

test("on a Mac, Option+letter in a text field types its character; outside one it is the shortcut", () => {
  assert.equal(shortcutFor(alt("Dead", "KeyN"), "text", true), null, "Option+N: the tilde of ñ");
  assert.equal(shortcutFor(alt("ç", "KeyC"), "text", true), null);
  assert.equal(shortcutFor(alt("ç", "KeyC"), "other", true), "close");
  assert.equal(shortcutFor(alt("n", "KeyN"), "text", false), "nextUnread");
});

test("moves stop at the ends; the neighbour of none is the first; the next unread wraps round", () => {
  assert.equal(moveIndex("focusNext", 2, 3), 2);
  assert.equal(moveIndex("focusPrevious", 0, 3), 0);
  assert.equal(moveIndex("focusLast", 0, 3), 2);
  assert.equal(moveIndex("focusNext", 0, 0), -1);
  assert.equal(neighbour([5, 6, 7], null, 1), 5);
  assert.equal(neighbour([5, 6, 7], 6, 1), 7);
  assert.equal(neighbour([5, 6, 7], 7, 1), null);
  assert.equal(neighbour([5, 6, 7], 5, -1), null);
  assert.equal(neighbour([], null, 1), null);
  assert.equal(nextUnread([5, 6, 7], new Set([5, 6]), 6), 5);
  assert.equal(nextUnread([5, 6, 7], new Set([6]), 6), null, "only the open one: none other");
  assert.equal(nextUnread([5, 6, 7], new Set([7]), null), 7);
});

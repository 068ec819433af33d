// The string catalogue (chat/static/js/strings.js): every key the client uses exists, every key in
// it is used, and index.html's own English texts (shown before the script runs) are the catalogue's.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

import { STRINGS, plural, t } from "../../chat/static/js/strings.js";

const STATIC = new URL("../../chat/static/", import.meta.url);
const JS = new URL("js/", STATIC);
const MODULES = readdirSync(JS).filter((f) => f.endsWith(".js") && f !== "strings.js");
const SOURCES = Object.fromEntries(MODULES.map((f) => [f, readFileSync(new URL(f, JS), "utf8")]));
const HTML = readFileSync(new URL("index.html", STATIC), "utf8");
const STATIC_ATTRS = { "data-label": "aria-label", "data-placeholder": "placeholder", "data-title": "title" };
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };

const matches = (text, re) => [...text.matchAll(re)].map((m) => m[1]);
const codeKeys = (fn) => Object.values(SOURCES).flatMap((src) => matches(src, new RegExp(`\\b${fn}\\(\\s*"([^"]+)"`, "g")));
const attributes = (tag) => Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
const decode = (s) => s.replace(/&\w+;|&#\d+;/g, (e) => ENTITIES[e] ?? e);

/** index.html's elements with a catalogue attribute: {tag, attrs, text (up to the next tag), closes}. */
function htmlElements() {
  return [...HTML.matchAll(/<(\w+)(\s[^>]*)>([^<]*)(?=(<\/?\w*|$))/g)]
    .map(([, tag, attrs, text, next]) => ({ tag, attrs: attributes(attrs), text, closes: next === `</${tag}` }))
    .filter((e) => ["data-text", ...Object.keys(STATIC_ATTRS)].some((a) => a in e.attrs));
}

const usedKeys = () => [
  ...codeKeys("t"),
  ...codeKeys("plural").map((k) => `${k}.other`),
  ...htmlElements().flatMap((e) => ["data-text", ...Object.keys(STATIC_ATTRS)].map((a) => e.attrs[a]).filter(Boolean)),
];

test("every key the client's modules and index.html use is in the catalogue", () => {
  const missing = usedKeys().filter((k) => !Object.hasOwn(STRINGS, k));
  assert.deepEqual(missing, []);
  assert.ok(usedKeys().length > 150, "the key search found the keys (it reads t(\"...\"), plural(\"...\") and data-text=\"...\")");
});

test("every key in the catalogue is used (a translator translates nothing dead)", () => {
  const used = new Set(usedKeys());
  const plurals = new Set(codeKeys("plural"));
  const unused = Object.keys(STRINGS).filter((k) => !used.has(k) && !plurals.has(k.slice(0, k.lastIndexOf("."))));
  assert.deepEqual(unused, []);
});

test("keys are literal at every call, so the search above sees them all", () => {
  const dynamic = Object.entries(SOURCES).flatMap(([file, src]) =>
    matches(src, /\b(?:t|plural)\(\s*([^"\s)][^,)]*)/g).map((arg) => `${file}: ${arg}`));
  assert.deepEqual(dynamic, ["dom.js: node.getAttribute(attr"]); // applyStaticTexts: the keys are index.html's
});

test("index.html shows the catalogue's English before the script runs", () => {
  for (const e of htmlElements()) {
    if (e.attrs["data-text"]) {
      assert.ok(e.closes, `<${e.tag} data-text="${e.attrs["data-text"]}"> must hold only its text (the catalogue replaces it)`);
      assert.equal(decode(e.text.trim()), t(e.attrs["data-text"]), `the text of <${e.tag} data-text="${e.attrs["data-text"]}">`);
    }
    for (const [attr, target] of Object.entries(STATIC_ATTRS)) {
      if (e.attrs[attr]) assert.equal(decode(e.attrs[target] ?? ""), t(e.attrs[attr]), `${target} of <${e.tag} ${attr}="${e.attrs[attr]}">`);
    }
  }
});

test("every text element of index.html's body takes its words from the catalogue", () => {
  const body = HTML.slice(HTML.indexOf("<body>"));
  const bare = [...body.matchAll(/<(\w+)(\s[^>]*)?>([^<]*[A-Za-z][^<]*)</g)]
    .filter(([, , attrs = ""]) => !/data-text="/.test(attrs))
    .map(([, tag, , text]) => `<${tag}> ${text.trim()}`);
  assert.deepEqual(bare, []);
  const attrs = [...body.matchAll(/\s(aria-label|placeholder|title)="[^"]*"/g)].length;
  const keyed = [...body.matchAll(/\s(data-label|data-placeholder|data-title)="[^"]*"/g)].length;
  assert.equal(keyed, attrs, "each aria-label, placeholder and title has its data-label, data-placeholder, data-title");
});

test("t fills {variables} and leaves those it is not given; an unknown key shows as itself", () => {
  assert.equal(t("notice.unassigned", { who: "Carol", to: "Bob" }), "The conversation with Carol went to Bob.");
  assert.equal(t("notice.unassigned", { who: "{to}" }), "The conversation with {to} went to {to}.");
  assert.equal(t("no.such.key"), "no.such.key");
});

test("plural picks the form for the count", () => {
  assert.equal(plural("counter.characters", 1), "1 character");
  assert.equal(plural("counter.characters", 0), "0 characters");
  assert.equal(plural("counter.messages", 2), "2 messages");
});

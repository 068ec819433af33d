// The agent client's modules as a whole (chat/static/js): the security rule, the module rules, how
// index.html loads them.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

const STATIC = new URL("../../chat/static/", import.meta.url);
const JS = new URL("js/", STATIC);
const MODULES = readdirSync(JS).filter((f) => f.endsWith(".js"));
const source = (f) => readFileSync(new URL(f, JS), "utf8");
const MAX_LINES = 400;

test("no module puts HTML in the page or runs strings as code", () => {
  const unsafe = /\.(innerHTML|outerHTML)\b|insertAdjacentHTML\s*\(|document\.write|\beval\s*\(|new Function\b|setTimeout\(\s*["'`]/;
  assert.deepEqual(MODULES.filter((f) => unsafe.test(source(f))), []);
});

test("each module is small and states its rules in its header", () => {
  for (const f of MODULES) {
    const text = source(f);
    assert.ok(text.split("\n").length < MAX_LINES, `${f} has ${text.split("\n").length} lines`);
    const header = text.slice(0, text.search(/^(import|export|const|function)\b/m));
    assert.match(header, /Rules:/, `${f}'s header comment`);
  }
});

test("every module but main.js only declares at import: they load without a DOM", async () => {
  for (const f of MODULES.filter((m) => m !== "main.js")) await import(new URL(f, JS));
  assert.equal(typeof globalThis.document, "undefined");
});

test("index.html loads the client as one module graph from main.js, after the Socket.IO client", () => {
  const html = readFileSync(new URL("index.html", STATIC), "utf8");
  const scripts = [...html.matchAll(/<script\b([^>]*)><\/script>/g)].map((m) => m[1].trim());
  assert.deepEqual(scripts, ['src="/static/vendor/socket.io.min.js"', 'type="module" src="/static/js/main.js"']);
});

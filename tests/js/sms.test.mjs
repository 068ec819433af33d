// The composer's segment counter (chat/static/js/sms.js) against fixed cases and against the
// server's own rules (gateway/text.py, the code the sender splits with), run by the project's Python.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { GSM_BASIC_SET, GSM_EXTENSION_SET, smsCount } from "../../chat/static/js/sms.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const PYTHON = process.env.DIDCHAT_PYTHON || `${REPO}.venv/bin/python`;
const SERVER = `
import json, sys
from gateway.text import GSM_ALPHABET, GSM_EXTENSION, count_segments, count_units
texts = json.load(sys.stdin)
counts = [(encoding, count_units(t), segments) for t in texts for encoding, segments in [count_segments(t)]]
json.dump({"alphabet": sorted(GSM_ALPHABET), "extension": sorted(GSM_EXTENSION), "counts": counts}, sys.stdout)
`;

const a = (n) => "a".repeat(n);
const ya = (n) => "я".repeat(n);
const CASES = [
  // [text, encoding, units, segments, why]
  ["", "GSM-7", 0, 0, "nothing to send"],
  ["hello", "GSM-7", 5, 1, "plain GSM-7"],
  [a(160), "GSM-7", 160, 1, "a full single GSM-7 message"],
  [a(161), "GSM-7", 161, 2, "one over: two parts of up to 153"],
  [a(306), "GSM-7", 306, 2, "two full parts"],
  [a(307), "GSM-7", 307, 3, "one over two parts"],
  ["€".repeat(80), "GSM-7", 160, 1, "an extension character takes 2 septets"],
  ["{[~]}|^\\\f", "GSM-7", 18, 1, "the whole extension table"],
  [a(152) + "€" + a(152), "GSM-7", 306, 3, "an escape pair is never split: the € starts part 2"],
  ["price 5 ç", "UCS-2", 9, 1, "ç is not GSM (only Ç is)"],
  [ya(70), "UCS-2", 70, 1, "a full single UCS-2 message"],
  [ya(71), "UCS-2", 71, 2, "one over: two parts of up to 67"],
  [ya(134), "UCS-2", 134, 2, "two full UCS-2 parts"],
  [ya(135), "UCS-2", 135, 3, "one over two UCS-2 parts"],
  ["hello 😀", "UCS-2", 8, 1, "an emoji makes it UCS-2 and takes 2 units"],
  ["😀".repeat(35), "UCS-2", 70, 1, "35 surrogate pairs fill a single message"],
  ["😀".repeat(36), "UCS-2", 72, 2, "33 surrogate pairs a part (a 34th would make 68 units)"],
  [ya(66) + "😀" + ya(66), "UCS-2", 134, 3, "a surrogate pair is never split: it starts part 2"],
  ["€ and я", "UCS-2", 7, 1, "in UCS-2 the € is one unit like any BMP character"],
];

for (const [text, encoding, units, segments, why] of CASES) {
  test(`counter: ${why}`, () => {
    assert.deepEqual(smsCount(text), { encoding, units, segments });
  });
}

function server(texts) {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run \`make test\` (or set DIDCHAT_PYTHON)`);
  const run = spawnSync(PYTHON, ["-c", SERVER], { cwd: REPO, input: JSON.stringify(texts), encoding: "utf8" });
  assert.equal(run.status, 0, `gateway.text failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

test("the counter and the server's gateway/text.py agree on every case and on the alphabet", () => {
  const texts = [...CASES.map(([text]) => text).filter(Boolean),
    "Your order #1234 is ready @ 5pm; £3.50 — thanks!", "Grüße aus Köln", "Ελλάδα ΔΦΓ", "tab\there",
    a(100) + "😀".repeat(40), "\r\n" + a(158), "~".repeat(77), "~".repeat(76) + "a"];
  const answer = server(texts);
  assert.deepEqual(new Set(answer.alphabet), new Set([...GSM_BASIC_SET, ...GSM_EXTENSION_SET]));
  assert.deepEqual(new Set(answer.extension), GSM_EXTENSION_SET);
  texts.forEach((text, i) => {
    const { encoding, units, segments } = smsCount(text);
    assert.deepEqual([encoding, units, segments], answer.counts[i], `for ${JSON.stringify(text)}`);
  });
});

// SMS length rules (GSM 03.38 / UCS-2) for the composer's counter: the same rules as the server's
// gateway/text.py, so the counter shows the number of parts the sender will send.
//
// Rules:
// - GSM-7 when every character is in the GSM 03.38 basic alphabet or its extension table, else UCS-2.
// - GSM-7: 160 septets single, 153 a part; an extension character takes 2 (escape + code).
// - UCS-2: 70 UTF-16 code units single, 67 a part; a character outside the BMP (an emoji) takes 2.
// - A character's units never straddle two parts (no split escape or surrogate pair).
// - Pure: no DOM, no strings shown to the user (the counter's words are in strings.js).

const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION = "\f^{}\\[~]|€";
export const GSM_BASIC_SET = new Set(GSM_BASIC);
export const GSM_EXTENSION_SET = new Set(GSM_EXTENSION);

// encoding -> [units in a single message, units per part of a long message]
export const LIMITS = { "GSM-7": [160, 153], "UCS-2": [70, 67] };

/** The encoding a text needs: GSM-7 when the GSM alphabet covers it, else UCS-2. */
export function encodingFor(text) {
  for (const ch of text) {
    if (!GSM_BASIC_SET.has(ch) && !GSM_EXTENSION_SET.has(ch)) return "UCS-2";
  }
  return "GSM-7";
}

/** The units of each character (a code point): septets in GSM-7, UTF-16 code units in UCS-2. */
function widths(text, encoding) {
  const gsm = encoding === "GSM-7";
  return Array.from(text, (ch) => (gsm ? (GSM_EXTENSION_SET.has(ch) ? 2 : 1) : ch.length));
}

/** How many parts whole characters of these widths fill, packed greedily as the sender cuts them. */
function packedParts(units, part) {
  let parts = 1;
  let used = 0;
  for (const w of units) {
    if (used + w > part) { parts += 1; used = 0; }
    used += w;
  }
  return parts;
}

/** Count an SMS text: {encoding, units, segments}; an empty text is 0 segments (nothing to send). */
export function smsCount(text) {
  const encoding = encodingFor(text);
  const each = widths(text, encoding);
  const units = each.reduce((a, b) => a + b, 0);
  const [single, part] = LIMITS[encoding];
  let segments;
  if (units === 0) segments = 0;
  else if (units <= single) segments = 1;
  else segments = packedParts(each, part);
  return { encoding, units, segments };
}

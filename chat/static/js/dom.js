// DOM helpers: look-ups, element building, the banner, the views, the page's static texts.
//
// Rules:
// - SECURITY: everything that comes from the server (message text, contact names, numbers, errors)
//   is put in the page with textContent / createTextNode only, through el() here. Never innerHTML,
//   insertAdjacentHTML or outerHTML, anywhere in the client (tests/js/client.test.mjs checks).
// - index.html keeps its English texts, so the page reads right before this script runs;
//   applyStaticTexts() then puts the catalogue's in (data-text, data-label, data-placeholder, data-title).

import { LANG, t } from "./strings.js";

export const $ = (id) => document.getElementById(id);

/** Build an element: attrs (className, text for textContent, else attributes; null/false left out), children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "className") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else node.setAttribute(k, String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Show an error in the banner. */
export function showError(message) {
  $("error-text").textContent = String(message || t("error.generic"));
  $("error-banner").dataset.kind = "error";
  $("error-banner").hidden = false;
}

/** Show news that is not an error in the banner (a transfer done, a default changed). */
export function showNotice(message) {
  showError(message);
  $("error-banner").dataset.kind = "notice";
}

export function clearError() {
  $("error-text").textContent = "";
  $("error-banner").hidden = true;
}

/** Show one of the page's views: "login", "loading" or "app". */
export function showView(name) {
  $("login-view").hidden = name !== "login";
  $("loading-view").hidden = name !== "loading";
  $("app-view").hidden = name !== "app";
}

// data-* attribute naming a catalogue key -> how the element takes the text.
const STATIC_TEXTS = {
  "data-text": (node, text) => { node.textContent = text; },
  "data-label": (node, text) => node.setAttribute("aria-label", text),
  "data-placeholder": (node, text) => node.setAttribute("placeholder", text),
  "data-title": (node, text) => node.setAttribute("title", text),
};

/** Fill index.html's static texts from the catalogue (the HTML holds the English ones for before this runs). */
export function applyStaticTexts(root = document) {
  document.documentElement.lang = LANG;
  for (const [attr, put] of Object.entries(STATIC_TEXTS)) {
    for (const node of root.querySelectorAll(`[${attr}]`)) put(node, t(node.getAttribute(attr)));
  }
}

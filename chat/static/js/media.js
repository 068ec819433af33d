// Attachments in the transcript, inbound and outbound: pictures inline, audio and video with the browser's
// player, anything else as a download link with its name and size.
//
// Rules:
// - A Message's media `url` is didchat's (/api/media/MESSAGE/N) and needs the agent's access token: each
//   is fetched with `Authorization: Bearer` and shown from a blob: URL (the page's CSP allows blob: for
//   img-src and media-src, nothing remote). An <img src> could not send the token.
// - Each attachment is fetched once per opening of its conversation (state.media, by url); the blob: URLs
//   are revoked as soon as another conversation opens (or none), so a long day holds only the open one's.
// - A fetch that fails says why in plain words (413 too large, 404 gone, 502/504 the provider's fault).
// - Names come from the server or the file: textContent and attributes only (dom.js), never HTML; an SVG
//   is never shown inline (the server sends it as a download).

import { refreshToken } from "./auth.js";
import { el } from "./dom.js";
import { formatSize } from "./format.js";
import { state } from "./state.js";
import { t } from "./strings.js";
import { renderMonitor } from "./supervisor.js";
import { renderTranscript, stickToBottom } from "./transcript.js";

const INLINE = /^(image\/(png|jpeg|gif|webp|bmp|avif)|audio\/|video\/)/i;
const EXTENSIONS = { "application/pdf": "pdf", "text/vcard": "vcf", "text/x-vcard": "vcf", "text/plain": "txt" };

/** What kind of attachment a type is: "image", "audio", "video" (shown in the page) or "file" (a link). */
export function mediaKind(contentType) {
  const type = String(contentType || "").split(";")[0].trim().toLowerCase();
  if (!INLINE.test(type)) return "file";
  return type.split("/")[0];
}

/** The name a download takes: the file's own, else "attachment" with the type's extension. */
function fileName(item) {
  if (item.filename) return String(item.filename);
  const type = String(item.content_type || "").split(";")[0].trim().toLowerCase();
  const ext = EXTENSIONS[type] || (type.split("/")[1] || "bin").replace(/[^a-z0-9]/g, "").slice(0, 8) || "bin";
  return `${t("media.default_name")}.${ext}`;
}

/** How the agent calls an attachment in a sentence: its name, else "Picture", "Audio", "Video", "File". */
function what(item, kind) {
  if (item.filename) return String(item.filename);
  return { image: t("media.picture"), audio: t("media.audio"), video: t("media.video") }[kind] || t("media.file");
}

/** Plain words for a fetch that failed, by the status didchat answered. */
function failure(status, name) {
  if (status === 413) return t("media.too_large", { what: name });
  if (status === 404) return t("media.gone", { what: name });
  if (status === 502 || status === 504) return t("media.provider", { what: name });
  return t("media.failed", { what: name, status });
}

function get(url) {
  return fetch(url, { headers: { Authorization: `Bearer ${state.token}` }, credentials: "same-origin" });
}

/** Fetch one attachment into a blob: URL, then show the transcript again (if its conversation is still open). */
async function load(entry, url, name) {
  try {
    let res = await get(url);
    if (res.status === 401 && (await refreshToken())) res = await get(url); // the token expired meanwhile
    if (!res.ok) {
      entry.status = "failed";
      entry.error = failure(res.status, name);
    } else {
      const blob = await res.blob();
      if (entry.released) return;
      entry.blobUrl = URL.createObjectURL(blob);
      entry.size = blob.size;
      entry.status = "ready";
    }
  } catch {
    entry.status = "failed";
    entry.error = t("media.unreachable", { what: name });
  }
  if (entry.released) return;
  if (state.board && state.monitor) renderMonitor(); // a supervisor's board shows it
  else if (state.selected === entry.view) renderTranscript();
}

/** The attachment's entry, its fetch started the first time it is shown in this opening of the conversation. */
function entryFor(item, name) {
  const url = String(item.url || "");
  let entry = state.media.get(url);
  if (!entry) {
    entry = { view: state.selected, status: "loading", blobUrl: null, size: 0, error: null, released: false };
    state.media.set(url, entry);
    if (url.startsWith("/api/media/")) load(entry, url, name);
    else { entry.status = "failed"; entry.error = failure(404, name); } // never fetch what is not didchat's
  }
  return entry;
}

/** Revoke the blob: URLs of every conversation but `view` (the one open now; null: none). */
export function releaseMedia(view) {
  for (const [url, entry] of state.media) {
    if (entry.view === view) continue;
    entry.released = true;
    if (entry.blobUrl) URL.revokeObjectURL(entry.blobUrl);
    state.media.delete(url);
  }
}

function shown(kind, entry, item, name) {
  if (kind === "image") {
    const img = el("img", { className: "media-image", src: entry.blobUrl, alt: item.filename || t("media.picture"),
                            "data-testid": "media-image" });
    img.addEventListener("load", stickToBottom); // its height is known only now
    return img;
  }
  if (kind === "audio" || kind === "video") {
    return el(kind, { className: `media-${kind}`, src: entry.blobUrl, controls: "", preload: "metadata",
                      "aria-label": name, "data-testid": `media-${kind}` });
  }
  return el("span", { className: "media-file" },
    el("a", { href: entry.blobUrl, download: fileName(item), "data-testid": "media-link", dir: "auto", text: fileName(item) }),
    " ", el("span", { className: "muted", "data-testid": "media-size", text: t("media.size", { size: formatSize(entry.size) }) }));
}

function mediaItem(item) {
  const kind = mediaKind(item.content_type);
  const name = what(item, kind);
  const entry = entryFor(item, name);
  const body = entry.status === "ready" ? shown(kind, entry, item, name)
    : entry.status === "failed" ? el("span", { className: "media-error", "data-testid": "media-error", text: entry.error })
      : el("span", { className: "media-loading muted", "data-testid": "media-loading", text: t("media.loading", { what: name }) });
  return el("div", { className: `media-item media-${kind}-item`, "data-kind": kind, "data-status": entry.status }, body);
}

/** A message's attachments as they show in its bubble (null when it has none). */
export function renderMedia(m) {
  const items = Array.isArray(m.media) ? m.media.filter((item) => item && typeof item === "object") : [];
  if (!items.length) return null;
  return el("div", { className: "media", "data-testid": "media" }, ...items.map(mediaItem));
}

// Signing in and staying signed in, over HTTP: login, the refresh of the access token, logout.
//
// Rules:
// - The access token lives in memory only; a reload gets a new one from the httpOnly refresh cookie.
// - The refresh is scheduled by the server's clock (its Date header), so a skewed client clock is harmless.
// - One refresh at a time across this browser's tabs (they share the refresh cookie, and the server
//   ends a session whose refresh token is presented twice).
// - Network trouble keeps the session and tries again; only the server's 401/403 ends it.

import { $, clearError, showError, showView } from "./dom.js";
import { dropSavedSends } from "./outbox.js";
import { renderAll, renderUser } from "./render.js";
import { closeSocket, connectSocket, sendAuth } from "./socket.js";
import { resetData, state } from "./state.js";
import { t } from "./strings.js";

const REFRESH_RETRY_MS = 10000;
const RESTORE_RETRY_MAX_MS = 3000; // a reload while the server is down: how often it is tried again, at most

/** POST a JSON body (or none); {res, data} with data null when the answer is not JSON. */
export async function postJSON(url, body) {
  const res = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { res, data };
}

/** Seconds until the token should be refreshed: before it expires, by the server's clock. */
function refreshDelay(res, expiresAt) {
  let serverNow = Date.now() / 1000;
  const dateHeader = res.headers.get("Date");
  if (dateHeader && !Number.isNaN(Date.parse(dateHeader))) serverNow = Date.parse(dateHeader) / 1000;
  let lifetime = expiresAt ? expiresAt - serverNow : 15 * 60;
  if (!(lifetime > 0)) lifetime = 60;
  return Math.max(5, Math.min(lifetime - 60, lifetime * 0.8));
}

/** Keep a token the server gave (login, refresh) and schedule its refresh. */
export function acceptToken(res, data) {
  state.token = data.token;
  state.expiresAt = Number(data.expires_at) || null;
  state.user = data.user || state.user;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { refreshToken().catch(() => {}); }, refreshDelay(res, state.expiresAt) * 1000);
  renderUser();
}

/** POST /api/refresh, one tab at a time: the server ends the session when one refresh token is
 *  presented twice, and the tabs of this browser share the cookie that holds it. */
export function postRefresh() {
  if (navigator.locks && navigator.locks.request) {
    return navigator.locks.request("didchat-refresh", () => postJSON("/api/refresh"));
  }
  return postJSON("/api/refresh");
}

let refreshing = null;
/** POST /api/refresh; resolves true with a new token, false when the session is gone. */
export function refreshToken() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const { res, data } = await postRefresh();
      if (res.ok && data && data.token) {
        acceptToken(res, data);
        await sendAuth();
        return true;
      }
      if (res.status === 401 || res.status === 403) {
        if (state.token) endSession(t("session.ended"));
        return false;
      }
      throw new Error(t("error.refresh_failed", { status: res.status }));
    } catch (err) {
      // Network trouble: keep the session, try again shortly.
      if (state.token) {
        clearTimeout(state.refreshTimer);
        state.refreshTimer = setTimeout(() => { refreshToken().catch(() => {}); }, REFRESH_RETRY_MS);
      }
      throw err;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Sign in with the login form's fields. */
export async function login(username, password) {
  clearError();
  $("login-submit").disabled = true;
  try {
    const { res, data } = await postJSON("/api/login", { username, password });
    if (res.ok && data && data.token) {
      $("login-password").value = "";
      acceptToken(res, data);
      startSession();
    } else {
      showError((data && data.error) || (res.status === 401 ? t("login.wrong") : t("login.failed", { status: res.status })));
    }
  } catch (err) {
    showError(t("login.unreachable", { error: err.message }));
  } finally {
    $("login-submit").disabled = false;
  }
}

export async function logout() {
  dropSavedSends(); // an explicit logout: this user's queued sends go with it (a session that ends keeps them)
  endSession(null); // first: this tab's own `session_ended` needs no message
  try { await postJSON("/api/logout"); } catch { /* left anyway; the session lapses */ }
}

/** Signed in: show the client and link to the server. */
export function startSession() {
  showView("app");
  renderAll();
  connectSocket();
}

/** Signed out (or the session ended): forget everything, show the login form with `message`. */
export function endSession(message) {
  clearTimeout(state.refreshTimer);
  state.reopen = null;
  if (location.hash) history.replaceState(null, "", location.pathname);
  state.token = null;
  state.expiresAt = null;
  state.user = null;
  closeSocket();
  state.connected = false;
  resetData();
  $("reply-text").value = "";
  $("new-to").value = "";
  renderAll();
  showView("login");
  if (message) showError(message); else clearError();
  $("login-username").focus();
}

/** A reload keeps no token in memory: try the httpOnly refresh cookie. Whether a session was restored.
 *  The server unreachable (or answering 5xx: restarting behind a proxy), it waits for it, saying so:
 *  the session, and the sends queued in this browser, are there once it is back. */
export async function restoreSession() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const { res, data } = await postRefresh(); // one tab at a time, as every refresh
      if (res.ok && data && data.token) {
        acceptToken(res, data);
        startSession();
        return true;
      }
      if (res.status < 500) return false; // no session: the login form
    } catch { /* unreachable: wait for it */ }
    $("loading-text").textContent = t("loading.waiting");
    await new Promise((resolve) => { setTimeout(resolve, Math.min(RESTORE_RETRY_MAX_MS, 500 * 2 ** attempt)); });
  }
}

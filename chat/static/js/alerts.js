// Alerts for a customer's message the agent is not looking at (another conversation, or this tab
// hidden): a desktop notification and a chime, each switched on per browser (localStorage).
//
// Rules:
// - Notification permission is asked from the Alerts button, never on load.
// - The chime's AudioContext is made on the click that turns the sound on (browsers allow sound
//   only after a user gesture); one chime per burst of messages.
// - A notification shows the contact and the first 200 characters, never more.

import { $, showError } from "./dom.js";
import { contactLabel } from "./format.js";
import { selectConversation } from "./nav.js";
import { state } from "./state.js";
import { t } from "./strings.js";

const ALERTS_KEY = "didchat.alerts";
const SOUND_KEY = "didchat.sound";
const PREVIEW_CHARS = 200;

const canNotify = () => "Notification" in window && window.Notification.permission === "granted";

/** Read the switches this browser keeps. */
export function loadAlerts() {
  state.alerts = canNotify() && localStorage.getItem(ALERTS_KEY) === "on";
  state.sound = localStorage.getItem(SOUND_KEY) === "on";
  renderAlerts();
}

function renderAlerts() {
  $("alerts").setAttribute("aria-pressed", state.alerts ? "true" : "false");
  $("alert-sound").setAttribute("aria-pressed", state.sound ? "true" : "false");
}

export async function toggleAlerts() {
  if (!state.alerts) {
    if (!("Notification" in window)) { showError(t("alerts.unsupported")); return; }
    let permission = window.Notification.permission;
    if (permission === "default") permission = await window.Notification.requestPermission();
    if (permission !== "granted") { showError(t("alerts.blocked")); return; }
  }
  state.alerts = !state.alerts;
  localStorage.setItem(ALERTS_KEY, state.alerts ? "on" : "off");
  renderAlerts();
}

export function toggleSound() {
  state.sound = !state.sound;
  localStorage.setItem(SOUND_KEY, state.sound ? "on" : "off");
  if (state.sound && !state.audio && window.AudioContext) state.audio = new window.AudioContext(); // on a click: allowed to play
  renderAlerts();
}

function chime() {
  const button = $("alert-sound");
  button.dataset.played = String(Number(button.dataset.played || 0) + 1);
  const audio = state.audio;
  if (!audio) return;
  const tone = audio.createOscillator();
  const gain = audio.createGain();
  tone.frequency.value = 880;
  gain.gain.setValueAtTime(0.15, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
  tone.connect(gain).connect(audio.destination);
  tone.start();
  tone.stop(audio.currentTime + 0.25);
}

function notify(msg) {
  const { name, national } = contactLabel(state.conversations.get(msg.conversation_id));
  const note = new window.Notification(name || national || t("alerts.new_message"), {
    body: (msg.text || "").slice(0, PREVIEW_CHARS), tag: `didchat-${msg.conversation_id}`,
  });
  note.onclick = () => { window.focus(); selectConversation(msg.conversation_id); note.close(); };
}

/** Alert for the new messages of a push (those the agent is looking at need none). */
export function alertFor(fresh) {
  let sounded = false;
  for (const msg of fresh) {
    if (msg.direction !== "in") continue;
    if (!document.hidden && state.selected === msg.conversation_id) continue; // she is looking at it
    if (state.alerts && canNotify()) notify(msg);
    if (state.sound && !sounded) { chime(); sounded = true; }
  }
}

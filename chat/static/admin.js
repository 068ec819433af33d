// didchat administration: users, teams, numbers, callback numbers, connectors and the audit log,
// over the admin API (/api/v1, README "Administering didchat"). Admins change; supervisors look.
// Under the same CSP as the agent client: no inline script or style, text set as text, never HTML.

const $ = (id) => document.getElementById(id);
const state = { token: null, user: null, tab: "users", cache: {}, timer: null, editing: null };

const DISTRIBUTIONS = ["least_busy", "round_robin", "offer_all"];
const CONNECTOR_TYPES = [];  // filled from the OpenAPI document: every provider didchat speaks, and smpp
const COMMON = new Set(["type", "name", "numbers"]);
const SECRET_HINT = "write-only: never shown again; or ${NAME} of an environment variable every node has";
const KEPT_HINT = "left empty, the stored secret is kept";
const RESOURCES = {
  users: {
    title: "Users", path: "/api/v1/users", key: "name",
    columns: [["name", "Name"], ["display_name", "Display name"], ["role", "Role"], ["teams", "Teams"], ["disabled", "State"]],
    fields: [
      { name: "name", label: "Name", required: true, hint: "lower case letters, digits, . _ -" },
      { name: "display_name", label: "Display name" },
      { name: "role", label: "Role", type: "select", options: ["agent", "supervisor", "admin"] },
      { name: "password", label: "Password", type: "password", required: true, hint: "8 characters or more" },
      { name: "teams", label: "Teams", type: "list", hint: "comma-separated" },
    ],
    actions: (row) => [[row.disabled ? "Enable" : "Disable", () => change("users", row.name, { disabled: !row.disabled })],
                       ["Delete", () => remove("users", row.name)]],
  },
  teams: {
    title: "Teams", path: "/api/v1/teams", key: "name",
    columns: [["name", "Name"], ["members", "Members"], ["distribution", "Distribution"], ["capacity", "Capacity"]],
    fields: [
      { name: "name", label: "Name", required: true },
      { name: "members", label: "Members", type: "list", hint: "user names, comma-separated" },
      { name: "distribution", label: "Distribution", type: "select", options: DISTRIBUTIONS },
      { name: "capacity", label: "Capacity", type: "number", hint: "most open conversations a member takes" },
    ],
    actions: (row) => [["Delete", () => remove("teams", row.name)]],
  },
  numbers: {
    title: "Numbers", path: "/api/v1/numbers", key: "number",
    columns: [["number", "Number"], ["user", "Owner"], ["team", "Team"], ["connector", "Connector"], ["scenario", "Scenario"],
              ["retention_days", "Kept (days)"]],
    fields: [
      { name: "number", label: "Number", required: true, hint: "+ and the country code, e.g. +14155550177" },
      { name: "user", label: "Owner", type: "select", from: "users", optional: true },
      { name: "team", label: "Team", type: "select", from: "teams", optional: true },
      { name: "connector", label: "Connector", type: "select", from: "connectors", optional: true },
      { name: "scenario", label: "Scenario", hint: "default, or a file in the scenarios folder" },
      { name: "retention_days", label: "Keep messages (days)", type: "number" },
    ],
    actions: (row) => [["Delete", () => remove("numbers", row.number)]],
  },
  "callback-numbers": {
    title: "Callback numbers", path: "/api/v1/callback-numbers", key: "name",
    columns: [["name", "Name"], ["number", "Number"], ["display_name", "Shown as"], ["language", "Language"], ["category", "Category"]],
    fields: [
      { name: "name", label: "Name", required: true },
      { name: "number", label: "Number", required: true },
      { name: "display_name", label: "Shown as" },
      { name: "language", label: "Language", hint: "e.g. en, fr-CA" },
      { name: "category", label: "Category", hint: "e.g. sales" },
    ],
    actions: (row) => [["Delete", () => remove("callback-numbers", row.name)]],
  },
  scenarios: {
    title: "Scenario files", path: "/api/v1/scenarios", key: "name", editor: true,
    columns: [["name", "Name"], ["numbers", "Run by"], ["problems", "Problems"]],
    actions: (row) => [["Edit", () => edit(row.name)], ["Delete", () => remove("scenarios", row.name)]],
  },
  connectors: {
    title: "Connectors", path: "/api/v1/connectors", key: "name", refresh: 5000,
    columns: [["name", "Name"], ["type", "Type"], ["state", "State"], ["serves", "Numbers"]],
    fields: [
      { name: "type", label: "Type", type: "select", options: CONNECTOR_TYPES, required: true, fixed: true },
      { name: "name", label: "Name", required: true, fixed: true, hint: "lower case letters, digits, . _ -" },
      { name: "numbers", label: "Numbers", type: "list", hint: "its own numbers, + and the country code, comma-separated" },
      // and each type's own fields, read from the API's OpenAPI document (connectorFields)
    ],
    actions: (row) => [["Edit", () => editItem("connectors", row)], ["Delete", () => remove("connectors", row.name)]],
  },
  audit: {
    title: "Audit log", path: "/api/v1/audit?limit=200", key: "id",
    columns: [["at", "When"], ["actor", "Who"], ["action", "What"], ["target", "On"], ["address", "From"], ["details", "Details"]],
  },
};

// -- HTTP --------------------------------------------------------------------------------------

async function call(method, path, body, retried = false) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, credentials: "same-origin",
                                  body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && !retried && await refresh()) return call(method, path, body, true);
  let data = null;
  if (res.status !== 204) { try { data = await res.json(); } catch { data = null; } }
  return { res, data };
}

async function refresh() {
  const res = await fetch("/api/refresh", { method: "POST", credentials: "same-origin" });
  if (!res.ok) return false;
  const data = await res.json();
  state.token = data.token;
  state.user = data.user;
  return true;
}

// -- rendering ---------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function shownProblems(list) {
  return list.map((p) => `line ${p.line}: ${p.field ? `${p.field}: ` : ""}${p.detail}`);
}

function shown(value, column) {
  if (column === "problems") return value && value.length ? shownProblems(value).join("; ") : "none: it runs";
  if (value === null || value === undefined || value === "") return "—";
  if (value === true) return "disabled";
  if (value === false) return "active";
  if (Array.isArray(value)) return value.join(", ") || "—";
  if (typeof value === "object") return JSON.stringify(value).slice(0, 300);
  return String(value);
}

const canWrite = () => state.user && state.user.role === "admin";

function status(text) { $("admin-status").textContent = text; }

function showError(text) {
  $("error-text").textContent = text;
  $("error-banner").hidden = false;
}

async function options(from) {
  if (!state.cache[from]) {
    const { res, data } = await call("GET", `${RESOURCES[from].path}${RESOURCES[from].path.includes("?") ? "&" : "?"}limit=500`);
    state.cache[from] = res.ok ? data.items.map((item) => item[RESOURCES[from].key]) : [];
  }
  return state.cache[from];
}

function renderEditor(form) {
  form.append(el("h2", { text: "Edit or add a scenario file" }));
  const name = el("div", { class: "admin-field" }, el("label", { for: "field-name", text: "Name (required)" }),
    el("input", { id: "field-name", name: "name", "data-testid": "field-name", required: true, autocomplete: "off",
                  "aria-describedby": "field-name-error" }),
    el("span", { id: "field-name-error", class: "field-error", "data-testid": "field-name-error" }));
  const text = el("div", { class: "admin-field admin-editor" }, el("label", { for: "field-text", text: "YAML (docs/scenarios.md)" }),
    el("textarea", { id: "field-text", name: "text", rows: "14", spellcheck: "false", "data-testid": "field-text",
                     "aria-describedby": "field-text-error" }),
    el("ul", { id: "field-text-error", class: "field-error admin-problems", "data-testid": "field-text-error" }));
  const check = el("button", { type: "button", class: "ghost", "data-testid": "admin-check", text: "Check" });
  check.addEventListener("click", checkScenario);
  form.append(name, text, check, el("button", { type: "submit", class: "primary", "data-testid": "admin-submit", text: "Save" }));
  form.hidden = false;
}

function showProblems(list) {
  const slot = $("field-text-error");
  slot.replaceChildren(...shownProblems(list).map((line) => el("li", { text: line })));
  if (list.length) $("field-text").setAttribute("aria-invalid", "true");
  else $("field-text").removeAttribute("aria-invalid");
}

async function checkScenario() {
  const name = $("field-name").value.trim();
  const { res, data } = await call("POST", `/api/v1/scenarios/validate?name=${encodeURIComponent(name || "scenario")}`,
                                   { text: $("field-text").value });
  if (!res.ok) { showError((data && data.detail) || `Not checked (${res.status})`); return; }
  showProblems(data.problems);
  status(data.ok ? "No problems: it can be saved" : `${data.problems.length} problem(s)`);
}

async function saveScenario() {
  const name = $("field-name").value.trim();
  const { res, data } = await call("PUT", `/api/v1/scenarios/${encodeURIComponent(name)}`, { text: $("field-text").value });
  if (res.ok) {
    showProblems([]);
    await renderTable(RESOURCES.scenarios);
    status(`Saved ${name}.yaml: every node reloads it`);
  } else if (res.status === 422 && data && data.errors) {
    showProblems(data.errors.map((e) => ({ line: e.line || 0, field: "", detail: e.detail })));
    status(`${name}.yaml was not saved`);
  } else {
    $("field-name-error").textContent = (data && data.detail) || `Not saved (${res.status})`;
  }
}

async function edit(name) {
  const { res, data } = await call("GET", `/api/v1/scenarios/${encodeURIComponent(name)}`);
  if (!res.ok) { showError((data && data.detail) || `Cannot read ${name}`); return; }
  $("field-name").value = data.name;
  $("field-text").value = data.text;
  showProblems(data.problems);
  $("field-text").focus();
}

async function renderForm(spec) {
  const form = $("admin-form");
  form.replaceChildren();
  if (spec.editor && canWrite()) { renderEditor(form); return; }
  if (!spec.fields || !canWrite()) { form.hidden = true; return; }
  form.append(el("h2", { text: state.editing ? `Change ${state.editing.key}` : `Add to ${spec.title.toLowerCase()}` }));
  for (const f of spec.fields) {
    const id = `field-${f.name}`;
    const wrap = el("div", { class: "admin-field", "data-types": f.types ? f.types.join(" ") : null });
    wrap.append(el("label", { for: id, text: f.label + (f.required ? " (required)" : "") }));
    let input;
    if (f.type === "select") {
      input = el("select", { id, name: f.name, "data-testid": id });
      const choices = f.from ? await options(f.from) : f.options;
      if (f.optional || f.from) input.append(el("option", { value: "", text: "—" }));
      for (const c of choices) input.append(el("option", { value: c, text: c }));
      if (f.default !== undefined && f.default !== null) input.value = String(f.default);
    } else {
      input = el("input", { id, name: f.name, "data-testid": id, required: f.required,
                            type: f.type === "password" ? "password" : f.type === "number" ? "number" : "text",
                            autocomplete: f.type === "password" ? "new-password" : "off" });
    }
    input.setAttribute("aria-describedby", `${id}-error${f.hint ? ` ${id}-hint` : ""}`);
    const editing = state.editing && state.editing.values;
    if (editing) {
      const value = editing[f.name];
      if (f.type === "password") input.placeholder = KEPT_HINT;
      else if (Array.isArray(value)) input.value = value.join(", ");
      else if (value !== undefined && value !== null) input.value = String(value);
      if (f.fixed) input.disabled = true;
    }
    wrap.append(input);
    if (f.hint) wrap.append(el("span", { id: `${id}-hint`, class: "muted admin-hint", text: f.hint }));
    wrap.append(el("span", { id: `${id}-error`, class: "field-error", "data-testid": `${id}-error` }));
    form.append(wrap);
  }
  const typeField = $("field-type");
  if (typeField && spec.fields.some((f) => f.types)) {
    typeField.addEventListener("change", () => showTypeFields(form, typeField.value));
    showTypeFields(form, typeField.value);
  }
  form.append(el("button", { type: "submit", class: "primary", "data-testid": "admin-submit",
                             text: state.editing ? "Save" : "Add" }));
  if (state.editing) {
    const cancel = el("button", { type: "button", class: "ghost", "data-testid": "admin-cancel", text: "Cancel" });
    cancel.addEventListener("click", () => { state.editing = null; renderForm(spec); });
    form.append(cancel);
  }
  form.hidden = false;
}

function showTypeFields(form, type) {
  for (const wrap of form.querySelectorAll(".admin-field[data-types]")) {
    wrap.hidden = !wrap.dataset.types.split(" ").includes(type);
  }
}

async function editItem(tab, row) {
  state.editing = { key: row[RESOURCES[tab].key], values: row };
  await renderForm(RESOURCES[tab]);
  status(`Changing ${state.editing.key}: the fields left as they are stay`);
}

function formBody(spec) {
  const body = {};
  for (const f of spec.fields) {
    const input = $(`field-${f.name}`);
    if (input.disabled || input.closest(".admin-field").hidden) continue;
    const raw = input.value.trim();
    if (raw === "") continue;
    if (f.type === "list") body[f.name] = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else if (f.type === "number") body[f.name] = Number(raw);
    else body[f.name] = raw;
  }
  return body;
}

function showFieldErrors(spec, problem) {
  for (const f of spec.fields || []) {
    const slot = $(`field-${f.name}-error`);
    if (slot) slot.textContent = "";
    const input = $(`field-${f.name}`);
    if (input) input.removeAttribute("aria-invalid");
  }
  let placed = false;
  for (const err of (problem && problem.errors) || []) {
    const name = String(err.field || "").split(/[.[]/)[0];
    const slot = $(`field-${name}-error`);
    if (slot) {
      slot.textContent = err.detail;
      $(`field-${name}`).setAttribute("aria-invalid", "true");
      placed = true;
    }
  }
  if (problem && !placed) showError(problem.detail || problem.title || "The change was refused");
}

async function renderTable(spec) {
  const { res, data } = await call("GET", spec.path);
  if (!res.ok) { showError((data && data.detail) || `Could not read ${spec.title} (${res.status})`); return; }
  const table = $("admin-table");
  const head = el("tr");
  for (const [, label] of spec.columns) head.append(el("th", { scope: "col", text: label }));
  if (spec.actions && canWrite()) head.append(el("th", { scope: "col", text: "Actions" }));
  table.tHead.replaceChildren(head);
  const rows = data.items.map((row) => {
    const tr = el("tr", { "data-testid": "admin-row", "data-key": row[spec.key] });
    for (const [name] of spec.columns) tr.append(el("td", { "data-column": name, text: shown(row[name], name) }));
    if (spec.actions && canWrite()) {
      const cell = el("td", { class: "admin-actions" });
      for (const [label, act] of spec.actions(row)) {
        const button = el("button", { type: "button", class: "ghost", text: label,
                                      "aria-label": `${label} ${row[spec.key]}` });
        button.addEventListener("click", act);
        cell.append(button);
      }
      tr.append(cell);
    }
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  status(`${data.total} ${spec.title.toLowerCase()}`);
}

// The connector form follows the API's own models: each type's scalar fields, secrets as password inputs.
async function connectorFields() {
  const spec = RESOURCES.connectors;
  if (spec.loaded) return;
  const res = await fetch("/api/openapi.json");
  if (!res.ok) return;
  const schemas = (await res.json()).components.schemas;
  const byName = new Map();
  for (const ref of Object.values(schemas.NewConnector.discriminator.mapping)) {
    const props = schemas[ref.split("/").pop()].properties;
    const type = props.type.const;
    CONNECTOR_TYPES.push(type);
    for (const [name, prop] of Object.entries(props)) {
      const kind = fieldKind(prop);
      if (COMMON.has(name) || !kind) continue;
      const field = byName.get(name) || { name, label: prop.title || name, types: [], ...kind,
                                          hint: fieldHint(prop, kind) };
      field.types.push(type);
      byName.set(name, field);
    }
  }
  spec.fields.push(...byName.values());
  spec.loaded = true;
}

function fieldKind(prop) {
  const plain = prop.anyOf ? prop.anyOf.find((p) => p.type !== "null") || {} : prop;
  if (prop.writeOnly || plain.format === "password") return { type: "password" };
  if (plain.enum) return { type: "select", options: plain.enum, optional: prop.default === undefined, default: prop.default };
  if (plain.type === "integer" || plain.type === "number") return { type: "number" };
  if (plain.type === "string") return {};
  return null;  // objects and lists (pacing, tables): through the API or the configuration file
}

function fieldHint(prop, kind) {
  if (kind.type === "password") return SECRET_HINT;
  const parts = [];
  if (prop.description && !prop.description.startsWith("an http")) parts.push(prop.description);
  if (prop.default !== undefined && prop.default !== null && prop.default !== "") parts.push(`default ${prop.default}`);
  return parts.join("; ") || undefined;
}

async function show(tab) {
  if (tab === "connectors") await connectorFields();
  state.tab = tab;
  state.cache = {};
  state.editing = null;
  clearInterval(state.timer);
  const spec = RESOURCES[tab];
  for (const button of document.querySelectorAll(".admin-tab")) {
    if (button.dataset.tab === tab) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  $("admin-title").textContent = spec.title;
  await renderForm(spec);
  await renderTable(spec);
  if (spec.refresh) state.timer = setInterval(() => { if (state.tab === tab) renderTable(spec); }, spec.refresh);
}

// -- changes -----------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  if (state.tab === "scenarios") { await saveScenario(); return; }
  const spec = RESOURCES[state.tab];
  const body = formBody(spec);
  if (state.editing) {
    const key = state.editing.key;
    const { res, data } = await call("PATCH", `${spec.path}/${encodeURIComponent(key)}`, body);
    if (!res.ok) { showFieldErrors(spec, data); return; }
    state.editing = null;
    await renderForm(spec);
    await renderTable(spec);
    status(`Changed ${key}: in force now on every node`);
    return;
  }
  const { res, data } = await call("POST", spec.path, body);
  if (res.status === 201) {
    showFieldErrors(spec, null);
    $("admin-form").reset();
    status(`Added ${data[spec.key]}: in force now on every node`);
    await renderTable(spec);
    status(`Added ${data[spec.key]}: in force now on every node`);
  } else {
    showFieldErrors(spec, data);
  }
}

async function change(tab, key, body) {
  const { res, data } = await call("PATCH", `${RESOURCES[tab].path}/${encodeURIComponent(key)}`, body);
  if (!res.ok) { showError((data && data.detail) || `The change was refused (${res.status})`); return; }
  await renderTable(RESOURCES[tab]);
}

async function remove(tab, key) {
  if (!window.confirm(`Delete ${key}?`)) return;
  const { res, data } = await call("DELETE", `${RESOURCES[tab].path}/${encodeURIComponent(key)}`);
  if (!res.ok) { showError((data && data.detail) || `Not deleted (${res.status})`); return; }
  await renderTable(RESOURCES[tab]);
}

// -- start -------------------------------------------------------------------------------------

function enter() {
  $("login-view").hidden = true;
  if (!["admin", "supervisor"].includes(state.user.role)) { $("denied-view").hidden = false; return; }
  $("admin-user").textContent = `${state.user.display_name || state.user.name} (${state.user.role})`;
  $("admin-view").hidden = false;
  show(state.tab);
}

async function login(event) {
  event.preventDefault();
  const res = await fetch("/api/login", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify({ username: $("login-username").value, password: $("login-password").value }) });
  const data = await res.json().catch(() => null);
  if (!res.ok) { showError((data && data.error) || `Login failed (${res.status})`); return; }
  $("login-password").value = "";
  state.token = data.token;
  state.user = data.user;
  enter();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("error-close").addEventListener("click", () => { $("error-banner").hidden = true; });
  $("login-form").addEventListener("submit", login);
  $("admin-form").addEventListener("submit", submit);
  for (const button of document.querySelectorAll(".admin-tab")) button.addEventListener("click", () => show(button.dataset.tab));
  if (await refresh().catch(() => false)) enter();
  else $("login-view").hidden = false;
});

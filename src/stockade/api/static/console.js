// The operator console: every panel reads and changes the resource through the management API
// that the command line uses, with the credential typed in at sign-in. That credential lives in
// one variable of this module and nowhere else (no storage, no cookie): reloading signs out.
// Whatever the server sends is shown as text (textContent), never parsed as markup.
import { COLORS, clearAll, dayChart, everyDay, groupChart } from "./console.charts.js";

const $ = (id) => document.getElementById(id);
// Entra ID access tokens are JWTs; anything else is taken for an API key.
const JWT = /^eyJ[\w-]*\.[\w-]*\.[\w-]*$/;
const DAY = 86400;
const LIST_LIMIT = 100;

let credential = null;
let currency = "USD";
let usageData = null; // the last summaries, so that changing a chart's measure needs no new call

// -- the API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body) {
  const headers = JWT.test(credential) ? { authorization: `Bearer ${credential}` } : { "api-key": credential };
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, null, "The server did not answer.");
  }
  if (response.status === 204) return null;
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    // not JSON: the status text will do
  }
  if (!response.ok) {
    // Azure's error envelope, or, for a refused token, a message at the top level as Azure puts it.
    const error = parsed?.error ?? parsed ?? {};
    throw new ApiError(response.status, error.code ?? null, error.message ?? response.statusText, response.headers.get("retry-after"));
  }
  return parsed;
}

const get = (path, query = {}) => {
  const params = new URLSearchParams(Object.entries(query).filter(([, value]) => value !== "" && value != null));
  return api("GET", params.size ? `${path}?${params}` : path);
};

// What went wrong, in the service's words, and what the operator can do about it. ``doing`` is
// what the panel needs the credential for ("manage keys").
function advice(error, doing) {
  const said = error.message ? ` (${error.status}${error.code && error.code !== String(error.status) ? ` ${error.code}` : ""}: ${error.message})` : "";
  if (error.status === 0) return "The server did not answer: check that Stockade is running at this address, then refresh.";
  if (error.status === 401 && error.code === "PermissionDenied") {
    return `This credential may not ${doing}. Sign in with a key whose role allows it, such as an admin key (key1 or key2).${said}`;
  }
  if (error.status === 401) {
    return `The key or token was refused: it is wrong, expired or revoked. Sign out, and sign in with an active one.${said}`;
  }
  if (error.status === 403) return `The server refused this credential or this address: ${error.message}`;
  if (error.status === 404 && error.code === "404") return `This server has no such route: it may be an older version of Stockade.${said}`;
  if (error.status === 429) {
    return `Too many requests: try again${error.retryAfter ? ` in ${error.retryAfter} s` : " shortly"}.${said}`;
  }
  if (error.status >= 500) return `The server failed to ${doing}: its log says why. Try again once it is fixed.${said}`;
  return error.message;
}

// -- showing things -----------------------------------------------------------------------------

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text != null) made.textContent = text;
  if (className) made.className = className;
  return made;
}

function button(text, onClick, className) {
  const made = element("button", text, className);
  made.type = "button";
  made.addEventListener("click", onClick);
  return made;
}

// A button that asks once more before doing something that cannot be undone.
function confirmButton(text, confirmText, onConfirm) {
  const made = button(text, async () => {
    if (made.dataset.armed !== "true") {
      made.dataset.armed = "true";
      made.textContent = confirmText;
      made.classList.add("danger-armed");
      return;
    }
    made.disabled = true;
    await onConfirm();
  }, "danger");
  made.addEventListener("blur", () => {
    made.dataset.armed = "false";
    made.textContent = text;
    made.classList.remove("danger-armed");
  });
  return made;
}

// ``columns``: [label, (row) => text or Node, className?]
function fill(table, columns, rows, empty) {
  const head = element("thead");
  const headRow = element("tr");
  for (const [label, , className] of columns) headRow.append(element("th", label, className));
  head.append(headRow);
  const body = element("tbody");
  for (const row of rows) {
    const line = element("tr");
    for (const [, value, className] of columns) {
      const cell = element("td", null, className);
      const shown = value(row);
      cell.append(shown instanceof Node ? shown : document.createTextNode(shown ?? "–"));
      line.append(cell);
    }
    body.append(line);
  }
  if (rows.length === 0) {
    const line = element("tr", null, "empty");
    const cell = element("td", empty);
    cell.colSpan = columns.length;
    line.append(cell);
    body.append(line);
  }
  table.replaceChildren(head, body);
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const timeFormat = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "medium" });

const count = (value) => (value == null ? "–" : integer.format(value));
const when = (seconds) => (seconds == null ? "–" : timeFormat.format(new Date(seconds * 1000)));
const millis = (value) => (value == null ? "–" : `${integer.format(value)} ms`);

// Calls cost fractions of a cent: those keep three significant digits, larger sums cents.
function money(value) {
  if (value == null) return "no price";
  const digits = value !== 0 && Math.abs(value) < 0.01 ? { maximumSignificantDigits: 3 } : { minimumFractionDigits: 2, maximumFractionDigits: 2 };
  return new Intl.NumberFormat("en-US", { style: "currency", currency, ...digits }).format(value);
}

function statusBadge(status) {
  const kind = status >= 500 ? "bad" : status === 429 ? "warn" : status >= 400 ? "bad" : "good";
  return element("span", String(status), `badge ${kind}`);
}

function meter(share, kind) {
  const outer = element("span", null, "meter");
  const inner = element("span", null, `meter-fill ${kind ?? ""}`);
  inner.style.width = `${Math.min(100, Math.max(0, share * 100)).toFixed(1)}%`; // CSSOM, which the CSP allows
  outer.append(inner);
  return outer;
}

function showError(panel, message) {
  const shown = $(panel).querySelector(".error");
  shown.textContent = message ?? "";
  shown.hidden = !message;
}

function notify(panel, message) {
  const panelSection = $(panel);
  let notice = panelSection.querySelector(".notice");
  if (!notice) {
    notice = element("p", null, "notice");
    notice.setAttribute("role", "status");
    panelSection.querySelector(".error").after(notice);
  }
  notice.textContent = message ?? "";
  notice.hidden = !message;
}

// Runs ``action`` for ``panel``, showing what to do next if it fails.
async function attempt(panel, doing, action) {
  showError(panel, "");
  try {
    await action();
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showError(panel, advice(error, doing));
    return false;
  }
}

// -- usage and cost -----------------------------------------------------------------------------

function periodStart(days) {
  const today = Math.floor(Date.now() / 1000 / DAY) * DAY;
  return new Date((today - (days - 1) * DAY) * 1000).toISOString().slice(0, 10);
}

async function loadUsage() {
  const since = periodStart(Number($("usage-days").value));
  const [byDay, byDeployment, byKey] = await Promise.all(
    ["day", "deployment", "key"].map((by) => get("/management/usage/summary", { by, since })),
  );
  currency = byDay.currency ?? currency;
  usageData = { byDay, byDeployment, byKey };
  showUsage();
}

function tile(label, value, detail) {
  const made = element("div", null, "tile");
  made.append(element("span", label, "tile-label"), element("span", value, "tile-value"));
  if (detail) made.append(element("span", detail, "tile-detail"));
  return made;
}

const MEASURES = {
  calls: { label: "Calls", value: (row) => row.calls, format: (v) => compact.format(v), color: COLORS.blue },
  tokens: { label: "Tokens", value: (row) => row.prompt_tokens + row.completion_tokens, format: (v) => compact.format(v), color: COLORS.violet },
  cost: { label: "Cost", value: (row) => row.cost ?? 0, format: (v) => money(v), color: COLORS.green },
};

function showUsage() {
  if (!usageData) return;
  const { byDay, byDeployment, byKey } = usageData;
  const total = byDay.total;
  for (const shown of document.querySelectorAll(".currency")) shown.textContent = currency;
  $("usage-totals").replaceChildren(
    tile("Calls", count(total.calls)),
    tile("Tokens", count(total.prompt_tokens + total.completion_tokens), `${count(total.prompt_tokens)} prompt · ${count(total.completion_tokens)} completion`),
    tile("Cost", money(total.cost)),
    tile("Errors", count(total.errors), `${count(total.throttled)} throttled (429)`),
    tile("Latency p50", millis(total.latency_p50_ms), `p95 ${millis(total.latency_p95_ms)}`),
  );
  const { days, rows } = everyDay(byDay.since, byDay.until, byDay.data);
  const of = (field) => rows.map((row) => row?.[field] ?? 0);
  dayChart($("chart-day-calls"), days, [
    { label: "Calls", color: COLORS.blue, values: of("calls"), kind: "bars" },
    { label: "Errors", color: COLORS.red, values: of("errors") },
    { label: "429s", color: COLORS.amber, values: of("throttled") },
  ], (v) => compact.format(v));
  dayChart($("chart-day-tokens"), days, [
    { label: "Prompt", color: COLORS.violet, values: of("prompt_tokens") },
    { label: "Completion", color: COLORS.blue, values: of("completion_tokens") },
  ], (v) => compact.format(v));
  dayChart($("chart-day-cost"), days, [{ label: "Cost", color: COLORS.green, values: of("cost"), kind: "bars" }], money);
  showGroups("deployment", byDeployment.data, "Deployment");
  showGroups("key", byKey.data, "Key");
}

function showGroups(by, rows, label) {
  const measure = MEASURES[$(`${by}-measure`).value];
  const names = rows.map((row) => row.group);
  groupChart($(`chart-${by}`), names, rows.map(measure.value), measure.label, measure.color, measure.format);
  fill($(`by-${by}`), [
    [label, (row) => row.group],
    ["Calls", (row) => count(row.calls), "number"],
    ["Tokens", (row) => count(row.prompt_tokens + row.completion_tokens), "number"],
    ["Cost", (row) => money(row.cost), "number"],
    ["Errors", (row) => count(row.errors), "number"],
    ["429s", (row) => count(row.throttled), "number"],
    ["p95", (row) => millis(row.latency_p95_ms), "number"],
  ], rows, "No calls in this period.");
}

// -- deployments --------------------------------------------------------------------------------

async function loadDeployments() {
  const [{ data: deployments }, { data: models }] = await Promise.all([get("/management/deployments"), get("/management/models")]);
  fill($("deployment-list"), [
    ["Name", (d) => element("strong", d.name)],
    ["Model", (d) => d.model],
    ["Backend", (d) => d.backend],
    ["Capacity", (d) => capacityEditor(d), "number"],
    ["Content filter", (d) => d.content_filter ?? "default"],
    ["Created", (d) => when(d.created_at), "nowrap"],
    ["", (d) => confirmButton("Delete", `Delete ${d.name}?`, () => deleteDeployment(d.name)), "actions"],
  ], deployments, "No deployments yet: create one below.");
  const chosen = $("deployment-model").value;
  $("deployment-model").replaceChildren(...models.map((m) => new Option(`${m.id} (${m.kind}, ${m.backend})`, m.id)));
  if (chosen) $("deployment-model").value = chosen;
  offerDeployments(deployments);
}

// A number and a button that saves it: ``save(value)`` returns whether it was saved.
function numberEditor(value, label, buttonText, save) {
  const form = element("form", null, "inline-edit");
  const input = element("input");
  input.type = "number";
  input.min = "1";
  input.value = value;
  input.setAttribute("aria-label", label);
  const submit = element("button", buttonText);
  submit.type = "submit";
  form.append(input, submit);
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    save(Number(input.value));
  });
  return form;
}

function capacityEditor(deployment) {
  return numberEditor(deployment.capacity, `Capacity of ${deployment.name}`, "Resize", async (capacity) => {
    const path = `/management/deployments/${encodeURIComponent(deployment.name)}`;
    if (await attempt("deployments", "manage deployments", () => api("PATCH", path, { capacity }))) {
      notify("deployments", `${deployment.name} now has a capacity of ${capacity} thousand tokens a minute.`);
      await reload("deployments");
    }
  });
}

async function deleteDeployment(name) {
  const done = await attempt("deployments", "manage deployments", () => api("DELETE", `/management/deployments/${encodeURIComponent(name)}`));
  if (done) notify("deployments", `${name} is deleted.`);
  await reload("deployments");
}

async function createDeployment(submitted) {
  submitted.preventDefault();
  const name = $("deployment-name").value.trim();
  const done = await attempt("deployments", "manage deployments", () =>
    api("PUT", `/management/deployments/${encodeURIComponent(name)}`, {
      model: $("deployment-model").value,
      capacity: Number($("deployment-capacity").value),
    }),
  );
  if (done) {
    notify("deployments", `${name} is created. Call it with the openai SDK's model="${name}".`);
    $("deployment-name").value = "";
    await reload("deployments");
  }
}

// The deployments a key may be scoped to, and calls filtered by.
function offerDeployments(deployments) {
  const names = deployments.map((d) => d.name);
  for (const [id, all] of [["key-deployment", "Whole resource"], ["calls-deployment", "All deployments"]]) {
    const chosen = $(id).value;
    $(id).replaceChildren(new Option(all, ""), ...names.map((name) => new Option(name, name)));
    if (names.includes(chosen)) $(id).value = chosen;
  }
}

// -- keys ---------------------------------------------------------------------------------------

async function loadKeys() {
  const { data: keys } = await get("/management/keys");
  fill($("key-list"), [
    ["Name", (k) => element("strong", k.name)],
    ["Kind", (k) => k.kind],
    ["Role", (k) => k.role],
    ["Scope", (k) => k.deployment ?? "whole resource"],
    ["Ends in", (k) => element("code", `…${k.hint}`)],
    ["Limits", (k) => limits(k)],
    ["Created", (k) => when(k.created_at), "nowrap"],
    ["", (k) => (k.kind === "admin" ? element("span", "regenerate with the CLI", "muted small") : confirmButton("Revoke", `Revoke ${k.name}?`, () => revokeKey(k))), "actions"],
  ], keys, "No keys.");
  if ($("key-deployment").options.length === 0) offerDeployments((await get("/management/deployments")).data);
}

function limits(key) {
  const parts = [];
  if (key.tokens_per_minute != null) parts.push(`${count(key.tokens_per_minute)} tokens/min`);
  if (key.requests_per_minute != null) parts.push(`${count(key.requests_per_minute)} requests/min`);
  return parts.length ? parts.join(", ") : "none of its own";
}

async function revokeKey(key) {
  const done = await attempt("keys", "manage keys", () => api("DELETE", `/management/keys/${encodeURIComponent(key.id)}`));
  if (done) notify("keys", `${key.name} is revoked: calls with it are refused from now on.`);
  await reload("keys");
}

async function createKey(submitted) {
  submitted.preventDefault();
  const body = { name: $("key-name").value.trim(), role: $("key-role").value };
  if ($("key-deployment").value) body.deployment = $("key-deployment").value;
  if ($("key-tpm").value) body.tokens_per_minute = Number($("key-tpm").value);
  if ($("key-rpm").value) body.requests_per_minute = Number($("key-rpm").value);
  let created = null;
  const done = await attempt("keys", "manage keys", async () => {
    created = await api("POST", "/management/keys", body);
  });
  if (!done) return;
  notify("keys", "");
  $("key-create").reset();
  $("new-secret-name").textContent = created.name;
  $("new-secret-value").value = created.key;
  $("copy-status").textContent = "";
  $("new-secret").hidden = false;
  $("new-secret-value").select();
  await reload("keys");
}

async function copySecret() {
  try {
    await navigator.clipboard.writeText($("new-secret-value").value);
    $("copy-status").textContent = "Copied to the clipboard.";
  } catch {
    $("new-secret-value").select();
    $("copy-status").textContent = "This browser did not allow copying: the key is selected, press Ctrl+C (⌘C) to copy it.";
  }
}

function dismissSecret() {
  $("new-secret-value").value = "";
  $("new-secret-name").textContent = "";
  $("new-secret").hidden = true;
}

// -- quotas -------------------------------------------------------------------------------------

async function loadQuotas() {
  const { data: quotas } = await get("/management/quotas");
  const cards = quotas.map((quota) => {
    const card = element("article", null, "card quota");
    card.append(element("h3", quota.model));
    const line = element("p", `${count(quota.allocated)} of ${count(quota.quota)} thousand tokens a minute allocated, ${count(quota.available)} available`, "small");
    card.append(line, meter(quota.quota ? quota.allocated / quota.quota : 0, quota.allocated > quota.quota ? "over" : ""));
    const list = element("ul", null, "quota-deployments");
    for (const use of quota.deployments) {
      const item = element("li");
      item.append(
        element("span", use.name, "name"),
        element("span", `${count(use.tokens_last_minute)} of ${count(use.tokens_per_minute)} tokens in the last minute`, "muted small"),
        meter(use.tokens_per_minute ? use.tokens_last_minute / use.tokens_per_minute : 0),
      );
      list.append(item);
    }
    card.append(list, quotaEditor(quota));
    return card;
  });
  $("quota-list").replaceChildren(...(cards.length ? cards : [element("p", "No models.", "muted")]));
}

function quotaEditor(quota) {
  return numberEditor(quota.quota, `Quota of ${quota.model}`, "Set quota", async (capacity) => {
    const path = `/management/quotas/${encodeURIComponent(quota.model)}`;
    if (await attempt("quotas", "set quotas", () => api("PUT", path, { capacity }))) {
      notify("quotas", `${quota.model}'s quota is now ${capacity} thousand tokens a minute.`);
      await reload("quotas");
    }
  });
}

// -- budgets ------------------------------------------------------------------------------------

async function loadBudgets() {
  const { data: budgets } = await get("/management/budgets");
  fill($("budget-list"), [
    ["Name", (b) => element("strong", b.name)],
    ["Applies to", (b) => (b.scope === "resource" ? "the whole resource" : `${b.scope} ${b.target}`)],
    ["Period", (b) => `${b.period}, resets ${when(b.period_end)}`],
    ["Spent", (b) => spent(b)],
    ["Alerts", (b) => alerts(b)],
    ["When spent", (b) => (b.hard ? element("span", "calls refused", "badge bad") : element("span", "alerts only", "badge"))],
  ], budgets, "No budgets: create one with stockade budgets create.");
}

function spent(budget) {
  const share = budget.amount ? (budget.spent + budget.held) / budget.amount : 0;
  const kind = share >= 1 ? "over" : share >= Math.min(...budget.thresholds, 1) ? "warn" : "";
  const shown = element("div", null, "spent");
  const held = budget.held ? `, ${money(budget.held)} held by running calls` : "";
  shown.append(element("span", `${money(budget.spent)} of ${money(budget.amount)} (${Math.round(share * 100)}%)${held}`, "small"), meter(share, kind));
  return shown;
}

function alerts(budget) {
  const shown = element("span", null, "thresholds");
  for (const threshold of budget.thresholds) {
    const fired = budget.alerts_fired.includes(threshold);
    shown.append(element("span", `${Math.round(threshold * 100)}%`, `badge ${fired ? "warn" : ""}`));
  }
  shown.title = budget.webhook ? `Alerts go to ${budget.webhook} and the audit log` : "Alerts go to the audit log";
  return shown;
}

// -- calls and content filter hits --------------------------------------------------------------

const CALL_COLUMNS = [
  ["Time", (r) => when(r.ts)],
  ["Operation", (r) => r.operation],
  ["Deployment", (r) => r.deployment],
  ["Key", (r) => r.key_name ?? r.key_id],
  ["Status", (r) => statusBadge(r.status)],
];

async function loadCalls() {
  const { data } = await get("/management/usage", { limit: LIST_LIMIT, deployment: $("calls-deployment").value });
  fill($("call-list"), [
    ...CALL_COLUMNS,
    ["Prompt", (r) => count(r.prompt_tokens), "number"],
    ["Completion", (r) => count(r.completion_tokens), "number"],
    ["Latency", (r) => millis(r.latency_ms), "number"],
    ["Cost", (r) => money(r.cost), "number"],
    ["Filter", (r) => (r.content_filter ? element("span", "acted", "badge warn") : "")],
  ], data, "No calls yet.");
  if ($("calls-deployment").options.length === 0) offerDeployments((await get("/management/deployments")).data);
}

async function loadFiltered() {
  const { data } = await get("/management/usage", { limit: LIST_LIMIT, content_filter: "true" });
  fill($("filtered-list"), [...CALL_COLUMNS, ["Decisions", (r) => decisions(r.content_filter)]], data, "No call was filtered.");
}

// "policy/direction/category/action", comma-separated.
function decisions(recorded) {
  const list = element("ul", null, "decisions");
  for (const decision of recorded.split(",")) {
    const [policy, direction, category, action] = decision.split("/");
    const item = element("li");
    item.append(element("span", action, `badge ${action === "block" ? "bad" : "warn"}`), document.createTextNode(` ${category} in the ${direction} (policy ${policy})`));
    list.append(item);
  }
  return list;
}

// -- audit --------------------------------------------------------------------------------------

async function loadAudit() {
  const { data } = await get("/management/audit", { limit: LIST_LIMIT, action: $("audit-action").value.trim() });
  fill($("audit-list"), [
    ["Time", (e) => when(e.ts), "nowrap"],
    ["Who", (e) => e.actor, "nowrap"],
    ["From", (e) => e.source],
    ["Action", (e) => element("code", e.action), "nowrap"],
    ["Target", (e) => e.target],
    ["Status", (e) => statusBadge(e.status)],
  ], data, "Nothing recorded yet.");
}

// -- conversations ------------------------------------------------------------------------------

async function loadCases() {
  const query = { limit: LIST_LIMIT, include_evaluations: $("cases-evaluations").checked ? "true" : "" };
  const { data } = await get("/management/cases", query);
  fill($("case-list"), [
    ["Case", (c) => c.id],
    ["Opened", (c) => when(c.opened_at), "nowrap"],
    ["Routine", (c) => c.routine],
    ["Status", (c) => element("span", c.status, `badge ${c.status === "open" ? "" : c.status === "resolved" ? "good" : "warn"}`)],
    ["Reason", (c) => c.reason],
    ["Closed", (c) => when(c.closed_at)],
    ["", (c) => button("Trace", () => showCase(c)), "actions"],
  ], data, "No conversations yet: start one on the support chat page.");
}

async function showCase(found) {
  await attempt("cases", "read conversations", async () => {
    const conversation = await get(`/routines/conversations/${encodeURIComponent(found.conversation_id)}`);
    $("case-title").textContent = `Case ${found.id}: routine ${conversation.routine} (version ${conversation.routine_version}), ${conversation.status}`;
    $("case-trace").replaceChildren(...conversation.trace.map((event) => {
      const item = element("li");
      item.append(element("span", `turn ${event.turn}${event.step ? ` · ${event.step}` : ""}`, "muted"), element("strong", ` ${event.kind} `), document.createTextNode(describeDetail(event.detail)));
      return item;
    }));
    const messages = conversation.messages ?? [];
    $("case-messages").replaceChildren(...messages.map((m) => element("li", `${m.role}: ${m.content}`)));
    $("case-messages-box").hidden = messages.length === 0;
    $("case-detail").hidden = false;
  });
}

// The event's own fields, less those its line already shows.
function describeDetail(detail) {
  return Object.entries(detail)
    .filter(([name]) => !["kind", "step", "turn"].includes(name))
    .map(([name, value]) => `${name}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join("; ");
}

// -- panels, sign-in and sign-out ---------------------------------------------------------------

const PANELS = {
  usage: [loadUsage, "read usage"],
  deployments: [loadDeployments, "list deployments"],
  keys: [loadKeys, "manage keys"],
  quotas: [loadQuotas, "read quotas"],
  budgets: [loadBudgets, "read budgets"],
  calls: [loadCalls, "read usage"],
  filtered: [loadFiltered, "read usage"],
  audit: [loadAudit, "read the audit log"],
  cases: [loadCases, "read conversations"],
};

async function reload(panel) {
  const [load, doing] = PANELS[panel];
  const shown = $(panel);
  shown.setAttribute("aria-busy", "true");
  await attempt(panel, doing, load);
  shown.setAttribute("aria-busy", "false");
}

function open(panel) {
  for (const name of Object.keys(PANELS)) $(name).hidden = name !== panel;
  for (const link of document.querySelectorAll("nav button[data-panel]")) link.classList.toggle("current", link.dataset.panel === panel);
  return reload(panel);
}

async function signIn(submitted) {
  submitted.preventDefault();
  credential = $("credential").value.trim();
  $("credential").value = "";
  $("sign-in-error").hidden = true;
  try {
    await get("/management/deployments");
  } catch (error) {
    // A credential without the right to list deployments is still one: its panels say what it may do.
    if (!(error instanceof ApiError && error.code === "PermissionDenied")) {
      credential = null;
      $("sign-in-error").textContent = error instanceof ApiError ? advice(error, "sign in") : String(error);
      $("sign-in-error").hidden = false;
      return;
    }
  }
  $("signed-in").textContent = JWT.test(credential) ? "Signed in with an Entra ID token" : `Signed in with a key ending in …${credential.slice(-4)}`;
  $("sign-in-view").hidden = true;
  $("console-view").hidden = false;
  $("signed-in").hidden = false;
  $("sign-out").hidden = false;
  await open(document.querySelector("nav button.current").dataset.panel);
}

function signOut() {
  credential = null;
  usageData = null;
  dismissSecret();
  clearAll();
  for (const table of document.querySelectorAll("table.data")) table.replaceChildren();
  for (const panel of Object.keys(PANELS)) {
    showError(panel, "");
    notify(panel, "");
  }
  for (const id of ["usage-totals", "quota-list", "case-trace", "case-messages", "deployment-model", "key-deployment", "calls-deployment"]) {
    $(id).replaceChildren();
  }
  $("case-detail").hidden = true;
  $("console-view").hidden = true;
  $("signed-in").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in-view").hidden = false;
  $("credential").focus();
}

$("sign-in").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
for (const link of document.querySelectorAll("nav button[data-panel]")) link.addEventListener("click", () => open(link.dataset.panel));
for (const panel of Object.keys(PANELS)) $(panel).querySelector(".refresh").addEventListener("click", () => reload(panel));
$("usage-days").addEventListener("change", () => reload("usage"));
$("deployment-measure").addEventListener("change", showUsage);
$("key-measure").addEventListener("change", showUsage);
$("calls-deployment").addEventListener("change", () => reload("calls"));
$("audit-action").addEventListener("change", () => reload("audit"));
$("cases-evaluations").addEventListener("change", () => reload("cases"));
$("deployment-create").addEventListener("submit", createDeployment);
$("key-create").addEventListener("submit", createKey);
$("copy-secret").addEventListener("click", copySecret);
$("dismiss-secret").addEventListener("click", dismissSecret);

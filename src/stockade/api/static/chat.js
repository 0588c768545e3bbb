// The support chat page: one conversation on a routine, the agent's replies streamed in.
// Replies come as Server-Sent Events read from a fetch body, because EventSource can neither POST
// nor send an api-key header. Text is only ever set as textContent: agents echo customers.
"use strict";

const $ = (id) => document.getElementById(id);
// Entra ID access tokens are JWTs; anything else is taken for an API key.
const JWT = /^eyJ[\w-]*\.[\w-]*\.[\w-]*$/;
const CLOSED = { resolved: "The case is resolved.", handed_off: "The case is handed to a person." };

let conversation = null;

function credentialHeaders() {
  const credential = $("credential").value.trim();
  return JWT.test(credential) ? { authorization: `Bearer ${credential}` } : { "api-key": credential };
}

async function request(path, body) {
  const init = { method: "GET", headers: credentialHeaders() };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(await failure(response));
  return response;
}

// The service's own message says what went wrong and what to do. It is in Azure's error
// envelope, or, for a refused token, at the top level as Azure puts it.
async function failure(response) {
  let message = response.statusText;
  try {
    const body = await response.json();
    message = body.error?.message ?? body.message ?? message;
  } catch {
    // not JSON: the status text will do
  }
  const retry = response.headers.get("retry-after");
  return `${response.status}: ${message}${retry ? ` Try again in ${retry} s.` : ""}`;
}

async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice("data: ".length);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function append(list, className, text) {
  const item = document.createElement("li");
  item.className = className;
  item.textContent = text;
  $(list).append(item);
  item.scrollIntoView({ block: "nearest" });
  return item;
}

function say(role, text, translation) {
  const item = append("transcript", role, text);
  if (translation) {
    // Beside the routine's own words, never instead of them: those are what the routine says.
    const translated = document.createElement("span");
    translated.className = "translation";
    translated.lang = translation.language;
    translated.textContent = translation.text;
    item.append(translated);
  }
}

function describe(event) {
  const at = event.step ? `${event.step}: ` : "";
  switch (event.kind) {
    case "step":
      return `${at}${event.step_kind}${event.as ? ` (as ${event.as})` : ""}`;
    case "decision": {
      const ruledOut = event.ruled_out ? `; ruled out ${event.ruled_out.join(", ")}` : "";
      return `${at}chose ${event.option} (${event.stage}, confidence ${event.confidence}${ruledOut})`;
    }
    case "function":
      return `${at}called ${event.function}: ${event.ok ? "done" : `failed, ${event.error}`}`;
    case "message":
      return `${at}said a message from the ${event.source}${event.translated ? `, translated (${event.translated})` : ""}`;
    case "status":
      return `${at}${event.status}${event.reason ? ` (${event.reason})` : ""}`;
    default:
      return `${at}${event.kind}`;
  }
}

function summarise() {
  const status = CLOSED[conversation.status] ?? "Open.";
  $("summary").textContent =
    `Routine ${conversation.routine} (version ${conversation.routine_version}), ` +
    `case ${conversation.case}. ${status}`;
  const open = conversation.status === "open";
  $("message").disabled = !open;
  $("send").disabled = !open;
  $("start-button").textContent = open ? "Start conversation" : "Start a new conversation";
}

function apply(event) {
  // Azure's error envelope ends the stream; a failed function's event has an error string.
  if (typeof event.error === "object" && event.error !== null) throw new Error(event.error.message);
  append("trace", event.kind, describe(event));
  if (event.kind === "message") say("agent", event.text, event.translation);
  if (event.kind === "status") {
    conversation.status = event.status;
    summarise();
  }
}

async function start(submitted) {
  submitted.preventDefault();
  showError("");
  try {
    const response = await request("/routines/conversations", { routine: $("routine").value.trim() });
    conversation = await response.json();
  } catch (error) {
    showError(error.message);
    return;
  }
  $("transcript").replaceChildren();
  $("trace").replaceChildren();
  $("conversation").hidden = false;
  summarise();
  $("message").focus();
}

async function send(submitted) {
  submitted.preventDefault();
  const text = $("message").value.trim();
  if (!text || $("send").disabled) return; // Enter submits even while the button is disabled
  showError("");
  $("message").value = "";
  say("customer", text);
  // Until the turn ends: one message at a time, and no new conversation under a running reply.
  $("send").disabled = true;
  $("start-button").disabled = true;
  try {
    const path = `/routines/conversations/${encodeURIComponent(conversation.id)}/messages`;
    const response = await request(path, { content: text, stream: true });
    for await (const event of serverSentEvents(response)) apply(event);
  } catch (error) {
    showError(error.message);
  } finally {
    $("start-button").disabled = false;
    summarise();
    if (!$("message").disabled) $("message").focus();
  }
}

// The routines on offer, for the routine field's suggestions; a key that may not list them
// can still name one.
async function offerRoutines() {
  try {
    const { data } = await (await request("/routines")).json();
    $("routines").replaceChildren(
      ...data.filter((routine) => routine.title).map((routine) => new Option(routine.title, routine.name)),
    );
  } catch {
    $("routines").replaceChildren();
  }
}

function submitOnEnter(keydown) {
  if (keydown.key === "Enter" && !keydown.shiftKey) {
    keydown.preventDefault();
    $("compose").requestSubmit();
  }
}

$("routine").value = new URLSearchParams(location.search).get("routine") ?? "baa";
$("credential").addEventListener("change", offerRoutines);
$("start").addEventListener("submit", start);
$("compose").addEventListener("submit", send);
$("message").addEventListener("keydown", submitOnEnter);

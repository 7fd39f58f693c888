// What every part of the page shares: its data and words, the protocol's calls, and putting text
// on the page. Whatever the model or a file wrote is set as text (textContent, text nodes), never as HTML.

export const data = JSON.parse(document.getElementById("page-data").textContent);
export const t = data.strings;
export const $ = (id) => document.getElementById(id);
export const JSON_HEADERS = { "Content-Type": "application/json" };

export const format = (template, values) =>
  template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));

// A path as the protocol sends it ({"$path": ...}) or as a conversation keeps it (a string).
export const pathOf = (source) => (typeof source.path === "string" ? source.path : (source.path && source.path.$path) || "");
export const nameOf = (source) => pathOf(source).split(/[\\/]/).pop();

export function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function label(source) {
  let text = nameOf(source);
  if (source.page) text += ", " + format(t.page, { n: source.page });
  if (source.heading) text += " — " + source.heading;
  return text;
}

export function errorText(error) {
  if (error && typeof error === "object") {
    if (error.fields && typeof error.fields.reason === "string") return error.fields.reason;
    if (Array.isArray(error.args) && typeof error.args[0] === "string") return error.args[0];
  }
  return String(error);
}

export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12)); // randomUUID needs HTTPS; an intranet may serve HTTP
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function detail(response) {
  const body = await response.json().catch(() => ({}));
  return body.detail || response.statusText;
}

// The messages of a streamed call, one JSON object a line, as they arrive.
export async function* messages(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 1);
      if (line.trim()) yield JSON.parse(line);
    }
  }
  if (buffer.trim()) yield JSON.parse(buffer);
}

// POST /v1/call: the response, or an Error with the server's plain words.
export async function start(name, args, id = newId()) {
  const response = await fetch("/v1/call", { method: "POST", headers: JSON_HEADERS, credentials: "same-origin",
                                             body: JSON.stringify({ id, call: name, args }) });
  if (!response.ok) throw new Error(await detail(response));
  return response;
}

// One call to its end: its events to onEvent, its result returned.
export async function call(name, args, onEvent) {
  let result = null;
  for await (const message of messages(await start(name, args))) {
    if (message.error) throw new Error(errorText(message.error));
    if (message.event && onEvent) onEvent(message.event);
    if ("result" in message) result = message.result;
  }
  return result;
}

function citeButton(n) {
  const button = make("button", "cite", `[${n}]`);
  button.type = "button";
  button.dataset.source = String(n);
  button.setAttribute("aria-label", `${t.open} [${n}]`);
  return button;
}

// Text with each [n] a button that opens source n.
export function appendCited(parent, text) {
  const marks = /\[(\d+)\]/g;
  let last = 0, found;
  while ((found = marks.exec(text)) !== null) {
    parent.append(document.createTextNode(text.slice(last, found.index)), citeButton(Number(found[1])));
    last = marks.lastIndex;
  }
  parent.append(document.createTextNode(text.slice(last)));
}

// An answer into ``element``, each sentence the checker found unsupported underlined with its reason.
export function showAnswer(element, text, claims) {
  element.replaceChildren();
  let at = 0;
  for (const claim of claims || []) {
    if (claim.supported !== false || claim.start < at) continue;
    appendCited(element, text.slice(at, claim.start));
    const sentence = make("span", "unsupported");
    sentence.title = format(t.unsupported, { reason: claim.problem || "" });
    appendCited(sentence, text.slice(claim.start, claim.end));
    element.append(sentence);
    at = claim.end;
  }
  appendCited(element, text.slice(at));
}

// A structured answer as a table: a list of records as rows, a record as field and value.
export function dataTable(value) {
  if (Array.isArray(value) && value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
    const keys = [...new Set(value.flatMap(Object.keys))];
    const table = make("table", "data"), head = make("tr");
    for (const key of keys) head.append(make("th", "", key));
    table.append(make("thead"), make("tbody"));
    table.tHead.append(head);
    for (const record of value) {
      const row = make("tr");
      for (const key of keys) row.append(cell("td", record[key]));
      table.tBodies[0].append(row);
    }
    return table;
  }
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const table = make("table", "data");
    table.append(make("tbody"));
    for (const [key, field] of Object.entries(value)) {
      const row = make("tr");
      const name = make("th", "", key);
      name.scope = "row";
      row.append(name, cell("td", field));
      table.tBodies[0].append(row);
    }
    return table;
  }
  if (Array.isArray(value)) {
    const list = make("ul", "data");
    for (const item of value) list.append(cell("li", item));
    return list;
  }
  return make("span", "", value === null ? "" : value);
}

// A structured answer field by field: its value, and the numbers of the sources it was drawn from
// (each a button that opens the passage), "no source" when it names none, and a warning when the
// value is in none of them (as the desktop's structured view shows it).
export function fieldTable(value, fieldSources) {
  const table = make("table", "data fields"), head = make("tr");
  for (const name of [t.field, t.value, t.sources]) {
    const th = make("th", "", name);
    th.scope = "col";
    head.append(th);
  }
  table.append(make("thead"), make("tbody"));
  table.tHead.append(head);
  const whole = fieldSources.length === 1 && fieldSources[0].field === "value";
  for (const found of fieldSources) {
    const row = make("tr"), name = make("th", "", found.field), where = make("td", "field-sources");
    name.scope = "row";
    const numbers = [...new Set((found.citations || []).map((c) => c.number))];
    for (const n of numbers) where.append(citeButton(n));
    if (!numbers.length) where.append(make("span", "no-source", t.no_source));
    if (found.supported === false) where.append(make("span", "unsupported", t.not_in_sources));
    const field = whole ? value : value && typeof value === "object" ? value[found.field] : null;
    row.append(name, cell("td", field === undefined ? null : field), where);
    table.tBodies[0].append(row);
  }
  return table;
}

function cell(tag, value) {
  const node = make(tag);
  if (value && typeof value === "object") node.append(dataTable(value));
  else node.textContent = value === null || value === undefined ? "" : String(value);
  return node;
}

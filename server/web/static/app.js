// The reader: asks through POST /v1/call and shows the answer as it streams (the protocol's own
// NDJSON messages), stops it, lists the sources, opens a cited passage, and keeps the turns of the
// open conversation. Whatever the model or a file wrote is set as text (render.js).
import { $, JSON_HEADERS, data, dataTable, fieldTable, errorText, format, label, make, messages, newId, pathOf, showAnswer, start,
         t } from "./render.js";
import * as conversations from "./conversations.js";

const form = $("ask-form"), question = $("question"), askButton = $("ask"), stopButton = $("stop"), shape = $("shape");
const transcript = $("transcript"), answer = $("answer"), table = $("data"), status = $("status");
const reasoning = $("reasoning"), reasoningText = $("reasoning-text");
const sourcesBox = $("sources"), citedList = $("sources-cited"), readList = $("sources-read");
const viewer = $("viewer"), viewerTitle = $("viewer-title"), viewerPage = $("viewer-page");
const viewerImage = $("viewer-image"), viewerText = $("viewer-text"), viewerClose = $("viewer-close");
const turnSources = new WeakMap(); // an earlier turn's element -> its sources by number
let running = null; // { id, stopped }
let sources = new Map(); // the live answer's sources by number
let asked = ""; // the live answer's question
let opener = null; // what had the focus before the viewer opened

const say = (text) => { status.textContent = text; };
const byNumber = (list) => new Map((list || []).map((source) => [source.number, source]));

function showSources(all, cited) {
  sources = byNumber(all);
  citedList.replaceChildren();
  readList.replaceChildren();
  for (const source of all) {
    const item = make("li"), button = make("button", "source", `[${source.number}] ${label(source)}`);
    button.type = "button";
    button.dataset.source = String(source.number);
    item.append(button);
    (cited.has(source.number) ? citedList : readList).append(item);
  }
  for (const list of [citedList, readList]) list.hidden = list.previousElementSibling.hidden = !list.children.length;
  sourcesBox.hidden = all.length === 0;
}

// An earlier turn, above the live answer; its [n] open its own sources.
function addTurn(questionText, answerText, claims, data, cited) {
  const turn = make("article", "turn"), body = make("div", "answer");
  showAnswer(body, answerText, claims);
  turn.append(make("h3", "asked", questionText), data ? dataTable(data) : body);
  turnSources.set(turn, byNumber(cited));
  transcript.append(turn);
}

function clearLive() {
  answer.replaceChildren();
  table.replaceChildren();
  reasoningText.textContent = "";
  reasoning.hidden = true;
  reasoning.open = false;
  showSources([], new Set());
  asked = "";
}

function setRunning(on) {
  askButton.disabled = on;
  stopButton.disabled = !on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

async function ask(text) {
  const call = { id: newId(), stopped: false };
  running = call;
  setRunning(true);
  if (asked && answer.textContent) addTurn(asked, answer.textContent, [], null, [...sources.values()]);
  clearLive();
  asked = text;
  let written = "", thought = "", ended = false;
  say(t.asking);
  const options = { $type: "AskOptions" };
  if (data.answer_tokens) options.answer_tokens = data.answer_tokens;
  const schema = shape && data.schemas.find((s) => s.name === shape.value);
  if (schema) options.schema = schema;
  try {
    options.conversation = await conversations.ensure(text);
    const response = await start("ask", { question: text, collection: data.collection, options }, call.id);
    for await (const message of messages(response)) {
      if (message.error) throw new Error(errorText(message.error));
      const event = message.event;
      if (!event) continue;
      if (event.$type === "Retrieved") showSources(event.sources || [], new Set());
      else if (event.$type === "Reading" || event.$type === "Loading") say(t.reading);
      else if (event.$type === "ReasoningDelta") {
        thought += event.text;
        reasoningText.textContent = thought;
        reasoning.hidden = false;
      } else if (event.$type === "AnswerDelta") {
        if (!written) say(t.writing);
        written += event.text;
        showAnswer(answer, written, []);
      } else if (event.$type === "Answered") {
        const result = event.result;
        showAnswer(answer, result.answer, result.claims);
        if (result.data !== null && result.data !== undefined) {
          answer.replaceChildren();
          table.replaceChildren(result.field_sources && result.field_sources.length
            ? fieldTable(result.data, result.field_sources) : dataTable(result.data));
        }
        showSources(result.sources || [], new Set((result.citations || []).map((c) => c.number)));
        if (result.reasoning) { reasoningText.textContent = result.reasoning; reasoning.hidden = false; }
        say(call.stopped ? t.stopped : result.cached ? t.cached : t.done);
        ended = true;
      } else if (event.$type === "AskFailed") {
        say(call.stopped ? t.stopped : format(t.failed, { reason: errorText(event.error) }));
        ended = true;
      }
    }
    if (!ended) say(call.stopped ? t.stopped : t.done);
  } catch (error) {
    say(call.stopped ? t.stopped : format(t.failed, { reason: error.message }));
  } finally {
    running = null;
    setRunning(false);
  }
}

async function stop() {
  if (!running) return;
  running.stopped = true;
  say(t.stopped);
  await fetch("/v1/cancel", { method: "POST", headers: JSON_HEADERS, credentials: "same-origin",
                             body: JSON.stringify({ id: running.id }) }).catch(() => undefined);
}

async function open(source) {
  opener = document.activeElement;
  viewer.hidden = false;
  viewerTitle.textContent = label(source);
  for (const mark of viewerPage.querySelectorAll(".mark")) mark.remove();
  const pdf = /\.pdf$/i.test(pathOf(source)) && source.page;
  viewerPage.hidden = !pdf;
  viewerText.hidden = Boolean(pdf);
  viewerClose.focus();
  if (!pdf) { // the passage in its section
    viewerText.replaceChildren();
    if (source.heading) viewerText.append(make("h3", "", source.heading));
    viewerText.append(make("p", "", source.text));
    return;
  }
  const where = { collection: data.collection, path: pathOf(source), page: source.page };
  viewerImage.alt = label(source);
  viewerImage.src = "/web/page?" + new URLSearchParams(where);
  const response = await fetch("/web/marks", { method: "POST", headers: JSON_HEADERS, credentials: "same-origin",
                                               body: JSON.stringify({ ...where, text: source.text }) });
  if (!response.ok) return;
  for (const [left, top, right, bottom] of (await response.json()).rects) {
    const mark = make("div", "mark");
    mark.title = t.mark;
    Object.assign(mark.style, { left: `${left * 100}%`, top: `${top * 100}%`,
                                width: `${(right - left) * 100}%`, height: `${(bottom - top) * 100}%` });
    viewerPage.append(mark);
  }
}

function closeViewer() {
  viewer.hidden = true;
  if (opener && opener.focus) opener.focus();
}

conversations.onOpen((found) => {
  transcript.replaceChildren();
  clearLive();
  say("");
  for (const turn of (found && found.turns) || []) {
    addTurn(turn.question, turn.answer, turn.claims, turn.data, [...(turn.citations || []), ...(turn.sources || [])]);
  }
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (text && !running) ask(text);
});
question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});
stopButton.addEventListener("click", stop);
viewerClose.addEventListener("click", closeViewer);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !viewer.hidden) closeViewer();
});
askButton.disabled = false; // ready: until now the form could not have been sent
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-source]");
  if (!button) return;
  const turn = button.closest(".turn");
  const source = (turn ? turnSources.get(turn) : sources).get(Number(button.dataset.source));
  if (source) open(source);
});

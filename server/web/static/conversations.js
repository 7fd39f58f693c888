// The user's conversations with this collection (each user's own, kept on the server): listed,
// reopened with their turns, and a new one begun by the first question asked in it.
import { $, call, data, make, t } from "./render.js";

const list = $("conversations"), fresh = $("new-conversation");
let current = null;
let opened = () => undefined;

export const conversation = () => current;

// ``handler(conversation)`` shows a reopened conversation's turns (null: a new, empty one).
export function onOpen(handler) {
  opened = handler;
}

export async function refresh() {
  const all = (await call("list_conversations", { collection: data.collection })) || [];
  list.replaceChildren();
  for (const one of all.sort((a, b) => b.updated - a.updated)) {
    const item = make("li"), button = make("button", "conversation", one.title || t.untitled);
    button.type = "button";
    if (one.id === current) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => open(one.id));
    item.append(button);
    list.append(item);
  }
}

// The conversation a question goes to: the open one, or one begun for it.
export async function ensure(question) {
  if (current === null) {
    const made = await call("new_conversation", { collection: data.collection, title: question.slice(0, 80) });
    current = made.id;
    await refresh();
  }
  return current;
}

async function open(id) {
  const found = await call("get_conversation", { collection: data.collection, conversation_id: id });
  current = found.id;
  opened(found);
  await refresh();
}

fresh.addEventListener("click", () => {
  current = null;
  opened(null);
  refresh();
});
refresh().catch(() => undefined);

// The chat page: live messages over EventSource, posting with fetch().
// Message text is always inserted with textContent, never as HTML.
"use strict";

(function () {
  const room = document.getElementById("room");
  if (!room) return;
  const list = document.getElementById("messages");
  const status = document.getElementById("connection");
  const form = document.getElementById("composer");

  function setState(state, label) {
    status.dataset.state = state;
    status.textContent = label;
  }

  function timeLabel(iso) {
    const date = new Date(iso);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function render(message) {
    const item = document.createElement("li");
    item.className = "message";
    item.dataset.id = String(message.id);
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = message.user;
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    time.textContent = timeLabel(message.created_at);
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = message.text;
    item.append(author, " ", time, text);
    return item;
  }

  function atBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  function add(message) {
    // The page-load position may replay a message the page already shows: once only.
    if (list.querySelector(`li[data-id="${CSS.escape(String(message.id))}"]`)) return;
    const follow = atBottom();
    list.append(render(message));
    if (follow) list.scrollTop = list.scrollHeight;
  }

  // Open the stream from the position rendered with the page; after that the browser
  // sends Last-Event-ID by itself on every reconnect.
  const url = new URL(room.dataset.eventsUrl, window.location.href);
  url.searchParams.set("last_event_id", room.dataset.position);
  const source = new EventSource(url);
  source.addEventListener("open", () => setState("live", "live"));
  source.addEventListener("error", () => setState("reconnecting", "reconnecting…"));
  source.addEventListener("message_created", (event) => add(JSON.parse(event.data)));
  source.addEventListener("reset", () => {
    setState("reset", "reloading…");
    window.location.reload();
  });
  list.scrollTop = list.scrollHeight;

  if (!form) return;
  const textarea = form.querySelector("textarea");
  const error = document.getElementById("composer-error");

  async function send() {
    const text = textarea.value;
    if (!text.trim()) return;
    error.hidden = true;
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (response.ok) {
      // The message appears when its event arrives, exactly once.
      textarea.value = "";
    } else {
      let message = `Could not send (${response.status}).`;
      try { message = (await response.json()).error || message; } catch (_) { /* keep */ }
      error.textContent = message;
      error.hidden = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
})();

// The room page: live messages, edits, deletes, presence and typing over one EventSource;
// posting with fetch(). Text is only ever inserted as text nodes (textContent); links are
// built as <a> elements whose href is checked to be http(s). No innerHTML anywhere.
"use strict";

(function () {
  const configNode = document.getElementById("chat-config");
  if (!configNode) return;
  const config = JSON.parse(configNode.textContent);
  const api = `/api/rooms/${encodeURIComponent(config.room)}`;
  const list = document.getElementById("messages");
  const scroller = document.getElementById("scroller");
  const status = document.getElementById("connection");
  const olderButton = document.getElementById("load-older");
  const typingLine = document.getElementById("typing");
  const presenceList = document.getElementById("presence");
  const presenceCount = document.getElementById("presence-count");
  const form = document.getElementById("composer");
  const deleted = new Set();

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function setState(state, label) {
    status.dataset.state = state;
    status.textContent = label;
  }

  function timeLabel(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  // Text with its http(s) links made clickable, built node by node.
  const LINK = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  function linkified(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(LINK)) {
      let url = null;
      try { url = new URL(match[0]); } catch (_) { url = null; }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
      fragment.append(document.createTextNode(text.slice(last, match.index)));
      const link = document.createElement("a");
      link.href = url.href;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      link.textContent = match[0];
      fragment.append(link);
      last = match.index + match[0].length;
    }
    fragment.append(document.createTextNode(text.slice(last)));
    return fragment;
  }

  async function call(method, url, data) {
    const options = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    };
    if (data !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data);
    }
    const response = await fetch(url, options);
    let body = null;
    if (response.status !== 204) {
      try { body = await response.json(); } catch (_) { body = null; }
    }
    return { response, body };
  }

  function fill(item, message) {
    item.replaceChildren();
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = message.user;
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    time.textContent = timeLabel(message.created_at);
    item.append(author, " ", time);
    if (message.edited_at) {
      const edited = document.createElement("span");
      edited.className = "edited";
      edited.textContent = "(edited)";
      item.append(" ", edited);
    }
    const mine = config.user && message.user === config.user;
    if (mine || config.isOwner) {
      const actions = document.createElement("span");
      actions.className = "actions";
      if (mine) actions.append(actionButton("Edit", "edit"));
      actions.append(actionButton("Delete", "delete"));
      item.append(actions);
    }
    const text = document.createElement("p");
    text.className = "text";
    text.append(linkified(message.text));
    item.append(text);
    item.dataset.text = message.text;
  }

  function actionButton(label, action) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "action";
    button.dataset.action = action;
    button.textContent = label;
    return button;
  }

  function find(id) {
    return list.querySelector(`li[data-id="${CSS.escape(String(id))}"]`);
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  }

  // Insert in id order, once: the page-load position may replay a message the page
  // shows, and the sender gets both the POST's answer and the event.
  function add(message) {
    if (find(message.id) || deleted.has(message.id)) return;
    const follow = atBottom();
    const item = document.createElement("li");
    item.className = "message";
    item.dataset.id = String(message.id);
    fill(item, message);
    let next = null;
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.id) < message.id) break;
      next = node;
    }
    list.insertBefore(item, next);
    if (follow) scroller.scrollTop = scroller.scrollHeight;
  }

  function update(message) {
    const item = find(message.id);
    if (item && !item.classList.contains("editing")) fill(item, message);
    else if (item) item.dataset.pending = JSON.stringify(message);
  }

  function remove(data) {
    deleted.add(data.id);
    const item = find(data.id);
    if (item) item.remove();
  }

  // History rendered with the page, then older pages on demand (by id, not offset).
  for (const message of JSON.parse(document.getElementById("chat-history").textContent)) add(message);
  scroller.scrollTop = scroller.scrollHeight;

  let loadingOlder = false;
  async function loadOlder() {
    if (loadingOlder || olderButton.hidden) return;
    loadingOlder = true;
    const first = list.firstElementChild;
    const url = first ? `${api}/messages/?before=${first.dataset.id}` : `${api}/messages/`;
    try {
      const { response, body } = await call("GET", url);
      if (!response.ok) return;
      const height = scroller.scrollHeight;
      const top = scroller.scrollTop;
      for (const message of body.messages) add(message);
      scroller.scrollTop = top + scroller.scrollHeight - height;
      olderButton.hidden = !body.has_more;
    } finally {
      loadingOlder = false;
    }
  }
  olderButton.addEventListener("click", loadOlder);
  new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadOlder();
  }, { root: scroller }).observe(olderButton);

  // Presence and typing.
  function showPresence(users) {
    presenceList.replaceChildren(...users.map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }));
    presenceCount.textContent = String(users.length);
  }

  const typists = new Map();
  function showTyping() {
    const names = [...typists.keys()];
    typingLine.textContent = names.length === 0 ? ""
      : names.length === 1 ? `${names[0]} is typing…`
      : `${names.join(", ")} are typing…`;
  }
  function typing(data) {
    if (data.user === config.user) return;
    clearTimeout(typists.get(data.user));
    typists.set(data.user, setTimeout(() => { typists.delete(data.user); showTyping(); }, 4000));
    showTyping();
  }
  function stoppedTyping(user) {
    if (!typists.has(user)) return;
    clearTimeout(typists.get(user));
    typists.delete(user);
    showTyping();
  }

  // The stream: opened from the position rendered with the page; afterwards the
  // browser sends Last-Event-ID by itself on every reconnect.
  let lastId = config.position;
  let source = null;
  function listen(event, handler) {
    source.addEventListener(event, (e) => {
      if (e.lastEventId) lastId = e.lastEventId;
      handler(JSON.parse(e.data));
    });
  }
  function connect() {
    const url = new URL(`/rooms/${encodeURIComponent(config.room)}/events/`, window.location.href);
    url.searchParams.set("last_event_id", lastId);
    source = new EventSource(url);
    source.addEventListener("open", () => setState("live", "live"));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (403, 5xx from a proxy...): the browser gives up; we retry slowly.
        setState("reconnecting", "offline, retrying…");
        setTimeout(connect, 5000);
      } else {
        setState("reconnecting", "reconnecting…");
      }
    });
    listen("message_created", (message) => { add(message); stoppedTyping(message.user); });
    listen("message_updated", update);
    listen("message_deleted", remove);
    listen("presence", (data) => showPresence(data.users));
    listen("typing", typing);
    source.addEventListener("reset", () => {
      // The log no longer holds our position: what the page shows may be stale.
      setState("reset", "reset, reloading…");
      source.close();
      setTimeout(() => window.location.reload(), 500);
    });
  }
  connect();

  if (!config.user) return;

  const tab = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2);
  function heartbeat() {
    call("POST", `${api}/presence/`, { tab }).catch(() => {});
  }
  heartbeat();
  setInterval(heartbeat, config.heartbeatSeconds * 1000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") heartbeat();
  });
  window.addEventListener("pageshow", (event) => { if (event.persisted) heartbeat(); });
  window.addEventListener("pagehide", () => {
    const data = new FormData();
    data.append("tab", tab);
    data.append("leave", "1");
    data.append("csrfmiddlewaretoken", csrfToken());
    navigator.sendBeacon(`${api}/presence/`, data);
  });

  // Edit and delete: buttons on one's own messages (and on all, for the room's owner).
  function startEdit(item) {
    item.classList.add("editing");
    const text = item.querySelector(".text");
    const editor = document.createElement("textarea");
    editor.className = "editor";
    editor.value = item.dataset.text;
    editor.maxLength = 4000;
    editor.setAttribute("aria-label", "Edit message");
    const save = actionButton("Save", "save");
    const cancel = actionButton("Cancel", "cancel");
    const box = document.createElement("div");
    box.className = "edit-box";
    box.append(editor, save, cancel);
    text.replaceWith(box);
    editor.focus();
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        saveEdit(item);
      } else if (event.key === "Escape") {
        endEdit(item);
      }
    });
  }
  function endEdit(item, message) {
    item.classList.remove("editing");
    const pending = item.dataset.pending;
    delete item.dataset.pending;
    fill(item, message || (pending ? JSON.parse(pending) : {
      id: Number(item.dataset.id), user: item.querySelector(".author").textContent,
      created_at: item.querySelector("time").dateTime, text: item.dataset.text,
      edited_at: item.querySelector(".edited") ? "yes" : null,
    }));
  }
  async function saveEdit(item) {
    const value = item.querySelector(".editor").value;
    const { response, body } = await call("PATCH", `${api}/messages/${item.dataset.id}/`, { text: value });
    if (response.ok) endEdit(item, body);
    else showError(body, response);
  }
  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = button.closest("li.message");
    const action = button.dataset.action;
    if (action === "edit") startEdit(item);
    else if (action === "cancel") endEdit(item);
    else if (action === "save") saveEdit(item);
    else if (action === "delete") {
      const { response, body } = await call("DELETE", `${api}/messages/${item.dataset.id}/`);
      if (response.ok) remove({ id: Number(item.dataset.id) });
      else showError(body, response);
    }
  });

  const error = document.getElementById("composer-error");
  function showError(body, response) {
    if (!error) return;
    error.textContent = (body && body.error) || `Could not do that (${response.status}).`;
    error.hidden = false;
  }

  if (!form) return;
  const textarea = form.querySelector("textarea");

  async function send() {
    const text = textarea.value;
    error.hidden = true;
    if (!text.trim()) {
      error.textContent = "A message cannot be empty.";
      error.hidden = false;
      return;
    }
    try {
      const { response, body } = await call("POST", `${api}/messages/`, { text });
      if (response.status === 201) {
        // Keep whatever was typed while this one was on its way.
        if (textarea.value === text) textarea.value = "";
        add(body); // the echo from the stream is recognised by its id
        scroller.scrollTop = scroller.scrollHeight;
      } else {
        showError(body, response);
      }
    } catch (_) {
      error.textContent = "Could not reach the server; your message is still here.";
      error.hidden = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  let lastTyping = 0;
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", () => {
    const now = Date.now();
    if (textarea.value.trim() && now - lastTyping > 3000) {
      lastTyping = now;
      call("POST", `${api}/typing/`, {}).catch(() => {});
    }
  });
})();

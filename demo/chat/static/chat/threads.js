// Replies and threads on the room page (docs/chat.md, "Replies and threads"): a Reply
// button on every message, the composer's "Replying to…" bar, what a reply answers
// drawn above its text (a link to that message), "N replies" under a thread's first
// message, and the thread panel: the first message, its replies, live, and a composer of
// its own. chat.js calls this part through `window.chatParts` (see `page` there).
// Text goes in as text nodes only.
"use strict";

(function () {
  (window.chatParts = window.chatParts || []).push((page) => {
    const { api, call, me } = page;
    const panel = document.getElementById("thread-panel");
    const panelList = document.getElementById("thread-replies");
    const panelRoot = document.getElementById("thread-root");
    const panelCount = document.getElementById("thread-count");
    const panelForm = document.getElementById("thread-composer");
    const panelText = document.getElementById("thread-text");
    const panelError = document.getElementById("thread-error");
    const replying = document.getElementById("replying");
    const replyingText = document.getElementById("replying-text");
    const clock = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", hour12: false });

    //: The message the composer answers, if any: {id, user, excerpt}.
    let replyTarget = null;
    //: The thread open in the panel (its first message's id), and what opened it.
    let openThread = null;
    let opener = null;
    //: Texts of answered messages this page fetched (a reply to a message it does not show).
    const excerpts = new Map();

    function excerptOf(id) {
      const item = page.find(id);
      if (item) return shorten(item.dataset.text || filesNamed(item.dataset.files));
      return excerpts.get(id);
    }
    // A message that is its files alone (attachments.js) is told by their names.
    function gist(message) {
      const names = (message.attachments || []).map((file) => file.name).join(", ");
      return shorten(message.text || filesNamed(names));
    }
    function filesNamed(names) {
      return names ? `📎 ${names}` : "";
    }
    function shorten(text) {
      const flat = text.split(/\s+/).join(" ").trim();
      return flat.length <= 200 ? flat : `${flat.slice(0, 199)}…`;
    }
    async function fetchExcerpt(id) {
      if (excerpts.has(id)) return;
      excerpts.set(id, "…");
      try {
        const { response, body } = await call("GET", `${api}/messages/${id}/`);
        excerpts.set(id, response.ok ? gist(body) : null);
      } catch (_) { excerpts.delete(id); return; }
      for (const quote of document.querySelectorAll(`.quote[data-reply-to="${id}"]`)) drawQuoteText(quote);
    }

    function drawQuoteText(quote) {
      const id = Number(quote.dataset.replyTo);
      const text = quote.querySelector(".quote-text");
      const excerpt = excerptOf(id);
      if (quote.dataset.gone === "1" || excerpt === null) {
        quote.dataset.gone = "1";
        quote.querySelector(".quote-user").textContent = "";
        text.textContent = "a deleted message";
        return;
      }
      text.textContent = excerpt === undefined ? "…" : excerpt;
    }

    // What a reply answers: "↪ alice: the text", a button leading to that message.
    function quote(message) {
      const answered = message.reply_to;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "quote";
      button.tabIndex = -1;
      button.dataset.replyTo = String(answered.id);
      const user = document.createElement("span");
      user.className = "quote-user";
      user.textContent = answered.user ? `${answered.user}: ` : "";
      const text = document.createElement("span");
      text.className = "quote-text";
      const hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = "In reply to ";
      button.append(hidden, "↪ ", user, text);
      if (answered.user === null) button.dataset.gone = "1";
      else if (answered.excerpt !== undefined && !page.find(answered.id)) excerpts.set(answered.id, answered.excerpt);
      drawQuoteText(button);
      if (excerptOf(answered.id) === undefined && answered.user !== null) fetchExcerpt(answered.id);
      button.addEventListener("click", () => page.jumpTo(answered.id));
      return button;
    }

    function repliesLabel(thread) {
      const count = `${thread.replies} ${thread.replies === 1 ? "reply" : "replies"}`;
      return thread.last_reply_at ? `${count} · last ${clock.format(new Date(thread.last_reply_at))}` : count;
    }

    // A message's text, or its files when it has some (attachments.js draws them after it).
    // What the replies' count goes after: the message's files, its text, or the editor
    // that stands in for the text while the message is edited.
    function contentEnd(item) {
      return item.querySelector(":scope > .files") || item.querySelector(":scope > .text")
        || item.querySelector(":scope > .edit-box") || item.lastElementChild;
    }

    // "N replies" under a thread's first message: opens the thread.
    function repliesButton(thread) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "replies";
      button.tabIndex = -1;
      button.dataset.thread = String(thread.id);
      button.textContent = repliesLabel(thread);
      button.setAttribute("aria-label", `${repliesLabel(thread)}: open the thread`);
      button.addEventListener("click", () => open(thread.id, button));
      return button;
    }

    function showCount(thread) {
      if (!thread) return;
      const root = page.find(thread.id);
      if (root) {
        const old = root.querySelector(".replies");
        if (thread.replies === 0) { if (old) old.remove(); }
        else if (old) {
          old.textContent = repliesLabel(thread);
          old.setAttribute("aria-label", `${repliesLabel(thread)}: open the thread`);
        } else contentEnd(root).after(repliesButton(thread));
      }
      if (openThread === thread.id) panelCount.textContent = repliesLabel(thread);
    }

    function fill(item, message) {
      if (message.reply_to) {
        item.dataset.replyTo = String(message.reply_to.id);
        item.querySelector(".meta").after(quote(message));
      }
      const thread = message.thread;
      if (thread && thread.id === message.id && thread.replies > 0) {
        contentEnd(item).after(repliesButton(thread));
      }
      const actions = item.querySelector(".actions");
      if (actions && page.form) {
        const reply = page.actionButton("Reply", "reply", "Reply to this message");
        reply.addEventListener("click", () => startReply(message));
        actions.prepend(reply);
      }
    }

    // The composer's reply: the bar above it says to what; Escape or ✕ cancels.
    function startReply(message) {
      replyTarget = { id: message.id, user: message.user };
      replyingText.textContent = `${message.user}: ${gist(message)}`;
      replying.hidden = false;
      page.textarea.focus();
    }
    function cancelReply() {
      replyTarget = null;
      replying.hidden = true;
    }
    if (replying) {
      document.getElementById("cancel-reply").addEventListener("click", () => {
        cancelReply();
        page.textarea.focus();
      });
      page.textarea.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && replyTarget) { event.preventDefault(); cancelReply(); }
      });
    }

    // The thread panel.
    function panelItem(message) {
      const item = document.createElement("li");
      item.className = "message in-thread";
      item.dataset.id = String(message.id);
      const meta = document.createElement("div");
      meta.className = "meta";
      const author = document.createElement("span");
      author.className = "author";
      author.textContent = message.user;
      const time = document.createElement("time");
      time.dateTime = message.created_at;
      time.textContent = page.formatTime(new Date(message.created_at));
      meta.append(author, " ", time);
      if (message.edited_at) {
        const edited = document.createElement("span");
        edited.className = "edited";
        edited.textContent = " (edited)";
        meta.append(edited);
      }
      const text = document.createElement("p");
      text.className = "text";
      text.append(page.rendered(message.text));
      item.append(meta, text);
      // Its files, as the room's list draws them (attachments.js).
      const files = message.attachments || [];
      text.hidden = message.text === "";
      if (files.length && window.chatAttachments) item.append(window.chatAttachments.rendered(files));
      return item;
    }
    function showInPanel(message) {
      const old = panelList.querySelector(`li[data-id="${message.id}"]`);
      const item = panelItem(message);
      if (old) { old.replaceWith(item); return; }
      let next = null;
      for (const node of [...panelList.children].reverse()) {
        if (Number(node.dataset.id) < message.id) break;
        next = node;
      }
      panelList.insertBefore(item, next);
    }

    const GONE = "The first message of this thread was deleted: it takes no more replies.";
    // A thread whose first message is gone takes no reply (the server refuses them): its
    // composer goes, until another thread is open.
    function showGone() {
      panelRoot.replaceChildren(note(GONE));
      if (panelForm) panelForm.hidden = true;
    }
    function note(text) {
      const item = document.createElement("li");
      item.className = "note";
      item.textContent = text;
      return item;
    }

    async function open(threadId, from) {
      opener = from || document.activeElement;
      openThread = threadId;
      panel.dataset.thread = String(threadId); // a reload the page makes reopens it
      panel.hidden = false;
      document.body.classList.add("thread-open");
      panelList.replaceChildren();
      if (panelForm) panelForm.hidden = false;
      panelRoot.replaceChildren(note("Loading…"));
      panelCount.textContent = "";
      const { response, body } = await call("GET", `${api}/messages/${threadId}/thread/?limit=100`);
      if (openThread !== threadId) return;
      if (!response.ok) {
        panelRoot.replaceChildren(note((body && body.error) || "This thread cannot be shown."));
        return;
      }
      if (body.root) panelRoot.replaceChildren(panelItem(body.root)); else showGone();
      for (const reply of body.replies) showInPanel(reply);
      const thread = body.root ? body.root.thread : (body.replies[0] || {}).thread;
      panelCount.textContent = thread ? repliesLabel(thread) : "No replies yet";
      if (panelText && !page.ended() && !panelForm.hidden) panelText.focus();
      else document.getElementById("thread-close").focus();
    }
    function close() {
      openThread = null;
      delete panel.dataset.thread;
      panel.hidden = true;
      document.body.classList.remove("thread-open");
      if (opener && document.contains(opener)) opener.focus();
      else if (page.textarea) page.textarea.focus();
    }
    if (panel) {
      document.getElementById("thread-close").addEventListener("click", close);
      panel.addEventListener("keydown", (event) => {
        if (event.key === "Escape") { event.preventDefault(); close(); }
      });
    }
    // The panel's files, as the room's composer has them (attachments.js): picked, pasted
    // into its box or dropped on the panel.
    const panelSend = document.getElementById("thread-send");
    const panelStatus = document.getElementById("thread-attach-status");
    const panelFiles = panelForm && window.chatAttachments ? window.chatAttachments.picker({
      input: document.getElementById("thread-file-input"),
      button: document.getElementById("thread-attach"),
      chips: document.getElementById("thread-attached"),
      status: panelStatus,
      dropZone: panel,
      textarea: panelText,
      limits: page.config.attachments,
      onError(text) { panelError.textContent = text; panelError.hidden = false; },
      onChange() { panelError.hidden = true; },
    }) : null;
    if (panelForm) {
      panelForm.addEventListener("submit", (event) => { event.preventDefault(); sendInThread(); });
      panelText.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          sendInThread();
        }
      });
    }
    // A reply with files goes as a multipart form, its upload's progress on the Reply
    // button; one without, as JSON.
    let uploading = false; // files on their way: Reply is disabled, and so is Enter
    function postReply(text, files, threadId) {
      const fields = { text, reply_to: threadId };
      if (!files.length) return call("POST", `${api}/messages/`, fields);
      uploading = true;
      return window.chatAttachments.postFiles(`${api}/messages/`, page.csrfToken(), fields, files, {
        button: panelSend, status: panelStatus, enabled: () => !page.ended(),
      }).finally(() => { uploading = false; });
    }
    // Replies on their way: a second Enter before the first is answered would post the
    // same reply twice. Another reply may go meanwhile.
    const onItsWay = new Set();
    async function sendInThread() {
      if (uploading || onItsWay.has(panelText.value) || openThread === null) return;
      const text = panelText.value;
      const files = panelFiles ? panelFiles.files : [];
      panelError.hidden = true;
      if (!text.trim() && !files.length) {
        panelError.textContent = "A reply cannot be empty.";
        panelError.hidden = false;
        return;
      }
      const threadId = openThread;
      let answer;
      onItsWay.add(text);
      try {
        answer = await postReply(text, files, threadId);
      } catch (_) {
        panelError.textContent = "Could not reach the server; your reply is still here.";
        panelError.hidden = false;
        return;
      } finally {
        onItsWay.delete(text);
      }
      const { response, body } = answer;
      if (response.status === 201) {
        // Keep whatever was typed (or picked) while this one was on its way.
        if (panelText.value === text) panelText.value = "";
        if (files.length) panelFiles.clear();
        if (openThread === threadId) showInPanel(body);
        showCount(body.thread);
      } else {
        panelError.textContent = (body && body.error) || `Could not send (${response.status}).`;
        panelError.hidden = false;
      }
    }

    if (page.config.thread) open(page.config.thread, null);

    return {
      fill,
      outgoing() { return replyTarget ? { reply_to: replyTarget.id } : {}; },
      sent() { cancelReply(); },
      created(message) {
        showCount(message.thread);
        if (message.thread && openThread === message.thread.id && message.id !== openThread) showInPanel(message);
      },
      updated(message) {
        // An answered message edited: the quotes of its replies follow.
        for (const quoteNode of document.querySelectorAll(`.quote[data-reply-to="${message.id}"]`)) {
          excerpts.set(message.id, gist(message));
          drawQuoteText(quoteNode);
        }
        if (openThread === null) return;
        if (message.id === openThread) panelRoot.replaceChildren(panelItem(message));
        else if (panelList.querySelector(`li[data-id="${message.id}"]`)) showInPanel(message);
      },
      deleted(data) {
        if (data.thread) showCount(data.thread);
        excerpts.set(data.id, null);
        for (const quoteNode of document.querySelectorAll(`.quote[data-reply-to="${data.id}"]`)) {
          quoteNode.dataset.gone = "1";
          drawQuoteText(quoteNode);
        }
        if (replyTarget && replyTarget.id === data.id) cancelReply();
        if (openThread === null) return;
        if (data.id === openThread) {
          // The reply box goes: the focus it had moves to the panel's ✕.
          const hadFocus = Boolean(panelForm && panelForm.contains(document.activeElement));
          showGone();
          if (hadFocus) document.getElementById("thread-close").focus();
        }
        const item = panelList.querySelector(`li[data-id="${data.id}"]`);
        if (item) item.remove();
      },
    };
  });
})();

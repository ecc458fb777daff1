// The chat's pages: the room list (live unread counts) and a room (live messages, edits,
// deletes, presence, typing and unread counts over one stream of pgsse.js, which
// {% pgsse_script %} loads first, with unread.js; posting with fetch()).
// Text is only ever inserted as text nodes (textContent); links are built as <a> elements
// whose href is checked to be http(s). No innerHTML anywhere.
"use strict";

(function () {
  const configNode = document.getElementById("chat-config");
  if (!configNode) return;
  const config = JSON.parse(configNode.textContent);
  // The tab's title without its unread count (a room renamed changes it).
  let baseTitle = document.title;

  // What the user was writing survives the reloads the page makes by itself (a room
  // left or taken away: the stream's rooms changed): the message box, and the thread
  // panel with its reply, kept for this tab (sessionStorage) and put back once.
  const DRAFT_KEY = `chat-draft:${location.pathname}`;
  function reloadKeepingDrafts() {
    const text = document.getElementById("text");
    const panel = document.getElementById("thread-panel");
    const reply = document.getElementById("thread-text");
    const draft = {
      text: text ? text.value : "",
      thread: panel && !panel.hidden && panel.dataset.thread ? Number(panel.dataset.thread) : null,
      reply: reply ? reply.value : "",
    };
    try {
      if (draft.text || draft.thread) sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
    } catch (_) { /* no storage here: reload all the same */ }
    window.location.reload();
  }
  let keptDraft = null;
  try {
    keptDraft = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || "null");
    sessionStorage.removeItem(DRAFT_KEY);
  } catch (_) { keptDraft = null; }
  if (keptDraft && keptDraft.thread && !config.thread) config.thread = keptDraft.thread;

  // ---------------------------------------------------------------------------------
  // Requests.

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
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

  // ---------------------------------------------------------------------------------
  // The stream, through pgsse.js (docs/javascript.md): it starts from the position the
  // page was rendered with, resumes after every cut with what was missed, waits and
  // backs off when the server refuses for a while (429, 503: Retry-After), and stops
  // for good when access is gone: 401 once logged out, 404 for a private room the user
  // may no longer see (the chat answers so for rooms one may not see). The page shows
  // its state in the badge at the top, and says why when it has ended for good.

  const status = document.getElementById("connection");
  const notice = document.getElementById("stream-notice");
  const LABELS = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    reset: "reset, reloading…",
    denied: "no access",
    closed: "disconnected",
  };

  function showState(state, label) {
    if (!status) return;
    status.dataset.state = state;
    status.textContent = label || LABELS[state];
  }

  function link(href, text) {
    const anchor = document.createElement("a");
    anchor.href = href;
    anchor.textContent = text;
    return anchor;
  }

  // Why the stream ended for good, for people, and where to go from here.
  function showEnd(state, info) {
    const loggedOut = info.status === 401 || Boolean(info.url);
    let text;
    let next;
    if (loggedOut) {
      showState(state, "logged out");
      text = "You are logged out: this page no longer receives anything.";
      next = link(`/accounts/login/?next=${encodeURIComponent(location.pathname)}`, "Log in again");
    } else if (info.status === 404 || info.status === 403) {
      showState(state, "no access");
      text = config.room
        ? `You no longer have access to ${config.roomLabel} (you left it, were removed, or it was deleted): nothing more will arrive here.`
        : "You may no longer follow this page.";
      next = link("/", "Back to the rooms");
    } else {
      showState(state);
      text = `The server ended this page's live updates${info.status ? ` (HTTP ${info.status})` : ""}: reload the page to try again.`;
      next = null;
    }
    if (!notice) return;
    notice.replaceChildren(text, ...(next ? [" ", next] : []));
    notice.hidden = false;
  }

  // `events`: the handler of every event type the page listens to (pgsse.js listens to
  // these only). `path`: the stream's path, its `?follow=` query added. `hooks.reconnected()`:
  // live again after a cut; `hooks.ended()`: the stream has ended for good;
  // `hooks.followed(answer)`: the rooms followed changed (see `refollow`).
  //
  // The network is pgsse.js's: offline, the stream waits for the network (the notice
  // says so); back online, it reconnects at once instead of waiting out its retry timer
  // (up to 30 s), from the last position seen. A wait the server asked for (429 or 503
  // with Retry-After) is still waited out.
  //: The stream has ended for good (see stopEverything below).
  let ended = false;
  function follow(path, events, hooks) {
    let reloading = false;
    let wasLive = false;
    let replacing = false; // a stream closed by us, to open another: not an end
    let stream = null;
    function open(position, query) {
      stream = pgsse.connect(path + query, {
        position,
        events,
        onstate(state, info) {
          if (reloading || replacing) return;
          if (state === "live") {
            if (wasLive && hooks.reconnected) hooks.reconnected();
            wasLive = true;
            showState(state);
          } else if (state === "reconnecting") {
            const label = info.offline ? "offline, waiting for the network…"
              : info.delay ? `reconnecting in ${Math.ceil(info.delay / 1000)} s…` : null;
            showState(state, label);
          } else if (state === "denied" || state === "closed") {
            if (hooks.ended) hooks.ended();
            showEnd(state, info);
          } else {
            showState(state);
          }
        },
        onreset() {
          // The log no longer holds the page's position: what the page shows may be stale,
          // and the events in between will not come. Show it afresh.
          reloading = true;
          stream.close();
          showState("reset");
          setTimeout(reloadKeepingDrafts, 500);
        },
      });
    }
    open(config.position, config.followQuery);

    // The rooms followed live change while the page is open (an invitation, a room
    // joined, a new direct conversation, a room left): the stream reopens over the new
    // set, from its position carried over by the server (GET /api/follow/, which also
    // counts the new rooms): nothing of the rooms kept is lost or shown twice, the new
    // ones start from now. One change at a time, in order. While the server is asked,
    // no stream is open (and the network's events open none).
    let queue = Promise.resolve();
    async function switchTo(wanted) {
      const before = config.follow || [];
      if (reloading || ended || String(before) === String(wanted)) return;
      replacing = true;
      stream.close();
      const query = new URLSearchParams({ last_event_id: stream.position });
      if (before.length) query.set("from", before.join(","));
      if (wanted.length) query.set("follow", wanted.join(","));
      if (config.page === "room") query.set("room", config.room);
      let answer = null;
      try {
        answer = await call("GET", `/api/follow/?${query}`);
      } catch (_) {
        // The server cannot be reached: carry on as before, and try again in a while.
        replacing = false;
        open(stream.position, config.followQuery);
        setTimeout(() => { queue = queue.then(() => switchTo(wanted)); }, 3000);
        return;
      }
      replacing = false;
      if (!answer.response.ok) {
        // The page cannot carry on exactly from here: show it afresh.
        reloading = true;
        showState("reset");
        reloadKeepingDrafts();
        return;
      }
      config.follow = answer.body.follow;
      config.followQuery = answer.body.followQuery;
      config.position = answer.body.position;
      if (hooks.followed) hooks.followed(answer.body);
      open(answer.body.position, answer.body.followQuery);
    }
    return {
      refollow(wanted) { queue = queue.then(() => switchTo(wanted)); return queue; },
    };
  }

  // ---------------------------------------------------------------------------------
  // Unread counts, on both pages: badges in the room lists, and the total in the tab's
  // title while the tab is hidden. The page counts for itself (unread.js): from the
  // counts it was rendered with, the messages of the rooms its stream follows, and the
  // read positions of the user's other pages (`read` on the user's own channel). Rooms
  // past the ones followed live are asked for again now and then. Mentions may raise a
  // browser notification, once the user asked for them with the button (never on load).

  const me = config.user;
  const currentRoom = config.page === "room" ? config.roomId : null;
  const counts = new chatUnread.UnreadCounts(config.unread || [], me);
  // The rooms the stream follows for their counts (and the page's own); they change
  // when the user joins or leaves a room, or is invited (see `roomAdded` below).
  let followed = new Set(config.follow || []);
  if (currentRoom !== null) followed.add(currentRoom);
  const people = new chatProfiles.People(config.people || {});
  const sidebar = new chatSidebar.Sidebar({
    me, people, directPeople: config.directPeople, currentRoom,
  });

  function showBadge(roomId) {
    const count = counts.get(roomId);
    const unread = count ? count.unread : 0;
    const mentions = count ? count.mentions : 0;
    // The open room's own count is not shown while it is being read.
    const shown = roomId === currentRoom && document.visibilityState === "visible" ? 0 : unread;
    for (const badge of document.querySelectorAll(`[data-unread-for="${CSS.escape(String(roomId))}"]`)) {
      const visible = document.createElement("span");
      visible.setAttribute("aria-hidden", "true");
      visible.textContent = (mentions ? "@" : "") + String(shown);
      const spoken = document.createElement("span");
      spoken.className = "visually-hidden";
      spoken.textContent = `${shown} unread` + (mentions ? `, ${mentions} mentioning you` : "");
      badge.replaceChildren(visible, spoken);
      badge.classList.toggle("mentioned", mentions > 0);
      badge.hidden = shown === 0;
    }
  }

  function showTitle() {
    const total = counts.total();
    document.title = document.visibilityState === "hidden" && total > 0 ? `(${total}) ${baseTitle}` : baseTitle;
  }

  // At phone width the room list is folded behind a button (sidebar_toggle.js): it shows the
  // other rooms' unread total, so that nothing waiting there goes unseen.
  const sidebarUnread = document.getElementById("sidebar-unread");
  function showSidebarTotal() {
    if (!sidebarUnread) return;
    let unread = 0;
    let mentions = 0;
    for (const [roomId, count] of counts.rooms) {
      if (roomId === currentRoom) continue;
      unread += count.unread;
      mentions += count.mentions;
    }
    const visible = document.createElement("span");
    visible.setAttribute("aria-hidden", "true");
    visible.textContent = (mentions ? "@" : "") + String(unread);
    const spoken = document.createElement("span");
    spoken.className = "visually-hidden";
    spoken.textContent = `, ${unread} unread in other rooms` + (mentions ? `, ${mentions} mentioning you` : "");
    sidebarUnread.replaceChildren(visible, spoken);
    sidebarUnread.classList.toggle("mentioned", mentions > 0);
    sidebarUnread.hidden = unread === 0;
  }

  function showCount(roomId) {
    showBadge(roomId);
    showTitle();
    showSidebarTotal();
  }
  showSidebarTotal();

  function notify(title, body) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible") return;
    try { new Notification(title, { body, tag: "pgsse-chat-mention" }); } catch (_) { /* unsupported here */ }
  }

  // Text with its http(s) links and @mentions found (shared with the room page's drawing).
  const TOKENS = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]|(?<![\w@.+-])@[\w.+-]*[\w+-]/g;
  function mentionsMe(text) {
    if (!me) return false;
    for (const match of text.matchAll(TOKENS)) if (match[0] === `@${me}`) return true;
    return false;
  }
  // A mention, or a reply to one of your messages (counted alike, chat/unread.py).
  function addressesMe(message) {
    return mentionsMe(message.text) || Boolean(me && message.reply_to && message.reply_to.user === me);
  }

  // The server's counts of some rooms, again: those the stream does not follow (now and
  // then while the page is visible), and a room whose read position fell among messages
  // the page knows by number only.
  async function refreshCounts(roomIds) {
    if (!me) return;
    for (let start = 0; start < roomIds.length; start += config.unreadRoomsPerRequest) {
      const some = roomIds.slice(start, start + config.unreadRoomsPerRequest);
      try {
        const { response, body } = await call("GET", `/api/unread/?rooms=${some.join(",")}`);
        if (!response.ok) return;
        for (const data of body.rooms) {
          counts.refreshed(data);
          showCount(data.room_id);
        }
      } catch (_) { return; /* offline: the next refresh will do */ }
    }
  }
  function notFollowed() {
    return [...counts.rooms.keys()].filter((roomId) => !followed.has(roomId));
  }
  if (me && config.unreadRefreshSeconds) {
    setInterval(() => {
      if (document.visibilityState === "visible") refreshCounts(notFollowed());
    }, config.unreadRefreshSeconds * 1000);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") refreshCounts(notFollowed());
    });
  }

  // Events of the rooms followed for their counts (the room page's own room included).
  function countCreated(message) {
    const mentioned = addressesMe(message);
    if (!counts.created(message, mentioned)) return;
    showCount(message.room_id);
    if (mentioned && message.room_id !== currentRoom) {
      const where = sidebar.labelOf(message.room_id) || `#${message.room}`;
      notify(`${people.name(message.user, message.name)} mentioned you in ${where}`, message.text.slice(0, 140));
    }
  }
  function countUpdated(message) {
    if (counts.updated(message, addressesMe(message))) showCount(message.room_id);
  }
  function countDeleted(data) {
    if (counts.deleted(data)) showCount(data.room_id);
  }
  // The user's own channel (chat/own_channel.py).
  const ownEvents = {
    read(data) {
      const changed = counts.readUpTo(data.room_id, data.up_to);
      if (changed === "stale") refreshCounts([data.room_id]);
      if (changed) showCount(data.room_id);
    },
    removed(data) {
      if (counts.removed(data.room_id)) showCount(data.room_id);
      sidebar.left(data.room_id);
      if (data.room_id === currentRoom && roomParts) roomParts.membership(false);
      stopFollowing(data.room_id);
    },
    invited: roomAdded,
    joined: roomAdded,
  };

  // ---------------------------------------------------------------------------------
  // The sidebar, live (sidebar.js), from the directory channel (public rooms, people's
  // names: chat/directory.py) and the user's own channel (rooms joined, invitations, new
  // direct conversations, private rooms renamed or deleted: chat/own_channel.py). A room
  // the user is now in is followed for its counts at once: the stream reopens over it
  // (`live.refollow`), carrying its position over.

  let live = null; // what follow() returned: the stream, and its refollow()
  let roomParts = null; // the room page's parts (room_parts.js)

  function roomAdded(data) {
    sidebar.joined(data);
    if (data.room_id === currentRoom) {
      if (roomParts) roomParts.membership(true);
      refreshCounts([data.room_id]);
      return;
    }
    if (followed.has(data.room_id)) return;
    // The newest room first: the least active one followed gives way (its count is then
    // refreshed now and then, as the other rooms' are).
    const wanted = [data.room_id, ...(config.follow || [])].slice(0, config.liveRooms);
    if (live) live.refollow(wanted);
  }

  function stopFollowing(roomId) {
    if (!live || !(config.follow || []).includes(roomId)) return;
    live.refollow(config.follow.filter((id) => id !== roomId));
  }

  function followedNow(answer) {
    followed = new Set(answer.follow);
    if (currentRoom !== null) followed.add(currentRoom);
    for (const data of answer.unread) {
      counts.refreshed(data);
      showCount(data.room_id);
    }
  }

  function roomGone(data) {
    sidebar.gone(data.room_id, !data.deleted);
    if (!data.deleted) return; // a public room made private: its members keep it
    if (counts.removed(data.room_id)) {
      showTitle();
      showSidebarTotal();
    }
    // A room page of the deleted room learns it from its stream's end (its channels are
    // purged, which ends it; its reconnect is refused): see showEnd.
    stopFollowing(data.room_id);
  }

  const sidebarEvents = {
    room(data) {
      const name = sidebar.entryName(data);
      if (data.private) sidebar.changed(data);
      else sidebar.listed(data);
      if (data.room_id === currentRoom && roomParts) {
        roomParts.changed(data, name);
        baseTitle = `${config.roomLabel} · pgsse chat`;
        showTitle();
      }
    },
    room_gone: roomGone,
    person(data) {
      people.rename(data.user, data.name);
      sidebar.renamed();
    },
  };

  const notifyButton = document.getElementById("notify-mentions");
  if (notifyButton && "Notification" in window && Notification.permission === "default") {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", async () => {
      const answer = await Notification.requestPermission();
      notifyButton.hidden = answer !== "default";
    });
  }

  if (config.page === "index") {
    document.addEventListener("visibilitychange", showTitle);
    live = follow("/events/me/", {
      ...ownEvents,
      ...sidebarEvents,
      message_created: countCreated,
      message_updated: countUpdated,
      message_deleted: countDeleted,
    }, { followed: followedNow });
    return;
  }

  // ---------------------------------------------------------------------------------
  // The room page.

  const api = `/api/rooms/${encodeURIComponent(config.room)}`;
  const list = document.getElementById("messages");
  const scroller = document.getElementById("scroller");
  const olderButton = document.getElementById("load-older");
  const emptyNote = document.getElementById("empty-room");
  const pill = document.getElementById("new-messages");
  const typingLine = document.getElementById("typing");
  const presenceList = document.getElementById("presence");
  const presenceCount = document.getElementById("presence-count");
  const form = document.getElementById("composer");
  const textarea = form ? form.querySelector("textarea") : null;
  if (keptDraft && textarea && keptDraft.text && !textarea.value) textarea.value = keptDraft.text;
  const keptReply = document.getElementById("thread-text");
  if (keptDraft && keptReply && keptDraft.reply && !keptReply.value) keptReply.value = keptDraft.reply;
  const deleted = new Set();
  //: The history shown does not reach the newest message (the page opened on an older
  //: one, ?message=): live messages wait in `later` until the reader scrolls down to them.
  let hasNewer = Boolean(config.hasNewer);
  const later = new Map();
  const newerButton = document.getElementById("load-newer");
  //: The newest message id of each author this page has shown (for typing notices).
  const newestBy = new Map();

  const clock = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", hour12: false });
  const fullDate = new Intl.DateTimeFormat([], { dateStyle: "full", timeStyle: "short" });
  const dayFormat = new Intl.DateTimeFormat([], { weekday: "long", day: "numeric", month: "long", year: "numeric" });

  function dayKey(date) {
    return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
  }
  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(date) === dayKey(today)) return "Today";
    if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
    return dayFormat.format(date);
  }

  // Text with its http(s) links made clickable and its @mentions marked, node by node.
  function rendered(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(TOKENS)) {
      let node = null;
      if (match[0].startsWith("@")) {
        node = document.createElement("span");
        node.className = match[0].slice(1) === me ? "mention me" : "mention";
        node.textContent = match[0];
      } else {
        let url = null;
        try { url = new URL(match[0]); } catch (_) { url = null; }
        if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
        node = document.createElement("a");
        node.href = url.href;
        node.rel = "noopener noreferrer nofollow";
        node.target = "_blank";
        node.textContent = match[0];
      }
      fragment.append(document.createTextNode(text.slice(last, match.index)), node);
      last = match.index + match[0].length;
    }
    fragment.append(document.createTextNode(text.slice(last)));
    return fragment;
  }

  function actionButton(label, action, extraLabel) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "action";
    button.dataset.action = action;
    button.tabIndex = -1; // reachable from the message (see "Keyboard" below), not a tab stop
    button.textContent = label;
    if (extraLabel) button.setAttribute("aria-label", extraLabel);
    return button;
  }

  // What an edit or a delete question replaced in an item, to put back if it is cancelled
  // (see "Edit and delete" below).
  const putBack = new WeakMap();

  // Draws a message in its item, again on every edit. An item that has the focus keeps
  // it (an edit arriving from the stream while the reader is on the message or one of its
  // buttons), and its buttons stay reachable with Tab (see "Keyboard" below).
  function fill(item, message) {
    putBack.delete(item);
    const focused = item.contains(document.activeElement) ? document.activeElement : null;
    const action = focused && focused !== item ? focused.dataset.action : null;
    item.replaceChildren();
    const created = new Date(message.created_at);
    const head = document.createElement("div");
    head.className = "meta";
    const author = document.createElement("span");
    author.className = "author";
    author.dataset.person = message.user; // a new display name redraws it (profiles.js)
    author.textContent = people.name(message.user, message.name);
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    time.title = fullDate.format(created);
    const short = document.createElement("span");
    short.setAttribute("aria-hidden", "true");
    short.textContent = clock.format(created);
    const long = document.createElement("span");
    long.className = "visually-hidden";
    long.textContent = fullDate.format(created);
    time.append(short, long);
    head.append(people.avatar(message.user, author.textContent), author, " ", time);
    if (message.edited_at) {
      const edited = document.createElement("span");
      edited.className = "edited";
      edited.textContent = "(edited)";
      head.append(" ", edited);
    }
    const mine = Boolean(me) && message.user === me;
    // Shown on hover and focus only (chat.css), never as tab stops before the composer.
    // A room's owner deletes any message in it: others' messages have a Delete button
    // that only shows while the page's user owns the room (`.owner-only`, chat.css), so
    // that ownership handed over shows at once (room_parts.js).
    const ownable = Boolean(me) && !config.direct;
    if (mine || form || ownable) {
      const actions = document.createElement("span");
      actions.className = "actions";
      if (mine) actions.append(actionButton("Edit", "edit", "Edit this message"));
      if (mine || ownable) {
        const remove = actionButton("Delete", "delete", "Delete this message");
        if (!mine) remove.classList.add("owner-only");
        actions.append(remove);
      }
      head.append(actions);
    }
    const text = document.createElement("p");
    text.className = "text";
    text.append(rendered(message.text));
    item.append(head, text);
    // What other scripts draw of a message (attachments.js: its files; threads.js: what it
    // answers, its replies; reactions.js: its reactions), in the actions and after the text.
    for (const part of parts) if (part.fill) part.fill(item, message);
    item.dataset.text = message.text;
    item.dataset.user = message.user;
    item.dataset.created = message.created_at;
    item.classList.toggle("mine", mine);
    item.classList.toggle("mentions-me", !mine && addressesMe(message));
    if (focused) {
      for (const button of item.querySelectorAll("button")) button.tabIndex = 0;
      const same = action && item.querySelector(`button[data-action="${CSS.escape(action)}"]`);
      (same || item).focus();
    }
  }

  function find(id) {
    return list.querySelector(`li.message[data-id="${CSS.escape(String(id))}"]`);
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  }

  function toBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    pill.hidden = true;
  }

  // Day dividers, the first-unread divider, and runs of one author's messages (within
  // five minutes) grouped under one name: recomputed after every change, in place.
  const GROUP_MS = 5 * 60 * 1000;
  let firstUnreadId = null;
  function decorate() {
    for (const divider of list.querySelectorAll("li.divider")) divider.remove();
    let previous = null;
    for (const item of list.querySelectorAll("li.message")) {
      const created = new Date(item.dataset.created);
      const newDay = !previous || dayKey(new Date(previous.dataset.created)) !== dayKey(created);
      if (newDay) item.before(divider("day", dayLabel(created)));
      if (Number(item.dataset.id) === firstUnreadId) item.before(divider("first-unread", "New messages"));
      const grouped = !newDay && previous && previous.dataset.user === item.dataset.user
        && created - new Date(previous.dataset.created) < GROUP_MS
        && Number(item.dataset.id) !== firstUnreadId;
      item.classList.toggle("continued", Boolean(grouped));
      previous = item;
    }
    emptyNote.hidden = previous !== null;
  }
  function divider(kind, label) {
    const item = document.createElement("li");
    item.className = `divider ${kind}`;
    // Seen, not announced: each time says its full date to screen readers already, and
    // the list's live region must not repeat dividers as they are redrawn.
    item.setAttribute("aria-hidden", "true");
    const text = document.createElement("span");
    text.textContent = label;
    item.append(text);
    return item;
  }

  // Insert in id order, once: the page-load position may replay a message the page
  // shows, and the sender gets both the POST's answer and the event.
  function add(message) {
    if (find(message.id) || deleted.has(message.id)) return false;
    const follow = atBottom();
    const item = document.createElement("li");
    item.className = "message";
    item.tabIndex = -1;
    item.dataset.id = String(message.id);
    fill(item, message);
    let next = null;
    for (const node of [...list.querySelectorAll("li.message")].reverse()) {
      if (Number(node.dataset.id) < message.id) break;
      next = node;
    }
    list.insertBefore(item, next);
    newestBy.set(message.user, Math.max(newestBy.get(message.user) || 0, message.id));
    decorate();
    if (follow) toBottom();
    return true;
  }

  // Whether a message of this id belongs among those shown: newer than the oldest shown,
  // or the whole history is shown.
  function withinShown(id) {
    const items = list.querySelectorAll("li.message");
    const first = items[0];
    const last = items[items.length - 1];
    if (hasNewer && !(last && id < Number(last.dataset.id))) return false;
    return olderButton.hidden || Boolean(first && id > Number(first.dataset.id));
  }

  function update(message) {
    if (later.has(message.id)) later.set(message.id, message);
    const item = find(message.id);
    if (item && !item.classList.contains("editing")) { fill(item, message); decorate(); }
    else if (item) item.dataset.pending = JSON.stringify(message);
    // A message this page never showed: its creation was redacted (it was edited since)
    // before the stream reached it. Shown now, where it belongs; an edit of a message
    // older than those loaded waits for "Load older messages".
    else if (!deleted.has(message.id) && withinShown(message.id)) arrived(message);
  }

  function remove(data) {
    deleted.add(data.id);
    later.delete(data.id);
    const item = find(data.id);
    if (item) {
      if (item.contains(document.activeElement) && textarea) textarea.focus();
      item.remove();
      decorate();
    }
  }

  // Scripts that draw and handle parts of messages (threads.js, reactions.js) register a
  // maker in `window.chatParts`; each gets what it needs of this page. A part may have
  // fill(item, message), created(message), updated(message), deleted(data), events (more
  // stream events), outgoing() (fields to post with a message) and sent(message).
  const page = {
    config, me, api, call, list, form, textarea,
    find, rendered, actionButton, jumpTo, formatTime: (date) => fullDate.format(date),
    showError: (body, response) => showError(body, response),
    ended: () => ended,
    csrfToken,
  };
  const parts = (window.chatParts || []).map((make) => make(page));

  // Where a link leads (a reply's quote, a search result): the message, shown and focused
  // if this page has it, else the page around it.
  function jumpTo(id) {
    const item = find(id);
    if (!item) {
      window.location.assign(`${location.pathname}?message=${encodeURIComponent(String(id))}`);
      return;
    }
    for (const other of list.querySelectorAll("li.message.target")) other.classList.remove("target");
    item.classList.add("target");
    item.scrollIntoView({ block: "center" });
    item.focus({ preventScroll: true });
  }

  // History rendered with the page, then older pages on demand (by id, not offset).
  const history = JSON.parse(document.getElementById("chat-history").textContent);
  if (me && config.lastReadId !== null) {
    const first = history.find((m) => m.id > config.lastReadId && m.user !== me);
    firstUnreadId = first ? first.id : null;
  }
  for (const message of history) add(message);
  decorate();
  const unreadMark = list.querySelector("li.divider.first-unread");
  if (config.target && find(config.target)) jumpTo(config.target);
  else if (unreadMark) unreadMark.scrollIntoView({ block: "start" });
  else toBottom();

  // Newer pages, when the page opened on an older message: loaded as the reader scrolls
  // down; once the newest is reached, the live messages that waited are shown.
  let loadingNewer = false;
  async function loadNewer() {
    if (loadingNewer || !hasNewer) return;
    loadingNewer = true;
    const items = list.querySelectorAll("li.message");
    const last = items.length ? items[items.length - 1].dataset.id : "0";
    try {
      const { response, body } = await call("GET", `${api}/messages/?after=${last}`);
      if (!response.ok) return;
      for (const message of body.messages) add(message);
      hasNewer = body.has_newer;
      if (!hasNewer) {
        for (const message of [...later.values()].sort((a, b) => a.id - b.id)) add(message);
        later.clear();
      }
      newerButton.hidden = !hasNewer;
      markRead();
    } finally {
      loadingNewer = false;
    }
    // Still in view (a short page, or the reader kept scrolling while it loaded): the
    // observer saw no change, so ask it again; out of view, the next scroll down will do.
    if (hasNewer && newerObserver) {
      newerObserver.unobserve(newerButton);
      newerObserver.observe(newerButton);
    }
  }
  let newerObserver = null;
  if (newerButton) {
    newerButton.hidden = !hasNewer;
    newerButton.addEventListener("click", loadNewer);
    newerObserver = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadNewer();
    }, { root: scroller });
    newerObserver.observe(newerButton);
  }

  let loadingOlder = false;
  async function loadOlder() {
    if (loadingOlder || olderButton.hidden) return;
    loadingOlder = true;
    const first = list.querySelector("li.message");
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

  // The "new messages" pill: shown when something arrives while the reader is scrolled up.
  pill.addEventListener("click", () => {
    if (hasNewer) { window.location.assign(location.pathname); return; }
    toBottom();
    if (textarea) textarea.focus();
  });
  scroller.addEventListener("scroll", () => { if (atBottom()) pill.hidden = true; });

  // Reading: what arrives while the page is visible is read (marked after a second, in
  // one request); the count of a hidden page rises until it is shown again.
  let readTimer = null;
  let markedUpTo = 0;
  function markRead() {
    if (!me || ended || document.visibilityState !== "visible") return;
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      const items = list.querySelectorAll("li.message");
      const newest = items.length ? Number(items[items.length - 1].dataset.id) : 0;
      if (newest > markedUpTo) {
        markedUpTo = newest;
        call("POST", `${api}/read/`, { up_to: newest }).catch(() => { markedUpTo = 0; });
      }
    }, 1000);
  }

  // Presence and typing.
  function showPresence(users) {
    // The page's own user is here while it follows the room, whether or not their first
    // heartbeat has reached the list yet (it showed "Here now 0" on load).
    if (me && !ended && !users.includes(me)) users = [...users, me].sort();
    presenceList.replaceChildren(...users.map((user) => people.nameNode(user, "li")));
    presenceCount.textContent = String(users.length);
  }

  const typists = new Map();
  function showTyping() {
    const names = [...typists.keys()].map((user) => people.name(user));
    typingLine.textContent = names.length === 0 ? ""
      : names.length === 1 ? `${names[0]} is typing…`
      : `${names.join(", ")} are typing…`;
  }
  function typing(data) {
    if (data.user === me) return;
    // A notice about a message that has reached us already (notices and messages travel
    // on separate channels, so one may overtake the other): nothing to show.
    if ((newestBy.get(data.user) || 0) > (data.after || 0)) return;
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

  function arrived(message) {
    if (hasNewer) {
      // Not drawn below an older page: it waits, and the pill leads to the newest.
      if (!find(message.id) && !deleted.has(message.id)) later.set(message.id, message);
      if (message.user !== me) pill.hidden = false;
      return;
    }
    const follow = atBottom();
    if (!add(message)) return;
    stoppedTyping(message.user);
    if (!follow && message.user !== me) pill.hidden = false;
    if (message.user !== me) {
      markRead();
      if (addressesMe(message)) notify(`${people.name(message.user, message.name)} mentioned you in ${config.roomLabel}`, message.text.slice(0, 140));
    }
  }

  const tab = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2);
  function heartbeat() {
    if (me && !ended) call("POST", `${api}/presence/`, { tab }).catch(() => {});
  }

  // Once the stream has ended for good (access gone, logged out), the page makes no
  // more requests of its own: no heartbeats, read marks or typing notices, and it can
  // no longer post. What it shows stays, for reading.
  let heartbeats = null;
  function stopEverything() {
    ended = true;
    clearInterval(heartbeats);
    clearTimeout(readTimer);
    for (const timer of typists.values()) clearTimeout(timer);
    typists.clear();
    showTyping();
    showPresence([]); // `ended` is set: the page's own user leaves the list too
    if (form) for (const control of form.querySelectorAll("textarea, button, input")) control.disabled = true;
  }

  // The stream carries this room's messages, and those of the rooms followed for their
  // counts: each counts, only this room's are drawn.
  const here = (data) => data.room_id === currentRoom;
  roomParts = new chatRoomParts.RoomParts({ config, people, sidebar, csrfToken });
  live = follow(
    `/rooms/${encodeURIComponent(config.room)}/events/`,
    {
      message_created(message) {
        countCreated(message);
        if (!here(message)) return;
        people.learn(message.user, message.name);
        roomParts.posted(message.user, message.name);
        arrived(message);
        for (const part of parts) if (part.created) part.created(message);
      },
      message_updated(message) {
        countUpdated(message);
        if (!here(message)) return;
        update(message);
        for (const part of parts) if (part.updated) part.updated(message);
      },
      message_deleted(data) {
        countDeleted(data);
        if (!here(data)) return;
        remove(data);
        for (const part of parts) if (part.deleted) part.deleted(data);
      },
      ...Object.assign({}, ...parts.map((part) => part.events || {})),
      presence(data) {
        for (const [user, name] of Object.entries(data.names || {})) people.learn(user, name);
        showPresence(data.users);
      },
      typing,
      // The member list (chat/members.py).
      member_joined(data) { if (here(data)) roomParts.joined(data.user, data.name); },
      member_left(data) { if (here(data)) roomParts.left(data.user); },
      ...ownEvents,
      ...sidebarEvents,
    },
    {
      // Back after a cut: say at once that we are here (others may have dropped us).
      reconnected: heartbeat,
      ended: stopEverything,
      followed: followedNow,
    },
  );

  document.addEventListener("visibilitychange", () => {
    showCount(currentRoom);
    if (document.visibilityState === "visible") { heartbeat(); markRead(); }
  });

  if (!me) return;

  heartbeat();
  heartbeats = setInterval(heartbeat, config.heartbeatSeconds * 1000);
  window.addEventListener("pageshow", (event) => { if (event.persisted) heartbeat(); });
  window.addEventListener("pagehide", () => {
    if (ended) return;
    const data = new FormData();
    data.append("tab", tab);
    data.append("leave", "1");
    data.append("csrfmiddlewaretoken", csrfToken());
    navigator.sendBeacon(`${api}/presence/`, data);
  });

  // Length: the server counts code points (an emoji is one), so does this page; nothing
  // is ever cut: near the limit a counter shows, and over it sending is refused.
  const maxLength = config.maxLength;
  function length(text) { return [...text].length; }
  function tooLong(text) {
    const count = length(text);
    return count > maxLength
      ? `A message is at most ${maxLength.toLocaleString("en")} characters; this one is ${count.toLocaleString("en")}. Shorten it: nothing was cut.`
      : null;
  }

  // Edit and delete: buttons on one's own messages (and on all, for the room's owner).
  // Cancelling puts back what the editor or the question replaced, as it was: drawn again
  // from the item's data it would lose what other scripts drew (the quote of what it
  // answers, its replies, its files, its reactions). A message drawn again meanwhile has
  // nothing to put back.
  function replacing(item, undo) {
    const earlier = putBack.get(item);
    putBack.set(item, earlier ? () => { undo(); earlier(); } : undo);
  }
  function startEdit(item) {
    item.classList.add("editing");
    const text = item.querySelector(".text");
    const editor = document.createElement("textarea");
    editor.className = "editor";
    editor.value = item.dataset.text;
    editor.setAttribute("aria-label", "Edit message");
    const save = actionButton("Save", "save");
    const cancel = actionButton("Cancel", "cancel");
    save.tabIndex = 0;
    cancel.tabIndex = 0;
    const box = document.createElement("div");
    box.className = "edit-box";
    box.append(editor, save, cancel);
    text.replaceWith(box);
    replacing(item, () => box.replaceWith(text));
    editor.focus();
    editor.setSelectionRange(editor.value.length, editor.value.length);
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        saveEdit(item);
      } else if (event.key === "Escape") {
        endEdit(item);
        item.focus();
      }
    });
  }
  function endEdit(item, message) {
    item.classList.remove("editing");
    const pending = item.dataset.pending;
    delete item.dataset.pending;
    const undo = putBack.get(item);
    putBack.delete(item);
    if (message || pending) fill(item, message || JSON.parse(pending));
    else if (undo) undo();
    decorate();
  }
  async function saveEdit(item) {
    const value = item.querySelector(".editor").value;
    const refusal = tooLong(value);
    if (refusal) { showError({ error: refusal }); return; }
    const { response, body } = await call("PATCH", `${api}/messages/${item.dataset.id}/`, { text: value });
    if (!response.ok) { showError(body, response); return; }
    // The focus goes back to the message only if it was still in the editor: a save that
    // answers after the user moved on (to another message's Delete, say) leaves it there.
    const stayed = item.contains(document.activeElement);
    endEdit(item, body);
    if (stayed) item.focus();
  }
  function askDelete(item) {
    const actions = item.querySelector(".actions");
    const question = document.createElement("span");
    question.className = "confirm";
    question.textContent = "Delete this message?";
    const yes = actionButton("Delete", "confirm-delete");
    const no = actionButton("Keep", "cancel-delete");
    yes.tabIndex = 0;
    no.tabIndex = 0;
    const before = [...actions.childNodes];
    actions.replaceChildren(question, yes, no);
    replacing(item, () => actions.replaceChildren(...before));
    no.focus();
  }
  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = button.closest("li.message");
    const action = button.dataset.action;
    if (action === "edit") startEdit(item);
    else if (action === "cancel") { endEdit(item); item.focus(); }
    else if (action === "save") saveEdit(item);
    else if (action === "delete") askDelete(item);
    else if (action === "cancel-delete") { endEdit(item); item.focus(); }
    else if (action === "confirm-delete") {
      const { response, body } = await call("DELETE", `${api}/messages/${item.dataset.id}/`);
      if (response.ok) remove({ id: Number(item.dataset.id) });
      else showError(body, response);
    }
  });

  // Keyboard: messages are not tab stops before the composer. ↑ in an empty composer
  // reaches one's last message; ↑/↓ move between messages, Tab reaches the focused
  // message's buttons, Escape goes back to the composer.
  list.addEventListener("focusin", (event) => {
    const item = event.target.closest("li.message");
    if (item) for (const button of item.querySelectorAll("button")) button.tabIndex = 0;
  });
  list.addEventListener("focusout", (event) => {
    const item = event.target.closest("li.message");
    if (item && !item.contains(event.relatedTarget)) {
      for (const button of item.querySelectorAll("button")) button.tabIndex = -1;
    }
    // A delete confirmation closes when the focus leaves it (a click elsewhere, Tab away).
    const confirm = item && item.querySelector(".actions .confirm");
    if (confirm && !(event.relatedTarget && confirm.parentElement.contains(event.relatedTarget))) {
      endEdit(item);
    }
  });
  list.addEventListener("keydown", (event) => {
    const item = event.target.closest("li.message");
    if (!item || event.target !== item) {
      if (event.key === "Escape" && item && textarea) textarea.focus();
      return;
    }
    const items = [...list.querySelectorAll("li.message")];
    const index = items.indexOf(item);
    if (event.key === "ArrowUp" && index > 0) { event.preventDefault(); items[index - 1].focus(); }
    else if (event.key === "ArrowDown" && index < items.length - 1) { event.preventDefault(); items[index + 1].focus(); }
    else if ((event.key === "Escape" || event.key === "ArrowDown") && textarea) { event.preventDefault(); textarea.focus(); }
  });

  const error = document.getElementById("composer-error");
  function showError(body, response) {
    if (!error) return;
    error.textContent = (body && body.error) || `Could not do that (${response ? response.status : "no answer"}).`;
    error.hidden = false;
  }

  if (!form) return;
  const counter = document.getElementById("counter");
  const sendButton = document.getElementById("send");
  const attachStatus = document.getElementById("attach-status");
  // Files to send with the message: picked, pasted or dropped (attachments.js).
  const picker = chatAttachments.picker({
    input: document.getElementById("file-input"),
    button: document.getElementById("attach"),
    chips: document.getElementById("attached"),
    status: attachStatus,
    dropZone: document.getElementById("room"),
    textarea,
    limits: config.attachments,
    onError(text) { showError({ error: text }); },
    onChange() { error.hidden = true; },
  });

  function showCounter() {
    const count = length(textarea.value);
    const left = maxLength - count;
    counter.hidden = left > 500;
    counter.classList.toggle("over", left < 0);
    counter.textContent = left >= 0
      ? `${left.toLocaleString("en")} characters left`
      : `${(-left).toLocaleString("en")} characters over the limit of ${maxLength.toLocaleString("en")}`;
  }

  // A message with files goes as a multipart form, with its upload's progress shown on
  // the Send button; one without, as JSON.
  let uploading = false; // files on their way: Send is disabled, and so is Enter
  function post(text, files, extra) {
    if (!files.length) return call("POST", `${api}/messages/`, { text, ...extra });
    uploading = true;
    return chatAttachments.postFiles(`${api}/messages/`, csrfToken(), { text, ...extra }, files, {
      button: sendButton, status: attachStatus, enabled: () => !ended,
    }).finally(() => { uploading = false; });
  }

  // Texts on their way: a second Enter (or Send) before the first is answered would post
  // the same message twice. Another message may go meanwhile.
  const onItsWay = new Set();
  async function send() {
    if (uploading || onItsWay.has(textarea.value)) return;
    const text = textarea.value;
    const files = picker.files;
    error.hidden = true;
    if (!text.trim() && !files.length) {
      error.textContent = "A message cannot be empty.";
      error.hidden = false;
      return;
    }
    const refusal = tooLong(text);
    if (refusal) { showError({ error: refusal }); return; }
    onItsWay.add(text);
    try {
      const extra = Object.assign({}, ...parts.map((part) => (part.outgoing ? part.outgoing() : {})));
      const { response, body } = await post(text, files, extra);
      if (response.status === 201) {
        // Keep whatever was typed while this one was on its way.
        if (textarea.value === text) textarea.value = "";
        if (files.length) picker.clear();
        showCounter();
        for (const part of parts) if (part.sent) part.sent(body);
        if (hasNewer) { window.location.assign(location.pathname); return; }
        add(body); // the echo from the stream is recognised by its id
        toBottom();
      } else {
        showError(body, response);
      }
    } catch (_) {
      error.textContent = "Could not reach the server; your message is still here.";
      error.hidden = false;
    } finally {
      onItsWay.delete(text);
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
    } else if (event.key === "ArrowUp" && textarea.value === "" && !event.shiftKey) {
      // Edits one's last message shown, as in Slack (Escape leaves the editor on the
      // message, where ↑/↓ move on); without one, ↑ moves to the last message.
      const own = [...list.querySelectorAll("li.message.mine:not(.editing)")];
      const last = [...list.querySelectorAll("li.message")].pop();
      if (own.length) {
        event.preventDefault();
        const item = own[own.length - 1];
        item.scrollIntoView({ block: "nearest" });
        startEdit(item);
      } else if (last) { event.preventDefault(); last.focus(); }
    }
  });
  textarea.addEventListener("input", () => {
    showCounter();
    const now = Date.now();
    if (!ended && textarea.value.trim() && now - lastTyping > 3000) {
      lastTyping = now;
      call("POST", `${api}/typing/`, { after: newestBy.get(me) || 0 }).catch(() => {});
    }
  });
  showCounter();
})();

// The sidebar, live: "My rooms", "Direct messages" and "All public rooms", each sorted as
// people sort (accents and case folded, numbers by value: the same key as the server's,
// chat/collation.py), with entries drawn as the server draws them (chat/room_entry.html,
// chat/public_room_entry.html). chat.js feeds it the directory channel's events (public
// rooms) and the user's own channel's (invitations, rooms joined, left, renamed, deleted,
// new direct conversations). Defines `window.chatSidebar`.
"use strict";

(function (root) {
  // --------------------------------------------------------------------------------
  // Sorting as people sort: the key of chat/collation.py, part for part.

  function fold(name) {
    return name.toLowerCase().normalize("NFKD").replace(/\p{Mn}/gu, "").replace(/ß/g, "ss");
  }

  // [kind, length, text] parts: [0, length, digits] for a number (leading zeros dropped),
  // [1, 0, text] for the rest.
  function sortKey(name) {
    const parts = [];
    fold(name).split(/([0-9]+)/).forEach((run, index) => {
      if (!run) return;
      if (index % 2) {
        const digits = run.replace(/^0+/, "") || "0";
        parts.push([0, digits.length, digits]);
      } else {
        parts.push([1, 0, run]);
      }
    });
    return parts;
  }

  // Code point by code point, as Python compares strings (JavaScript's < compares UTF-16
  // units, which orders characters past U+FFFF differently).
  function compareText(a, b) {
    const left = [...a];
    const right = [...b];
    for (let i = 0; i < Math.min(left.length, right.length); i++) {
      const difference = left[i].codePointAt(0) - right[i].codePointAt(0);
      if (difference) return difference < 0 ? -1 : 1;
    }
    return left.length - right.length < 0 ? -1 : left.length === right.length ? 0 : 1;
  }

  function compareParts(a, b) {
    for (let i = 0; i < 3; i++) {
      const difference = typeof a[i] === "number" ? a[i] - b[i] : compareText(a[i], b[i]);
      if (difference) return difference < 0 ? -1 : 1;
    }
    return 0;
  }

  function compareNames(a, b) {
    const left = sortKey(a);
    const right = sortKey(b);
    for (let i = 0; i < Math.min(left.length, right.length); i++) {
      const difference = compareParts(left[i], right[i]);
      if (difference) return difference;
    }
    if (left.length !== right.length) return left.length < right.length ? -1 : 1;
    return compareText(a, b);
  }

  // A direct conversation's name as `me` reads it: the others' names, sorted; one's own,
  // marked, in a conversation with oneself (chat/conversations.py).
  function conversationName(people, me, names) {
    const others = people.filter((p) => p.user !== me).map((p) => names.name(p.user, p.name));
    if (!others.length) {
      const mine = people.find((p) => p.user === me);
      return mine ? `${names.name(mine.user, mine.name)} (you)` : "Nobody";
    }
    return others.sort(compareNames).join(", ");
  }

  const LOCK_PATH = "M4.5 7V5a3.5 3.5 0 0 1 7 0v2h.5a1 1 0 0 1 1 1v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1zm1.5 0h4V5a2 2 0 0 0-4 0z";

  // --------------------------------------------------------------------------------
  // The lists.

  class Sidebar {
    // `people`: a chatProfiles.People; `directPeople`: {roomId: [{user, name}]};
    // `currentRoom`: the room this page shows (or null).
    constructor({ me, people, directPeople, currentRoom }) {
      this.me = me;
      this.people = people;
      this.currentRoom = currentRoom;
      this.direct = new Map(Object.entries(directPeople || {}).map(([id, list]) => [Number(id), list]));
      this.lists = {
        mine: document.getElementById("my-rooms"),
        direct: document.getElementById("direct-rooms"),
        public: document.getElementById("public-rooms"),
      };
    }

    // The name of room `roomId` as this page shows it, or null if it is not listed.
    nameOf(roomId) {
      const entry = document.querySelector(`#room-lists li[data-room-id="${roomId}"]`);
      return entry ? entry.dataset.name : null;
    }

    // How text names it: "#Lobby", "Plans", "bob, carol".
    labelOf(roomId) {
      const entry = this.find("mine", roomId) || this.find("direct", roomId) || this.find("public", roomId);
      if (!entry) return null;
      return entry.dataset.private === "true" ? entry.dataset.name : `#${entry.dataset.name}`;
    }

    find(list, roomId) {
      const node = this.lists[list];
      return node ? node.querySelector(`:scope > li[data-room-id="${roomId}"]`) : null;
    }

    has(roomId) {
      return Boolean(this.find("mine", roomId) || this.find("direct", roomId));
    }

    // What a room is called from an event's data (a direct conversation, after its people).
    entryName(data) {
      if (data.direct && data.people) {
        this.direct.set(data.room_id, data.people);
        for (const person of data.people) this.people.learn(person.user, person.name);
        return conversationName(data.people, this.me, this.people);
      }
      return data.name;
    }

    // A room of the user's, new or changed: in "My rooms" or "Direct messages".
    joined(data) {
      const list = data.direct ? "direct" : "mine";
      this.place(list, data.room_id, this.entryName(data), () => this.roomEntry(data), data.room);
      if (!data.private) this.listed(data, true);
    }

    // A room the user is no longer in (left, removed): it stays among the public rooms if
    // it is one.
    left(roomId) {
      for (const list of ["mine", "direct"]) this.drop(list, roomId);
      const entry = this.find("public", roomId);
      if (entry) showJoined(entry, false);
    }

    // A public room, new or changed (the directory channel).
    listed(data, joined) {
      this.place("public", data.room_id, data.name, () => this.publicEntry(data), data.room);
      const placed = this.find("public", data.room_id);
      showJoined(placed, joined === undefined ? this.has(data.room_id) : joined);
      const topic = placed.querySelector(".room-topic");
      if (topic) topic.textContent = data.topic || "";
      // The same room among the user's: its name follows.
      if (this.find("mine", data.room_id)) this.place("mine", data.room_id, data.name, null, data.room);
    }

    // A room that is gone (deleted), or no longer public.
    gone(roomId, stillMine) {
      this.drop("public", roomId);
      if (!stillMine) for (const list of ["mine", "direct"]) this.drop(list, roomId);
    }

    // A private room of the user's changed (name, topic, owner).
    changed(data) {
      for (const list of ["mine", "direct"]) {
        if (this.find(list, data.room_id)) this.place(list, data.room_id, this.entryName(data), null, data.room);
      }
    }

    // Someone's display name changed: the direct conversations with them are renamed.
    renamed() {
      for (const [roomId, people] of this.direct) {
        if (this.find("direct", roomId)) this.place("direct", roomId, conversationName(people, this.me, this.people), null);
      }
    }

    // Put (or move) entry `roomId` where its name sorts; `build()` makes a new one. `slug`:
    // its address, if it changed (the admin may change it).
    place(list, roomId, name, build, slug) {
      const node = this.lists[list];
      if (!node) return;
      let entry = this.find(list, roomId);
      if (!entry) {
        if (!build) return;
        entry = build();
      }
      if (slug) entry.querySelector("a").href = `/rooms/${encodeURIComponent(slug)}/`;
      entry.dataset.name = name;
      entry.querySelector(".room-label").textContent = name;
      entry.remove();
      let next = null;
      for (const other of node.querySelectorAll(":scope > li[data-room-id]")) {
        if (compareNames(name, other.dataset.name) < 0) { next = other; break; }
      }
      node.insertBefore(entry, next);
      this.showEmpty(list);
    }

    drop(list, roomId) {
      const entry = this.find(list, roomId);
      if (!entry) return;
      if (entry.contains(document.activeElement)) {
        const next = entry.nextElementSibling || entry.previousElementSibling;
        const link = next && next.querySelector("a");
        if (link) link.focus();
      }
      entry.remove();
      this.showEmpty(list);
    }

    showEmpty(list) {
      const node = this.lists[list];
      const empty = document.getElementById(`${node.id}-empty`);
      const count = node.querySelectorAll(":scope > li[data-room-id]").length;
      if (empty) empty.hidden = count > 0;
      if (list === "public") {
        const counter = document.getElementById("public-count");
        if (counter) counter.textContent = String(count);
      }
    }

    link(data) {
      const anchor = document.createElement("a");
      anchor.href = `/rooms/${encodeURIComponent(data.room)}/`;
      if (data.room_id === this.currentRoom) anchor.setAttribute("aria-current", "page");
      return anchor;
    }

    // As chat/room_entry.html draws it.
    roomEntry(data) {
      const entry = document.createElement("li");
      entry.dataset.roomId = String(data.room_id);
      entry.dataset.private = String(Boolean(data.private));
      const anchor = this.link(data);
      if (data.direct) {
        const other = (data.people || []).find((p) => p.user !== this.me) || (data.people || [])[0];
        if (other) anchor.append(this.people.avatar(other.user, this.people.name(other.user, other.name)));
      } else {
        anchor.append(icon(data.private));
      }
      const label = document.createElement("span");
      label.className = "room-label";
      anchor.append(label);
      if (data.private && !data.direct) anchor.append(hiddenText(" (private)"));
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.dataset.unreadFor = String(data.room_id);
      badge.hidden = true;
      entry.append(anchor, badge);
      return entry;
    }

    // As chat/public_room_entry.html draws it.
    publicEntry(data) {
      const entry = document.createElement("li");
      entry.dataset.roomId = String(data.room_id);
      entry.dataset.private = "false";
      const anchor = this.link(data);
      const label = document.createElement("span");
      label.className = "room-label";
      anchor.append(icon(false), label);
      entry.append(anchor);
      if (this.lists.public && this.lists.public.dataset.topics) {
        const topic = document.createElement("span");
        topic.className = "room-topic";
        entry.append(topic);
      }
      return entry;
    }
  }

  // The "joined" badge of an entry among the public rooms, there or not.
  function showJoined(entry, joined) {
    const badge = entry.querySelector(".badge.joined");
    if (badge && !joined) badge.remove();
    if (!badge && joined) {
      const added = document.createElement("span");
      added.className = "badge joined";
      added.textContent = "joined";
      entry.querySelector("a").after(added);
    }
  }

  function icon(locked) {
    if (!locked) {
      const hash = document.createElement("span");
      hash.className = "room-icon";
      hash.setAttribute("aria-hidden", "true");
      hash.textContent = "#";
      return hash;
    }
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "room-icon lock");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("width", "14");
    svg.setAttribute("height", "14");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", LOCK_PATH);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  function hiddenText(text) {
    const span = document.createElement("span");
    span.className = "visually-hidden";
    span.textContent = text;
    return span;
  }

  root.chatSidebar = { Sidebar, sortKey, compareNames, conversationName, fold };
})(window);

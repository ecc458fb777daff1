// A room page's parts that change while it is open, kept live so that nothing on the page
// goes stale: its name, topic and owner (room settings), the member list (with its owner's
// Remove buttons and everyone's Message buttons), and the Join / Leave / Invite / Room
// settings controls. chat.js calls it with the stream's events. Defines `window.chatRoomParts`.
"use strict";

(function (root) {
  class RoomParts {
    // `config`: the page's; `people`: a chatProfiles.People; `sidebar`: a chatSidebar.Sidebar;
    // `csrfToken()`: the token for the forms drawn here.
    constructor({ config, people, sidebar, csrfToken }) {
      this.config = config;
      this.me = config.user;
      this.people = people;
      this.sidebar = sidebar;
      this.csrfToken = csrfToken;
      this.owner = config.owner || "";
      this.member = Boolean(config.isMember);
      this.total = config.memberTotal || 0;
      this.room = document.getElementById("room");
      this.list = document.getElementById("members");
      this.count = document.getElementById("members-count");
      this.showOwnership();
    }

    get isOwner() { return Boolean(this.me) && this.owner === this.me; }

    // ------------------------------------------------------------------------------
    // The room itself: `room` events (a public room's on the directory channel, a private
    // room's on its members' own channels).

    changed(data, name) {
      const title = document.getElementById("room-name");
      if (title) title.textContent = name;
      const topic = document.getElementById("room-topic");
      if (topic) {
        topic.textContent = data.topic || "";
        topic.hidden = !data.topic;
      }
      this.config.roomName = name;
      this.config.roomLabel = data.private ? name : `#${name}`;
      const box = document.getElementById("text");
      if (box) box.placeholder = `Message ${this.config.roomLabel}`;
      if (data.owner !== undefined && (data.owner || "") !== this.owner) {
        this.owner = data.owner || "";
        this.config.isOwner = this.isOwner;
        this.showOwnership();
        this.redrawMembers();
      }
    }

    // What only the owner sees, or does not: settings, invitations, Remove buttons,
    // Delete on others' messages (chat.css hides `.owner-only` unless the room is owned),
    // and Leave (an owner cannot leave).
    showOwnership() {
      const owned = this.isOwner;
      if (this.room) this.room.classList.toggle("owned", owned);
      for (const id of ["settings-link", "invite-form"]) {
        const node = document.getElementById(id);
        if (node) node.hidden = !owned;
      }
      this.showMembership();
    }

    // ------------------------------------------------------------------------------
    // The user's own membership: Join, Leave.

    membership(isMember) {
      this.member = isMember;
      this.config.isMember = isMember;
      this.showMembership();
    }

    showMembership() {
      const join = document.getElementById("join-form");
      const leave = document.getElementById("leave-form");
      if (join) join.hidden = this.member;
      if (leave) leave.hidden = !this.member || this.isOwner;
    }

    // ------------------------------------------------------------------------------
    // The member list.

    find(username) {
      return this.list ? this.list.querySelector(`:scope > li[data-member="${CSS.escape(username)}"]`) : null;
    }

    joined(username, name) {
      if (name) this.people.learn(username, name);
      if (username === this.me) this.membership(true);
      if (!this.list || this.find(username)) return;
      this.total += 1;
      this.insert(this.memberEntry(username));
      this.showCount();
    }

    left(username) {
      if (username === this.me) this.membership(false);
      const entry = this.find(username);
      if (!entry) return;
      if (entry.contains(document.activeElement)) {
        const next = entry.nextElementSibling || entry.previousElementSibling;
        const target = next ? next.querySelector("button") : null;
        (target || document.getElementById("text") || document.body).focus();
      }
      entry.remove();
      this.total = Math.max(0, this.total - 1);
      this.showCount();
    }

    // A message from someone the list does not show: posting in a public room joins it.
    posted(username, name) {
      if (!this.config.private) this.joined(username, name);
    }

    showCount() {
      if (this.count) this.count.textContent = String(this.total);
    }

    insert(entry) {
      const name = this.people.name(entry.dataset.member);
      let next = null;
      for (const other of this.list.querySelectorAll(":scope > li[data-member]")) {
        if (chatSidebar.compareNames(name, this.people.name(other.dataset.member)) < 0) { next = other; break; }
      }
      this.list.insertBefore(entry, next);
    }

    // Ownership changed: every entry is drawn again (owner badge, Remove buttons).
    redrawMembers() {
      if (!this.list) return;
      for (const entry of [...this.list.querySelectorAll(":scope > li[data-member]")]) {
        const focused = entry.contains(document.activeElement);
        const fresh = this.memberEntry(entry.dataset.member);
        entry.replaceWith(fresh);
        if (focused) (fresh.querySelector("button") || document.getElementById("text") || document.body).focus();
      }
    }

    // As chat/member.html draws it.
    memberEntry(username) {
      const entry = document.createElement("li");
      entry.dataset.member = username;
      const name = this.people.name(username);
      entry.append(this.people.avatar(username, name), this.people.nameNode(username, "span"));
      entry.lastChild.className = "member-name";
      if (username === this.owner) {
        const badge = document.createElement("span");
        badge.className = "badge owner";
        badge.textContent = "owner";
        entry.append(" ", badge);
      }
      if (this.me && username !== this.me) {
        const actions = document.createElement("span");
        actions.className = "member-actions";
        actions.append(this.form("/direct/", { users: username }, "Message", "message", "Message {} directly", username));
        if (this.isOwner && this.config.private && !this.config.direct) {
          const action = `/rooms/${encodeURIComponent(this.config.room)}/remove/`;
          const label = `Remove {} from ${this.config.roomLabel}`;
          actions.append(this.form(action, { username }, "Remove", "remove", label, username));
        }
        entry.append(" ", actions);
      }
      return entry;
    }

    // A form of one button; `label` names `person` where it says {} (profiles.js redraws it
    // when they change their name).
    form(action, fields, text, kind, label, person) {
      const form = document.createElement("form");
      form.method = "post";
      form.action = action;
      const values = { csrfmiddlewaretoken: this.csrfToken(), ...fields };
      for (const [name, value] of Object.entries(values)) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.append(input);
      }
      const button = document.createElement("button");
      button.type = "submit";
      button.className = kind === "remove" ? "link remove" : "link";
      button.dataset.action = kind;
      button.dataset.labelPerson = person;
      button.dataset.label = label;
      button.setAttribute("aria-label", label.replace("{}", this.people.name(person)));
      button.textContent = text;
      form.append(button);
      return form;
    }
  }

  root.chatRoomParts = { RoomParts };
})(window);

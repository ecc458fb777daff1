// People on a page: display names (which change live: `person` events on the directory
// channel) and avatars, initials on a colour of their own, drawn with the same rules as
// the server's (chat/profiles.py: `initials`, `hue`). Every element that shows someone's
// name carries `data-person="<username>"`, every avatar `data-avatar="<username>"`, every
// label naming them `data-label-person="<username>"` (and `data-label`, with {} for the
// name): a new name redraws them all. Defines `window.chatProfiles`.
"use strict";

(function (root) {
  const HUES = 8;

  // The first letter or digit of a name's first two words that have one, upper-cased
  // ("Ada Lovelace" -> "AL", "<b>Bob</b> (home)" -> "BH").
  function initials(name) {
    const firsts = name.split(/\s+/).map((word) => word.match(/[\p{L}\p{N}]/u)).filter(Boolean);
    return firsts.slice(0, 2).map((found) => found[0]).join("").toUpperCase() || "?";
  }

  // An avatar's colour, from the username: the sum of its code points.
  function hue(username) {
    let sum = 0;
    for (const char of username) sum += char.codePointAt(0);
    return sum % HUES;
  }

  class People {
    constructor(names) {
      this.names = new Map(Object.entries(names || {}));
    }

    // `username`'s display name: as last heard of, or `fallback`, or the username.
    name(username, fallback) {
      return this.names.get(username) || fallback || username;
    }

    // Remembers a name heard with an event (a message, presence); true if it is new.
    learn(username, name) {
      if (!name || this.names.get(username) === name) return false;
      this.names.set(username, name);
      return true;
    }

    avatar(username, name) {
      const avatar = document.createElement("span");
      avatar.className = "avatar";
      avatar.dataset.avatar = username;
      avatar.dataset.hue = String(hue(username));
      avatar.setAttribute("aria-hidden", "true");
      avatar.textContent = initials(name || this.name(username));
      return avatar;
    }

    // An element showing `username`'s name, kept up to date.
    nameNode(username, tag) {
      const node = document.createElement(tag || "span");
      node.dataset.person = username;
      node.textContent = this.name(username);
      return node;
    }

    // Someone set a new display name: every place that shows it follows.
    rename(username, name) {
      this.names.set(username, name);
      const key = CSS.escape(username);
      for (const node of document.querySelectorAll(`[data-person="${key}"]`)) node.textContent = name;
      for (const node of document.querySelectorAll(`[data-avatar="${key}"]`)) node.textContent = initials(name);
      // Labels that name them ("Message Ada directly"): `data-label` with {} for the name.
      for (const node of document.querySelectorAll(`[data-label-person="${key}"]`)) {
        node.setAttribute("aria-label", node.dataset.label.replace("{}", name));
      }
    }
  }

  root.chatProfiles = { People, initials, hue };
})(window);

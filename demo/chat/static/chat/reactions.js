// Reactions on the room page (docs/chat.md, "Reactions"): each message's emoji with their
// counts, as toggle buttons (pressed: you reacted so); who reacted shows on hover and on
// focus (a tooltip the button is described by); React opens a small picker. Counts come
// from the room's `reaction` events, each the message's whole summary in commit order;
// whether you reacted, from the answers and from the events' `user`. chat.js calls this
// part through `window.chatParts`. Text goes in as text nodes only.
"use strict";

(function () {
  const PICKS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "✅"];
  let tooltips = 0;

  (window.chatParts = window.chatParts || []).push((page) => {
    const { api, call, me } = page;
    //: Each message's reactions as last known ({emoji, count, users}), and yours.
    const summaries = new Map();
    const mine = new Map();

    function mineOf(id) {
      if (!mine.has(id)) mine.set(id, new Set());
      return mine.get(id);
    }

    function who(entry, yours) {
      const others = entry.count - entry.users.length;
      let names = entry.users.map((name) => (name === me ? "you" : name));
      if (yours && !entry.users.includes(me)) { names = ["you", ...names]; }
      const listed = names.join(", ");
      return others > 0 ? `${listed} and ${others} ${others === 1 ? "other" : "others"}` : listed;
    }

    function chip(id, entry) {
      const yours = mineOf(id).has(entry.emoji);
      const wrap = document.createElement("span");
      wrap.className = "reaction-wrap";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reaction";
      button.tabIndex = -1;
      button.dataset.emoji = entry.emoji;
      button.setAttribute("aria-pressed", yours ? "true" : "false");
      button.setAttribute("aria-label", `${entry.emoji} ${entry.count}`);
      const shown = document.createElement("span");
      shown.setAttribute("aria-hidden", "true");
      shown.textContent = `${entry.emoji} ${entry.count}`;
      button.append(shown);
      const tip = document.createElement("span");
      tip.className = "who";
      tip.setAttribute("role", "tooltip");
      tip.id = `reaction-tip-${++tooltips}`;
      tip.textContent = `${who(entry, yours)} reacted with ${entry.emoji}`;
      button.setAttribute("aria-describedby", tip.id);
      button.addEventListener("click", () => toggle(id, entry.emoji, !mineOf(id).has(entry.emoji), button));
      wrap.append(button, tip);
      return wrap;
    }

    function draw(item, id) {
      let box = item.querySelector(":scope > .reactions");
      const entries = summaries.get(id) || [];
      if (!entries.length) { if (box) box.remove(); return; }
      if (!box) {
        box = document.createElement("div");
        box.className = "reactions";
        box.setAttribute("role", "group");
        box.setAttribute("aria-label", "Reactions");
        const after = item.querySelector(":scope > .replies")
          || item.querySelector(":scope > .files") || item.querySelector(":scope > .text");
        if (after) after.after(box); else item.append(box);
      }
      const focused = box.contains(document.activeElement) ? document.activeElement.dataset.emoji : null;
      const editable = item.matches(":focus-within");
      box.replaceChildren(...entries.map((entry) => chip(id, entry)));
      for (const button of box.querySelectorAll("button")) button.tabIndex = editable ? 0 : -1;
      if (focused) {
        const again = box.querySelector(`button[data-emoji="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
    }

    function redraw(id) {
      const item = page.find(id);
      if (item) draw(item, id);
    }

    //: Reactions asked and not answered yet: a double click asks once.
    const asking = new Set();
    async function toggle(id, emoji, add, from) {
      const key = `${id} ${emoji}`;
      if (page.ended() || asking.has(key)) return;
      asking.add(key);
      try {
        await ask(id, emoji, add, from);
      } finally {
        asking.delete(key);
      }
    }
    async function ask(id, emoji, add, from) {
      const url = add
        ? `${api}/messages/${id}/reactions/`
        : `${api}/messages/${id}/reactions/${encodeURIComponent(emoji)}/`;
      const { response, body } = await call(add ? "POST" : "DELETE", url, add ? { emoji } : undefined);
      if (!response.ok) { page.showError(body, response); return; }
      // Yours at once; the counts from the room's events, which follow commit order.
      const yours = mineOf(id);
      if (add) yours.add(emoji); else yours.delete(emoji);
      if (!summaries.has(id) || !summaries.get(id).some((entry) => entry.emoji === emoji)) {
        summaries.set(id, body.reactions.map(({ mine: _, ...entry }) => entry));
      }
      redraw(id);
      // The button pressed was drawn again (or was the picker's): the focus follows it to
      // the new chip, unless the user has moved on meanwhile: out of the message, or into
      // a picker opened since (which closes when it loses the focus).
      const item = page.find(id);
      const active = document.activeElement;
      const movedOn = active && active !== document.body
        && (!(item && item.contains(active)) || Boolean(active.closest(".picker")));
      if (from && !document.contains(from) && !movedOn) {
        const again = item && item.querySelector(`.reaction[data-emoji="${CSS.escape(emoji)}"]`);
        if (again) again.focus(); else if (item) item.focus();
      }
    }

    // The picker: a few common emoji, ← → to move, Enter to pick, Escape to close.
    function openPicker(item, id, opener) {
      closePickers();
      const picker = document.createElement("div");
      picker.className = "picker";
      picker.setAttribute("role", "group");
      picker.setAttribute("aria-label", "Pick a reaction");
      for (const emoji of PICKS) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = emoji;
        button.setAttribute("aria-label", `React with ${emoji}`);
        button.addEventListener("click", () => {
          toggle(id, emoji, !mineOf(id).has(emoji), opener);
          opener.focus(); // closes the picker (focusout)
        });
        picker.append(button);
      }
      picker.addEventListener("keydown", (event) => {
        const buttons = [...picker.querySelectorAll("button")];
        const index = buttons.indexOf(document.activeElement);
        if (event.key === "Escape") {
          event.preventDefault();
          event.stopPropagation();
          opener.focus(); // closes the picker (focusout)
        } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
          event.preventDefault();
          event.stopPropagation();
          const step = event.key === "ArrowRight" ? 1 : -1;
          buttons[(index + step + buttons.length) % buttons.length].focus();
        }
      });
      picker.addEventListener("focusout", (event) => {
        // Removing the focused button blurs it again: remove once.
        if (!picker.contains(event.relatedTarget) && picker.isConnected) picker.remove();
      });
      item.querySelector(".meta").after(picker);
      picker.querySelector("button").focus();
    }
    function closePickers() {
      for (const picker of document.querySelectorAll(".picker")) picker.remove();
    }

    return {
      fill(item, message) {
        const id = message.id;
        if (message.reactions) {
          summaries.set(id, message.reactions.map(({ mine: _, ...entry }) => entry));
          // Answers say whether you reacted; events do not (they are everyone's).
          if (message.reactions.some((entry) => "mine" in entry)) {
            mine.set(id, new Set(message.reactions.filter((entry) => entry.mine).map((entry) => entry.emoji)));
          }
        }
        draw(item, id);
        const actions = item.querySelector(".actions");
        if (actions && page.form) {
          const react = page.actionButton("React", "react", "React to this message");
          react.addEventListener("click", () => openPicker(item, id, react));
          actions.prepend(react);
        }
      },
      deleted(data) {
        summaries.delete(data.id);
        mine.delete(data.id);
      },
      events: {
        reaction(data) {
          if (data.room_id !== page.config.roomId) return;
          summaries.set(data.id, data.reactions);
          if (data.user === me) {
            const yours = mineOf(data.id);
            if (data.added) yours.add(data.emoji); else yours.delete(data.emoji);
          }
          redraw(data.id);
        },
      },
    };
  });
})();

// @-name autocomplete in the room page's composers (docs/chat.md, "Mentions"): typing
// `@al` lists the room's members whose name starts so (GET /api/rooms/<slug>/people/,
// recent speakers first); ↑/↓ choose, Enter or Tab inserts `@name `, Escape closes. The
// text box stays a text box: the list is tied to it with aria-controls and
// aria-activedescendant, and a polite status says how many names match. Loaded before
// chat.js, so that its keys come first while the list is open.
"use strict";

(function () {
  const configNode = document.getElementById("chat-config");
  if (!configNode) return;
  const config = JSON.parse(configNode.textContent);
  if (config.page !== "room" || !config.user) return;
  const api = `/api/rooms/${encodeURIComponent(config.room)}/people/`;
  //: `@` then the start of a name, right before the caret (as chat/mentions.py reads them).
  const TYPED = /(?:^|[^\w@.+-])@([\w.+-]*)$/;
  const answers = new Map();
  let instances = 0;

  async function people(prefix) {
    const key = prefix.toLowerCase();
    if (!answers.has(key)) {
      answers.set(key, (async () => {
        const response = await fetch(`${api}?prefix=${encodeURIComponent(prefix)}`, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (!response.ok) { answers.delete(key); return []; }
        return (await response.json()).people;
      })().catch(() => { answers.delete(key); return []; }));
    }
    return answers.get(key);
  }

  function attach(textarea) {
    const number = ++instances;
    const list = document.createElement("ul");
    list.className = "mention-options";
    list.id = `mention-options-${number}`;
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "People to mention");
    list.hidden = true;
    const status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    textarea.after(list, status);
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", list.id);
    let names = [];
    let chosen = 0;
    let typed = null;
    let asked = 0;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      names = [];
      typed = null;
      textarea.removeAttribute("aria-activedescendant");
    }
    function show() {
      list.replaceChildren(...names.map((name, index) => {
        const option = document.createElement("li");
        option.id = `${list.id}-${index}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", index === chosen ? "true" : "false");
        option.textContent = `@${name}`;
        // mousedown, not click: the text box keeps the focus.
        option.addEventListener("mousedown", (event) => { event.preventDefault(); insert(name); });
        return option;
      }));
      list.hidden = names.length === 0;
      if (names.length) textarea.setAttribute("aria-activedescendant", `${list.id}-${chosen}`);
      else textarea.removeAttribute("aria-activedescendant");
    }
    function insert(name) {
      const caret = textarea.selectionStart;
      const before = textarea.value.slice(0, caret).replace(/@[\w.+-]*$/, `@${name} `);
      textarea.value = before + textarea.value.slice(caret);
      textarea.setSelectionRange(before.length, before.length);
      close();
      status.textContent = `@${name} inserted`;
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }

    textarea.addEventListener("input", async () => {
      const caret = textarea.selectionStart;
      const found = caret === textarea.selectionEnd && TYPED.exec(textarea.value.slice(0, caret));
      if (!found) { typed = null; close(); return; }
      if (found[1] === typed) return;
      typed = found[1];
      const question = ++asked;
      const answer = await people(typed);
      if (question !== asked) return; // a newer keystroke asked since
      // The name chosen with ↑/↓ while this answer was on its way stays chosen.
      const was = list.hidden ? undefined : names[chosen];
      names = answer;
      chosen = Math.max(0, names.indexOf(was));
      show();
      status.textContent = names.length
        ? `${names.length} ${names.length === 1 ? "person matches" : "people match"}: ↑ ↓ to choose, Enter to insert.`
        : "";
    });
    textarea.addEventListener("keydown", (event) => {
      if (list.hidden || !names.length || event.isComposing) return;
      // The text changed under the list (sent, cleared by a script): nothing to complete.
      const caret = textarea.selectionStart;
      if (!TYPED.test(textarea.value.slice(0, caret))) { close(); return; }
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        chosen = (chosen + (event.key === "ArrowDown" ? 1 : -1) + names.length) % names.length;
        show();
      } else if (event.key === "Enter" || event.key === "Tab") {
        insert(names[chosen]);
      } else if (event.key === "Escape") {
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopImmediatePropagation();
    });
    textarea.addEventListener("blur", close);
  }

  for (const textarea of document.querySelectorAll("textarea[data-mentions]")) attach(textarea);
})();

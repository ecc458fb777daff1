// Attachments on the room page (docs/chat.md, "Attachments"): the files a message shows,
// and the composer's picker (the Attach button, pasting, dropping; chips to review and
// remove files before sending; the upload with its progress).
//
// Everything is built as DOM nodes; names are text nodes, never markup. Files are shown
// from the chat's own URLs only (`/api/attachments/<id>/`), which serve images inline and
// everything else as a download (chat/downloads.py). Defines `window.chatAttachments`, and
// a part of `window.chatParts` (chat.js) that draws a message's files.
"use strict";

(function (root) {
  const KINDS = { "application/pdf": "PDF", "application/zip": "ZIP" };

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    const units = ["KB", "MB", "GB"];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  // A path of the chat's own attachments, or null: nothing else is ever linked or loaded.
  function ownUrl(url) {
    return typeof url === "string" && /^\/api\/attachments\/[0-9a-f-]{36}\/(preview\/)?$/.test(url) ? url : null;
  }

  // The files a message shows: images as previews linking to the full image, other
  // files as downloads with their size.
  function rendered(attachments) {
    const list = document.createElement("ul");
    list.className = "files";
    for (const file of attachments) {
      const url = ownUrl(file.url);
      if (!url) continue;
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = url;
      const preview = file.image && ownUrl(file.image.preview);
      if (preview) {
        item.className = "file image";
        link.target = "_blank";
        link.rel = "noopener";
        link.title = `${file.name}: open full size`;
        const picture = document.createElement("img");
        picture.src = preview;
        picture.alt = file.name;
        picture.loading = "lazy";
        // The space the image takes is known before it loads: nothing jumps.
        picture.width = file.image.width;
        picture.height = file.image.height;
        link.append(picture);
      } else {
        item.className = "file";
        link.download = file.name;
        const name = document.createElement("span");
        name.className = "file-name";
        name.textContent = file.name;
        const facts = document.createElement("span");
        facts.className = "file-size";
        const kind = KINDS[file.type];
        facts.textContent = `${kind ? `${kind}, ` : ""}${size(file.size)}`;
        link.append(name, " ", facts);
      }
      item.append(link);
      list.append(item);
    }
    return list;
  }

  // The composer's files: `input` (type=file, hidden), `button` (opens it), `chips` (a
  // list showing what will be sent), `dropZone` (takes dropped files), `textarea` (takes
  // pasted ones). `limits`: {maxFiles, maxBytes}; `onError(text)`, `onChange()`.
  function picker(options) {
    const { input, button, chips, dropZone, textarea, limits } = options;
    const status = options.status;
    let files = [];

    function announce(text) {
      if (status) status.textContent = text;
    }

    function draw() {
      chips.replaceChildren(...files.map((file, index) => {
        const chip = document.createElement("li");
        chip.className = "chip";
        if (file.type.startsWith("image/")) {
          const thumb = document.createElement("img");
          thumb.alt = "";
          thumb.src = URL.createObjectURL(file);
          thumb.addEventListener("load", () => URL.revokeObjectURL(thumb.src), { once: true });
          chip.append(thumb);
        }
        const name = document.createElement("span");
        name.className = "chip-name";
        name.textContent = file.name || "pasted image";
        const facts = document.createElement("span");
        facts.className = "file-size";
        facts.textContent = size(file.size);
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip-remove";
        remove.textContent = "×";
        remove.setAttribute("aria-label", `Remove ${file.name || "pasted image"}`);
        remove.addEventListener("click", () => {
          files.splice(index, 1);
          draw();
          announce(`${file.name || "pasted image"} removed.`);
          (chips.querySelector(".chip-remove") || textarea).focus();
        });
        chip.append(name, " ", facts, remove);
        return chip;
      }));
      chips.hidden = files.length === 0;
      if (options.onChange) options.onChange();
    }

    function add(list) {
      const refused = [];
      for (const file of list) {
        if (files.length >= limits.maxFiles) {
          refused.push(`A message has at most ${limits.maxFiles} files.`);
          break;
        }
        if (file.size > limits.maxBytes) {
          refused.push(`${file.name} is ${size(file.size)}; a file is at most ${size(limits.maxBytes)}.`);
        } else if (file.size === 0) {
          refused.push(`${file.name} is empty.`);
        } else {
          files.push(file);
        }
      }
      draw();
      if (refused.length) options.onError(refused.join(" "));
      const count = files.length;
      announce(count ? `${count} file${count === 1 ? "" : "s"} ready to send.` : "");
    }

    button.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      add([...input.files]);
      input.value = ""; // the same file may be picked again after removing it
    });
    textarea.addEventListener("paste", (event) => {
      const pasted = [...(event.clipboardData ? event.clipboardData.files : [])];
      if (pasted.length) { event.preventDefault(); add(pasted); }
    });
    dropZone.addEventListener("dragover", (event) => {
      if (![...event.dataTransfer.types].includes("Files")) return;
      event.preventDefault();
      dropZone.classList.add("dropping");
    });
    dropZone.addEventListener("dragleave", (event) => {
      if (!dropZone.contains(event.relatedTarget)) dropZone.classList.remove("dropping");
    });
    dropZone.addEventListener("drop", (event) => {
      dropZone.classList.remove("dropping");
      if (!event.dataTransfer.files.length) return;
      event.preventDefault();
      add([...event.dataTransfer.files]);
      textarea.focus();
    });

    return {
      get files() { return files.slice(); },
      clear() { files = []; draw(); announce(""); },
      disable() { button.disabled = true; input.disabled = true; },
    };
  }

  // A multipart post with its upload's progress (fetch() cannot tell it): resolves to
  // {status, body} like chat.js's call(); rejects when the server cannot be reached.
  function upload(url, form, csrfToken, onProgress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", url);
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("X-CSRFToken", csrfToken);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      request.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(request.responseText); } catch (_) { body = null; }
        resolve({ response: { status: request.status, ok: request.status < 300 }, body });
      });
      request.addEventListener("error", () => reject(new Error("network")));
      request.send(form);
    });
  }

  // A message with files, posted as a multipart form (`fields`, then each file) to `url`,
  // its upload's progress on `button` ("N%", disabled meanwhile) and, each quarter, in
  // `status` for screen readers. The button gets its label back, enabled unless
  // `enabled()` says otherwise. Resolves and rejects as upload().
  function postFiles(url, csrfToken, fields, files, { button, status, enabled }) {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
    for (const file of files) form.append("file", file, file.name || "pasted image.png");
    const label = button.textContent;
    button.disabled = true;
    let shown = -1;
    return upload(url, form, csrfToken, (part) => {
      const percent = Math.floor(part * 100);
      if (percent === shown) return;
      shown = percent;
      button.textContent = `${percent}%`;
      if (percent % 25 === 0) status.textContent = `Uploading: ${percent}%`;
    }).finally(() => {
      button.disabled = !enabled();
      button.textContent = label;
    });
  }

  root.chatAttachments = { rendered, picker, upload, postFiles, size };

  // A message's files in the room's list, drawn through chat.js's parts (`page` there):
  // right after its text, before what threads.js and reactions.js draw (this script runs
  // before theirs, and they draw after a message's files).
  (root.chatParts = root.chatParts || []).push(() => {
    //: Each message's files as last known: a message drawn again without them (an edit
    //: cancelled, drawn from what its item holds) keeps them.
    const known = new Map();
    return {
      fill(item, message) {
        if (message.attachments) known.set(message.id, message.attachments);
        const files = known.get(message.id) || [];
        const text = item.querySelector(":scope > .text");
        text.hidden = message.text === ""; // a message may be its files alone
        if (files.length) text.after(rendered(files));
        // What a reply to it quotes when it has no text (threads.js).
        item.dataset.files = files.map((file) => file.name).join(", ");
      },
      deleted(data) { known.delete(data.id); },
    };
  });
})(window);

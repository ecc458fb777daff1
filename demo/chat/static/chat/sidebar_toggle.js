// The room page's sidebar (rooms, who is here, members) at phone width: folded behind a
// button at the start of the room's header, it opens as a panel over the messages.
// The button says whether it is open (aria-expanded); opening moves the focus into the
// panel (to the current room), Escape closes it and returns to the button, and so does
// moving the focus or clicking outside it. At desktop width the sidebar is always shown.
"use strict";

(function () {
  const toggle = document.getElementById("sidebar-toggle");
  const sidebar = document.getElementById("sidebar");
  const layout = document.getElementById("layout");
  if (!toggle || !sidebar || !layout) return;
  const phone = window.matchMedia("(max-width: 640px)");

  function isOpen() {
    return layout.classList.contains("sidebar-open");
  }

  function setOpen(open) {
    layout.classList.toggle("sidebar-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  }

  toggle.addEventListener("click", () => {
    setOpen(!isOpen());
    if (isOpen()) {
      // The current room, or the first control shown (the current room may be among
      // the public rooms, folded).
      const shown = (node) => (node.checkVisibility ? node.checkVisibility() : node.offsetParent !== null);
      const first = [...sidebar.querySelectorAll('[aria-current="page"]'), ...sidebar.querySelectorAll("a, button, summary")].find(shown);
      if (first) first.focus();
    }
  });
  sidebar.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && isOpen()) {
      setOpen(false);
      toggle.focus();
    }
  });
  sidebar.addEventListener("focusout", (event) => {
    const to = event.relatedTarget;
    if (phone.matches && isOpen() && to && !sidebar.contains(to) && to !== toggle) setOpen(false);
  });
  document.addEventListener("click", (event) => {
    if (isOpen() && !sidebar.contains(event.target) && !toggle.contains(event.target)) setOpen(false);
  });
  phone.addEventListener("change", () => setOpen(false));
})();

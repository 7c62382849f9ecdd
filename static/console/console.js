/* MultiMail console behaviour. Loaded as a static file: the CSP allows no inline script.
 * Everything here is an enhancement; every flow also works with JavaScript off. */
(function () {
  "use strict";

  /* Copy buttons: <button data-copy-target="id"> copies the text of #id. */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var note = button.parentNode.querySelector(".copy-feedback");
      if (note) { note.textContent = "Copied"; }
    });
  });

  /* Queue keyboard shortcuts: j/k move, a approves, r rejects (focuses the
   * reason box; Enter there submits the reject form). */
  var selectedId = null;

  function items() {
    return Array.prototype.slice.call(document.querySelectorAll(".queue-item[data-pending='1']"));
  }

  function select(item) {
    items().forEach(function (other) { other.classList.remove("selected"); });
    if (!item) { selectedId = null; return; }
    item.classList.add("selected");
    selectedId = item.id;
    item.scrollIntoView({ block: "nearest" });
  }

  function current() {
    var list = items();
    var found = selectedId ? document.getElementById(selectedId) : null;
    if (found && list.indexOf(found) !== -1) { return found; }
    return null;
  }

  function move(step) {
    var list = items();
    if (!list.length) { return; }
    var index = list.indexOf(current());
    index = index === -1 ? 0 : Math.min(list.length - 1, Math.max(0, index + step));
    select(list[index]);
  }

  function typing(target) {
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (!document.querySelector(".queue") || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    if (event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "a" || event.key === "r") {
      var item = current();
      event.preventDefault();
      if (!item) {
        // Nothing chosen yet: the first key press only selects, so a stray "a" never
        // approves an email the operator has not looked at.
        select(items()[0]);
        return;
      }
      if (event.key === "a") {
        var approve = item.querySelector("button[value='approve']");
        if (approve) { approve.click(); }
      } else {
        var reason = item.querySelector("input[name='reason']");
        if (reason) { reason.focus(); }
      }
    }
  });

  /* After a poll re-renders the list, keep the selection on the same email. */
  document.addEventListener("htmx:afterSettle", function () {
    var item = selectedId ? document.getElementById(selectedId) : null;
    if (item && item.getAttribute("data-pending") === "1") { item.classList.add("selected"); }
  });
})();

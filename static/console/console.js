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

  /* The review screen (templates/console/queue.html): a list of held emails, one of them
   * open in the pane beside it. The keyboard moves a cursor over the list's rows:
   *   j/k move it, Enter/o open its email in the pane, a approves and r rejects the open
   *   email (r focuses the reason; Enter there rejects), x selects the row for a batch,
   *   Shift+A approves the selected ones (through the confirmation page), / goes to the
   *   filters, ? shows the help.
   * After a decision the pane shows the next email, and focus moves to it (or to the
   * reason nothing was decided). */
  var cursorId = null;
  // False until the operator opens an email: the pane's first email was opened by the
  // page, so the first a or r only opens it, and a stray key never decides an email the
  // operator has not chosen to look at.
  var opened = false;
  var arrived = {};

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-list .queue-row"));
  }

  function openId() {
    var open = document.querySelector("#queue-pane .queue-item[data-pending='1']");
    return open ? open.getAttribute("data-email") : null;
  }

  function rowOf(emailId) {
    return emailId ? document.getElementById("row-" + emailId) : null;
  }

  function cursorRow() {
    var row = cursorId ? document.getElementById(cursorId) : null;
    return row && rows().indexOf(row) !== -1 ? row : null;
  }

  function setCursor(row) {
    rows().forEach(function (other) { other.classList.remove("cursor"); });
    cursorId = row ? row.id : null;
    if (row) {
      row.classList.add("cursor");
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function markOpen() {
    var id = openId();
    rows().forEach(function (row) {
      var isOpen = row.getAttribute("data-email") === id;
      row.classList.toggle("current", isOpen);
      var link = row.querySelector(".row-link");
      if (isOpen) { link.setAttribute("aria-current", "true"); } else { link.removeAttribute("aria-current"); }
      if (isOpen) { row.classList.remove("arrived"); delete arrived[row.id]; }
    });
  }

  function move(step) {
    var list = rows();
    if (!list.length) { return; }
    var index = list.indexOf(cursorRow() || rowOf(openId()));
    index = index === -1 ? 0 : Math.min(list.length - 1, Math.max(0, index + step));
    setCursor(list[index]);
  }

  function openRow(row) {
    var link = row ? row.querySelector(".row-link") : null;
    if (!link) { return false; }
    opened = true;
    if (row.getAttribute("data-email") === openId()) { focusPane(); } else { link.click(); }
    return true;
  }

  function focusPane() {
    var pane = document.getElementById("queue-pane");
    if (!pane) { return; }
    var target = pane.querySelector("[data-focus]") || pane;
    target.focus({ preventScroll: true });
    // Its start in sight (on a phone the pane is below the list), not wherever the focus
    // scroll of a tall element would leave it.
    var top = target.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight - 80) { target.scrollIntoView({ block: "start" }); }
  }

  function announce(text) {
    var region = document.getElementById("queue-announce");
    if (region) { region.textContent = text; }
  }

  function typing(target) {
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function decideOpen(key) {
    var pane = document.getElementById("queue-pane");
    if (!opened || !openId()) {
      // Nothing chosen yet: the first press only opens the email under the cursor.
      if (!openRow(cursorRow() || rowOf(openId()) || rows()[0])) { return; }
      if (cursorRow() === null) { setCursor(rowOf(openId())); }
      return;
    }
    if (key === "a") {
      var approve = pane.querySelector(".queue-item button[value='approve']");
      if (approve) { approve.click(); }
    } else {
      var reason = pane.querySelector(".queue-item input[name='reason']");
      if (reason) { reason.focus(); }
    }
  }

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("queue-pane") || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var help = document.getElementById("shortcuts-help");
    if (help && help.open) { return; }  // the dialog handles Escape itself
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var key = event.key;
    if (key === "j" || key === "k") {
      move(key === "j" ? 1 : -1);
    } else if (key === "o" || (key === "Enter" && !event.target.closest("a, button, summary"))) {
      if (!openRow(cursorRow() || rowOf(openId()) || rows()[0])) { return; }
    } else if (key === "a" || key === "r") {
      decideOpen(key);
    } else if (key === "x") {
      var row = cursorRow() || rowOf(openId());
      var box = row ? row.querySelector(".select-email") : null;
      if (!box) { return; }
      box.checked = !box.checked;
      if (!cursorRow()) { setCursor(row); }
      announce(document.querySelectorAll("#queue-list .select-email:checked").length + " selected");
    } else if (key === "A") {
      if (document.querySelectorAll("#queue-list .select-email:checked").length) {
        document.getElementById("approve-selected").click();
      } else {
        announce("Select emails with x first.");
      }
    } else if (key === "/") {
      var panel = document.getElementById("filter-panel");
      if (panel) { panel.open = true; }
      var first = document.querySelector("#queue-filters select, #queue-filters input");
      if (first) { first.focus(); }
    } else if (key === "?") {
      if (help) { help.showModal(); }
    } else {
      return;
    }
    event.preventDefault();
  });

  /* The filters apply as soon as a choice changes (the button stays for typed text). */
  document.addEventListener("change", function (event) {
    var form = event.target.closest("#queue-filters");
    if (form && event.target.tagName === "SELECT") { form.requestSubmit(); }
  });

  /* Before the poll replaces the list, remember what the operator had there. */
  var before = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "queue-list") { return; }
    before = {
      ids: rows().map(function (row) { return row.id; }),
      checked: Array.prototype.slice.call(
        document.querySelectorAll("#queue-list .select-email:checked")
      ).map(function (box) { return box.id; })
    };
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.target;
    if (target.id === "queue-pane") {
      // A decision's answer names the email it decided: its row leaves the list.
      var outcome = target.querySelector("[data-decided]");
      var decided = outcome ? rowOf(outcome.getAttribute("data-decided")) : null;
      if (decided) { decided.remove(); }
      opened = true;
      markOpen();
      var open = rowOf(openId());
      if (open) { setCursor(open); }
      focusPane();
    } else if (target.id === "queue-list" && before) {
      // The same rows stay selected and under the cursor; mail held since stands out.
      before.checked.forEach(function (id) {
        var box = document.getElementById(id);
        if (box) { box.checked = true; }
      });
      var fresh = 0;
      rows().forEach(function (row) {
        if (before.ids.indexOf(row.id) === -1) { arrived[row.id] = true; fresh += 1; }
        if (arrived[row.id]) { row.classList.add("arrived"); }
      });
      var row = cursorRow();
      if (row) { row.classList.add("cursor"); }
      markOpen();
      if (fresh) { announce(fresh + " new held email" + (fresh > 1 ? "s" : "")); }
      before = null;
    }
  });
})();

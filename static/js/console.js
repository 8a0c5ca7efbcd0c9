// Console behaviour without inline handlers, so the Content-Security-Policy needs no 'unsafe-inline'.
// Delegated from the document, so forms swapped in by htmx work too.
//   <form data-confirm="Question?">  asks before submitting
//   <select data-autosubmit>          submits its form on change
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
    el.form.submit();
  }
});

// The operator inbox, keyboard first (like the triage tools operators know): j/k move, x selects
// for bulk reject, Enter/o opens; on an escalation a approves, r goes to the reason to reject.
// Keys typed into a field are left alone.
(function () {
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#pending-escalations tr[data-escalation]")); }
  function current() { return document.querySelector("#pending-escalations tr.is-current"); }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var i = all.indexOf(current());
    var next = all[Math.max(0, Math.min(all.length - 1, i < 0 ? 0 : i + step))];
    all.forEach(function (r) { r.classList.remove("is-current"); r.removeAttribute("aria-current"); });
    next.classList.add("is-current");
    next.setAttribute("aria-current", "true");
    next.scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var key = event.key;
    if (document.getElementById("pending-escalations")) {
      var row = current();
      if (key === "j") { move(1); } else if (key === "k") { move(-1); }
      else if ((key === "Enter" || key === "o") && row) { window.location.href = row.dataset.href; }
      else if (key === "x" && row) { var box = row.querySelector("input[type=checkbox]"); if (box) box.checked = !box.checked; }
      else { return; }
      event.preventDefault();
      return;
    }
    var approve = document.getElementById("approve"), comment = document.getElementById("decision-comment");
    if (key === "a" && approve) { event.preventDefault(); approve.click(); }
    else if (key === "r" && comment && document.getElementById("reject")) { event.preventDefault(); comment.focus(); }
  });
  // Enter in the reason field rejects (Shift+Enter for a new line).
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && event.target.id === "decision-comment" && event.target.value.trim()) {
      var reject = document.getElementById("reject");
      if (reject) { event.preventDefault(); reject.click(); }
    }
  });
  // A title badge with the number waiting, updated by the table's poll: a new arrival shows in the tab.
  var baseTitle = document.title;
  function badge() {
    var counts = document.getElementById("inbox-counts");
    if (!counts) return;
    var n = parseInt(counts.dataset.pending || "0", 10);
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
  }
  document.addEventListener("DOMContentLoaded", badge);
  document.addEventListener("htmx:afterSwap", badge);
})();

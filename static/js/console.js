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

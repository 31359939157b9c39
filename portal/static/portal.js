/* When htmx gets an error answer it does not swap (403, 429, 5xx) or no answer at all, say so at the form. */
(function () {
  "use strict";
  var TEXTS = {
    403: "Страница устарела. Обновите её и повторите — введённое лучше скопировать.",
    413: "Слишком большой объём данных.",
    429: "Слишком много попыток. Подождите минуту и попробуйте снова."
  };
  function show(elt, text) {
    var box = (elt && elt.closest && (elt.closest("form") || elt.closest("[hx-get],[hx-post]"))) || document.body;
    var note = box.querySelector(":scope > .htmx-error");
    if (!note) {
      note = document.createElement("p");
      note.className = "form-error htmx-error";
      note.setAttribute("role", "alert");
      box.insertBefore(note, box.firstChild);
    }
    note.textContent = text;
  }
  document.addEventListener("htmx:responseError", function (e) {
    var status = e.detail.xhr.status;
    show(e.detail.elt, TEXTS[status] || ("Не получилось: ошибка на сервере (" + status + "). Попробуйте ещё раз."));
  });
  document.addEventListener("htmx:sendError", function (e) {
    show(e.detail.elt, "Нет связи с сервером. Проверьте интернет и попробуйте ещё раз.");
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var box = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("form");
    var note = box && box.querySelector(":scope > .htmx-error");
    if (note) note.remove();
  });
})();
/* A refused form's error summary takes the focus, so that a screen reader and the keyboard start there. */
(function () {
  "use strict";
  function focusSummary(root) {
    var summary = root.matches && root.matches("[data-error-summary]") ? root : root.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }
  document.addEventListener("DOMContentLoaded", function () { focusSummary(document); });
  document.addEventListener("htmx:afterSettle", function (e) { focusSummary(e.detail.elt); });
})();

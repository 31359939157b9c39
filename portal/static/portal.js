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
/* [data-copy="#selector"]: a button that copies the text of the element named (the server's address, a token). */
(function () {
  "use strict";
  document.addEventListener("click", async function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = ("value" in source ? source.value : source.textContent).trim();
    var label = button.dataset.label || (button.dataset.label = button.textContent);
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Скопировано";
    } catch (err) {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Выделено — нажмите Ctrl+C";
    }
    setTimeout(function () { button.textContent = label; }, 2500);
  });
})();

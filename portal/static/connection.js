/* «Подписать соглашение» on /cabinet/connection: the member key signs the agreement in the browser —
 * message = "coopdoc:v1:" + document_hash + ":" + sha256 of the drawn signature from the joining package (SPEC §5).
 * The agreement block is replaced by htmx as the form changes, so the form is found at submit time. */
(function () {
  "use strict";
  function keyStatus(root) {
    var source = root.querySelector("[data-key-source]");
    if (!source || source.dataset.ready) return;
    source.dataset.ready = "1";
    var K = window.MemberKeys, email = source.getAttribute("data-email");
    source.seedFor = K.keySource(source);  // listens to the key file input from now on
    var status = source.querySelector("[data-key-status]"), manual = source.querySelector("[data-key-manual]");
    if (K.load(email)) {
      status.textContent = "Ключ пайщика для " + email + " сохранён в этом браузере — им и будет подписано соглашение.";
    } else {
      status.textContent = "В этом браузере нет вашего ключа пайщика: вставьте его или выберите файл ключа.";
      manual.hidden = false;
    }
  }

  document.addEventListener("submit", async function (ev) {
    var form = ev.target.closest && ev.target.closest("[data-connection-sign]");
    if (!form || form.dataset.signed === "1") return;
    ev.preventDefault();
    var K = window.MemberKeys, source = form.querySelector("[data-key-source]");
    var keyError = source.querySelector("[data-key-error]"), formError = form.querySelector("[data-sign-error]");
    keyError.hidden = formError.hidden = true;
    var seed;
    try { seed = source.seedFor(source.getAttribute("data-email")); } catch (e) {
      keyError.textContent = e.message; keyError.hidden = false; return;
    }
    if (!seed) {
      source.querySelector("[data-key-manual]").hidden = false;
      keyError.textContent = "Укажите ключ пайщика: вставьте его или выберите файл ключа.";
      keyError.hidden = false;
      return;
    }
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = "Подписываем…";
    try {
      var message = "coopdoc:v1:" + form.querySelector("[name=hash]").value + ":" + form.getAttribute("data-image-sha256");
      form.querySelector("[name=signature]").value = await K.sign(seed, message);
      form.dataset.signed = "1";
      form.submit();
    } catch (e) {
      button.disabled = false;
      button.textContent = "Подписать соглашение";
      formError.textContent = "Не удалось подписать: " + e.message;
      formError.hidden = false;
    }
  });
  document.addEventListener("DOMContentLoaded", function () { keyStatus(document); });
  document.addEventListener("htmx:load", function (e) { keyStatus(e.target); });
})();

/* The installation key (/install/key on the cooperative's site, and the operator's signing hop): the browser signs
 * the one-time challenge "coopinstall:v1:<domain>:<nonce>" (the form's data-message) with the member key from a
 * key file, a pasted key or — on the operator's site — the key kept in this browser. The key never leaves it.
 * Back from the hop, the signature the operator returned is posted on its own ([data-install-hop-return]). */
(function () {
  "use strict";
  function showError(root, text) {
    var el = root.querySelector("[data-key-error]");
    if (el) { el.textContent = text || ""; el.hidden = !text; }
  }

  function init(form) {
    var K = window.MemberKeys, source = form.querySelector("[data-key-source]");
    var email = source.getAttribute("data-email") || "";
    var seedFor = K.keySource(source);
    var status = source.querySelector("[data-key-status]");
    if (status) {
      status.textContent = email && K.load(email)
        ? "Ключ пайщика для " + email + " сохранён в этом браузере — им и будет подписан код. Можно указать другой ключ ниже."
        : "В этом браузере нет сохранённого ключа: вставьте ключ или выберите файл ключа.";
    }
    if (!(window.isSecureContext && window.crypto && crypto.subtle)) {
      showError(source, "Браузер не поддерживает подпись ключом: нужен современный браузер и защищённое соединение (HTTPS).");
      return;
    }
    form.addEventListener("submit", async function (ev) {
      if (form.dataset.signed === "1") return;
      ev.preventDefault();
      showError(source, "");
      var seed;
      try { seed = seedFor(email); } catch (e) { showError(source, e.message); return; }
      if (!seed) { showError(source, "Укажите ключ пайщика: вставьте его или выберите файл ключа."); return; }
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        form.querySelector("[name=public_key]").value = K.b64(await K.publicKeyOf(seed));
        form.querySelector("[name=signature]").value = await K.sign(seed, form.getAttribute("data-message"));
        form.dataset.signed = "1";
        form.submit();
      } catch (e) {
        button.disabled = false;
        showError(source, "Не удалось подписать: " + e.message);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-install-key]").forEach(init);
    var back = document.querySelector("form[data-install-hop-return]");
    if (back) back.submit();  /* the signature came back from the operator's cabinet: finish at once */
  });
})();

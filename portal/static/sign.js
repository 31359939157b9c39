/* Signing a package: the drawn signature (PNG) + the member key sign every document in the browser:
 * message = "coopdoc:v1:" + document_hash + ":" + sha256(signature PNG) (SPEC §5). */
(function () {
  "use strict";
  function init(form) {
    var K = window.MemberKeys;
    var email = form.getAttribute("data-email");
    var status = form.querySelector("[data-key-status]");
    var manual = form.querySelector("[data-key-manual]");
    var errorEl = form.querySelector("[data-key-error]");
    var seedFor = K.keySource(form.querySelector("[data-key-source]"));
    function showError(text) { errorEl.textContent = text || ""; errorEl.hidden = !text; }
    if (K.load(email)) {
      status.textContent = "Ключ пайщика для " + email + " сохранён в этом браузере — им и будут подписаны документы.";
    } else {
      status.textContent = "В этом браузере нет вашего ключа пайщика: вставьте его или выберите файл ключа.";
      manual.hidden = false;
    }
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      showError("");
      var pad = window.SignaturePad.get(form.querySelector("[data-signature-pad]"));
      if (pad.validate()) return;
      var seed;
      try { seed = seedFor(email); } catch (e) { showError(e.message); return; }
      if (!seed) { manual.hidden = false; showError("Укажите ключ пайщика: вставьте его или выберите файл ключа."); return; }
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      button.textContent = "Подписываем…";
      try {
        var blob = await pad.toPNGBlob();
        var bytes = new Uint8Array(await blob.arrayBuffer());
        var imageHash = await K.sha256Hex(bytes);
        var inputs = form.querySelectorAll("[data-doc-hash]");
        for (var i = 0; i < inputs.length; i++) {
          var id = inputs[i].getAttribute("data-doc-hash");
          form.querySelector("[name='sig_" + id + "']").value =
            await K.sign(seed, "coopdoc:v1:" + inputs[i].value + ":" + imageHash);
        }
        var transfer = new DataTransfer();
        transfer.items.add(new File([blob], "signature.png", { type: "image/png" }));
        form.querySelector("[name=signature_png]").files = transfer.files;
        form.submit();
      } catch (e) {
        button.disabled = false;
        button.textContent = "Подписать";
        showError("Не удалось подписать: " + e.message);
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-sign-form]").forEach(init);
  });
})();

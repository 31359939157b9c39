/* Signing on /cabinet/sign: one drawn signature (PNG) and the member key sign each document in the browser:
 * message = "coopdoc:v1:" + document_hash + ":" + sha256(signature PNG) (SPEC §5).
 * Two acts, each its own form: «Дать согласие» (the personal-data consent, [data-sign-form=consent]) and
 * «Подписать» (the package, [data-sign-form=package]). The consent is sent in the background and its part of
 * the page is replaced by the server's answer, so the drawing stays and signs the package too. */
(function () {
  "use strict";
  var K, seedFor, source, status, manual, keyError, email;

  function pad() { return window.PortalSignature.get(document.querySelector("[data-signature-pad]")); }
  function showKeyError(text) { keyError.textContent = text || ""; keyError.hidden = !text; }
  function showFormError(form, text) {
    var el = form.querySelector("[data-sign-error]");
    if (el) { el.textContent = text || ""; el.hidden = !text; }
  }

  /* The drawing and the key, checked; null when something is missing (the message is shown). */
  async function material(form) {
    showKeyError("");
    showFormError(form, "");
    var p = pad();
    if (p.validate()) {
      document.querySelector("#signature").scrollIntoView({ block: "start" });
      return null;
    }
    var seed;
    try { seed = seedFor(email); } catch (e) { showKeyError(e.message); return null; }
    if (!seed) {
      manual.hidden = false;
      showKeyError("Укажите ключ пайщика: вставьте его или выберите файл ключа.");
      document.querySelector("#signature").scrollIntoView({ block: "start" });
      return null;
    }
    var blob = await p.toPNGBlob();
    var imageHash = await K.sha256Hex(new Uint8Array(await blob.arrayBuffer()));
    return { seed: seed, blob: blob, imageHash: imageHash };
  }

  async function signInto(form, m) {
    var inputs = form.querySelectorAll("[data-doc-hash]");
    for (var i = 0; i < inputs.length; i++) {
      var id = inputs[i].getAttribute("data-doc-hash");
      form.querySelector("[name='sig_" + id + "']").value =
        await K.sign(m.seed, "coopdoc:v1:" + inputs[i].value + ":" + m.imageHash);
    }
  }

  function busy(form, on, label) {
    var button = form.querySelector("button[type=submit]");
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.disabled = on;
    button.textContent = on ? label : button.dataset.label;
  }

  /* «Дать согласие»: the ticked box is the consent; the server refuses an unticked one at the field too. */
  async function giveConsent(form) {
    var m = await material(form);
    if (!m) return;
    busy(form, true, "Отправляем согласие…");
    try {
      await signInto(form, m);
      var body = new FormData(form);
      body.set("signature_png", new File([m.blob], "signature.png", { type: "image/png" }));
      var response = await fetch(form.action, { method: "POST", body: body, credentials: "same-origin" });
      var page = new DOMParser().parseFromString(await response.text(), "text/html");
      var steps = page.querySelector("[data-signing-steps]");
      if (!steps) { location.assign(response.url); return; }  // e.g. the application was signed meanwhile
      var list = page.querySelector("#sign-steps");
      if (list) document.querySelector("#sign-steps").replaceWith(document.adoptNode(list));
      document.querySelector("[data-signing-steps]").replaceWith(document.adoptNode(steps));
      initForms();
      var target = document.querySelector(response.ok ? "#package" : "#consent");
      target.scrollIntoView({ block: "start" });
      var focus = document.querySelector("#consent-given, #err-consent, #consent-error");
      if (focus) { focus.tabIndex = -1; focus.focus({ preventScroll: true }); }
    } catch (e) {
      busy(form, false);
      showFormError(form, "Не удалось отправить согласие: " + e.message);
    }
  }

  /* «Подписать»: the package, after the consent; the page goes on to the cabinet. */
  async function signPackage(form) {
    var m = await material(form);
    if (!m) return;
    if (form.getAttribute("data-consent-given") !== "yes") {
      showFormError(form, "Сначала дайте согласие на обработку персональных данных — шаг 1, кнопка «Дать согласие».");
      document.querySelector("#consent").scrollIntoView({ block: "start" });
      return;
    }
    busy(form, true, "Подписываем…");
    try {
      await signInto(form, m);
      var transfer = new DataTransfer();
      transfer.items.add(new File([m.blob], "signature.png", { type: "image/png" }));
      form.querySelector("[name=signature_png]").files = transfer.files;
      form.submit();
    } catch (e) {
      busy(form, false);
      showFormError(form, "Не удалось подписать: " + e.message);
    }
  }

  function initForms() {
    document.querySelectorAll("[data-sign-form]").forEach(function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = "1";
      var act = form.getAttribute("data-sign-form") === "consent" ? giveConsent : signPackage;
      form.addEventListener("submit", function (ev) { ev.preventDefault(); act(form); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    source = document.querySelector("[data-key-source]");
    if (!source) return;
    K = window.MemberKeys;
    email = source.getAttribute("data-email");
    status = source.querySelector("[data-key-status]");
    manual = source.querySelector("[data-key-manual]");
    keyError = source.querySelector("[data-key-error]");
    seedFor = K.keySource(source);
    if (K.load(email)) {
      status.textContent = "Ключ пайщика для " + email + " сохранён в этом браузере — им и будут подписаны документы.";
    } else {
      status.textContent = "В этом браузере нет вашего ключа пайщика: вставьте его или выберите файл ключа.";
      manual.hidden = false;
    }
    initForms();
  });
})();

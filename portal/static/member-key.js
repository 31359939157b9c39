/* Member key (ключ пайщика): Ed25519 in the browser (WebCrypto). The private key never leaves the browser.
 * The key is kept as its 32-byte seed; WebCrypto imports it as PKCS#8 behind a fixed 16-byte prefix (SPEC §5).
 * Pages use data attributes: [data-key-create], [data-key-login], [data-forget-key]. */
(function () {
  "use strict";
  var PKCS8_PREFIX = hexToBytes("302e020100300506032b657004220420");
  var STORE_PREFIX = "voskhod-member-key:";
  var PENDING = "voskhod-pending-key";

  function hexToBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }
  function bytesToHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function b64(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }
  function b64urlToBytes(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function concat(a, b) { var out = new Uint8Array(a.length + b.length); out.set(a); out.set(b, a.length); return out; }

  function supported() { return !!(window.isSecureContext && window.crypto && crypto.subtle); }

  /* The readable form: 64 hex digits in 16 groups of 4. */
  function formatSeed(seed) { return bytesToHex(seed).match(/.{4}/g).join("-"); }
  function parseSeed(text) {
    var lines = String(text || "").split(/\r?\n/).filter(function (l) { return l.trim() && l.trim()[0] !== "#"; });
    var hex = lines.join("").replace(/^[^:]*:/, "").replace(/[\s-]/g, "").toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error("Ключ не распознан: нужны 64 шестнадцатеричные цифры (16 групп по 4).");
    return hexToBytes(hex);
  }

  async function importSeed(seed) {
    return crypto.subtle.importKey("pkcs8", concat(PKCS8_PREFIX, seed), { name: "Ed25519" }, true, ["sign"]);
  }
  async function publicKeyOf(seed) {
    var jwk = await crypto.subtle.exportKey("jwk", await importSeed(seed));
    return b64urlToBytes(jwk.x);
  }
  async function generate() {
    var pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
    var pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    var seed = pkcs8.slice(pkcs8.length - 32);
    var pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    return { seed: seed, publicKey: pub };
  }
  async function sign(seed, text) {
    var key = await importSeed(seed);
    var sig = await crypto.subtle.sign({ name: "Ed25519" }, key, new TextEncoder().encode(text));
    return b64(new Uint8Array(sig));
  }
  async function sha256Hex(bytes) {
    return bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  }

  function store(email, seed) { try { localStorage.setItem(STORE_PREFIX + email.toLowerCase(), bytesToHex(seed)); } catch (e) {} }
  function load(email) {
    try { var hex = localStorage.getItem(STORE_PREFIX + String(email).trim().toLowerCase()); return hex ? hexToBytes(hex) : null; }
    catch (e) { return null; }
  }
  function forget(email) {
    try {
      if (email) localStorage.removeItem(STORE_PREFIX + email.toLowerCase());
      else Object.keys(localStorage).forEach(function (k) { if (k.indexOf(STORE_PREFIX) === 0) localStorage.removeItem(k); });
      Object.keys(sessionStorage).forEach(function (k) { if (k.indexOf(PENDING) === 0) sessionStorage.removeItem(k); });
    } catch (e) {}
  }
  function keyFileText(email, seed) {
    return "# Ключ пайщика ПК «ВОСХОД» для " + email + "\n" +
      "# Храните в секрете: по этому ключу вас узнаёт портал и им подписываются документы.\n" +
      "КЛЮЧ: " + formatSeed(seed) + "\n";
  }
  function download(name, text) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
  }
  function showError(root, text) {
    var el = root.querySelector("[data-key-error]");
    if (el) { el.textContent = text || ""; el.hidden = !text; }
  }

  /* Where a key comes from, for login and signing: a pasted key, a key file, or this browser's store.
   * Returns seedFor(email) → the seed or null; it throws an Error with a Russian message for a bad key. */
  function keySource(root) {
    var pasted = root.querySelector("[data-key-paste]");
    var file = root.querySelector("[data-key-file]");
    var fileSeed = null;
    file.addEventListener("change", async function () {
      showError(root, "");
      fileSeed = null;
      if (!file.files.length) return;
      if (file.files[0].size > 4096) { showError(root, "Это не файл ключа: он слишком большой."); return; }
      try { fileSeed = parseSeed(await file.files[0].text()); } catch (e) { showError(root, e.message); }
    });
    return function seedFor(email) {
      if (pasted.value.trim()) return parseSeed(pasted.value);
      return fileSeed || load(email);
    };
  }

  /* Registration / recovery: create a key, show it once, prove it, send only the public key. */
  function initCreate(root) {
    var email = root.getAttribute("data-email");
    var form = root.closest("form");
    var out = root.querySelector("[data-key-output]");
    var panel = root.querySelector("[data-key-panel]");
    var createBtn = root.querySelector("[data-action=create-key]");
    var seed = null;
    var pendingKey = PENDING + ":" + location.pathname;
    /* The ПЭП offer is accepted before the key is made: the server renders the button disabled until it has
     * recorded the acceptance («Принять оферту»); nothing here enables it. */
    if (!supported()) {
      showError(root, "Браузер не поддерживает создание ключа: нужен современный браузер и защищённое соединение (HTTPS).");
      if (createBtn) createBtn.disabled = true;
      return;
    }
    async function show(s) {
      seed = s;
      var pub = await publicKeyOf(seed);
      var pubB64 = b64(pub);
      form.querySelector("[name=public_key]").value = pubB64;
      form.querySelector("[name=key_proof]").value = await sign(seed, "coopkey:v1:" + email + ":" + pubB64);
      out.value = formatSeed(seed);
      panel.hidden = false;
      createBtn.hidden = true;
      try { sessionStorage.setItem(pendingKey, bytesToHex(seed)); } catch (e) {}
    }
    createBtn.addEventListener("click", async function () {
      if (createBtn.disabled) return;
      try { var k = await generate(); await show(k.seed); } catch (e) { showError(root, "Не удалось создать ключ: " + e.message); }
    });
    root.querySelector("[data-action=copy-key]").addEventListener("click", async function (ev) {
      try { await navigator.clipboard.writeText(out.value); ev.target.textContent = "Скопировано"; }
      catch (e) { out.select(); document.execCommand && document.execCommand("copy"); }
    });
    root.querySelector("[data-action=download-key]").addEventListener("click", function () {
      download("klyuch-paishchika-" + email.replace(/[^a-z0-9]+/gi, "-") + ".txt", keyFileText(email, seed));
    });
    form.addEventListener("submit", function (ev) {
      if (!root.isConnected) return;  /* this panel was swapped out (htmx): its successor answers */
      if (!seed) { ev.preventDefault(); showError(root, "Сначала создайте ключ."); return; }
      var keep = form.querySelector("[name=remember_key]");
      if (keep && keep.checked) store(email, seed);
    });
    try {  /* the server re-showed the page after an error: keep the key already shown, do not make a new one */
      var pending = sessionStorage.getItem(pendingKey);
      if (pending && root.hasAttribute("data-restore")) show(hexToBytes(pending));
      else sessionStorage.removeItem(pendingKey);
    } catch (e) {}
  }

  /* Login: sign the server's one-time challenge with the key from this browser, a pasted key or a key file. */
  function initLogin(root) {
    var form = root.closest("form");
    var nonce = root.getAttribute("data-nonce");
    var emailInput = form.querySelector("[name=email]");
    var status = root.querySelector("[data-key-status]");
    function refresh() {
      var stored = load(emailInput.value);
      status.textContent = stored ? "Ключ для этого адреса сохранён в браузере — можно просто нажать «Войти»." :
        "В этом браузере нет сохранённого ключа для этого адреса: вставьте ключ или выберите файл ключа.";
    }
    emailInput.addEventListener("input", refresh);
    refresh();
    if (!supported()) { showError(root, "Браузер не поддерживает вход по ключу: нужен современный браузер и HTTPS."); return; }
    var seedFor = keySource(root);
    form.addEventListener("submit", async function (ev) {
      if (form.dataset.signed === "1") return;
      ev.preventDefault();
      showError(root, "");
      var seed = null;
      try { seed = seedFor(emailInput.value); } catch (e) { showError(root, e.message); return; }
      if (!seed) { showError(root, "Укажите ключ пайщика: вставьте его или выберите файл ключа."); return; }
      form.querySelector("[name=public_key]").value = b64(await publicKeyOf(seed));
      form.querySelector("[name=signature]").value = await sign(seed, "coopauth:v1:" + nonce);
      var keep = form.querySelector("[name=remember_key]");
      if (keep && keep.checked) store(emailInput.value.trim(), seed);
      form.dataset.signed = "1";
      form.submit();  // no second submit event: the signature is in place
    });
  }

  function initForget(btn) {
    btn.addEventListener("click", function () {
      forget(btn.getAttribute("data-forget-key") || null);
      var note = document.querySelector("[data-forget-note]");
      if (note) note.hidden = false;
    });
  }

  function init(scope) {
    (scope || document).querySelectorAll("[data-key-create]").forEach(function (el) {
      if (!el.dataset.ready) { el.dataset.ready = "1"; initCreate(el); }
    });
    (scope || document).querySelectorAll("[data-key-login]").forEach(function (el) {
      if (!el.dataset.ready) { el.dataset.ready = "1"; initLogin(el); }
    });
    (scope || document).querySelectorAll("[data-forget-key]").forEach(function (el) {
      if (!el.dataset.ready) { el.dataset.ready = "1"; initForget(el); }
    });
  }

  window.MemberKeys = { keySource: keySource, generate: generate, sign: sign, publicKeyOf: publicKeyOf, formatSeed: formatSeed,
    parseSeed: parseSeed, load: load, store: store, forget: forget, sha256Hex: sha256Hex, b64: b64,
    hexToBytes: hexToBytes, bytesToHex: bytesToHex };
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
  /* The offer block came back from «Принять оферту»: the focus goes to what it says (accepted, or the box). */
  document.addEventListener("htmx:afterSettle", function (e) {
    var from = e.detail.requestConfig && e.detail.requestConfig.elt;
    var block = document.getElementById("offer-key");
    if (!block || !from || from.id !== "offer-form") return;
    var target = block.querySelector("[data-offer-accepted]") || block.querySelector("#pep-offer");
    if (target) target.focus();
  });
})();

/* The member's hand-drawn signature (finger, pen, mouse), checked and exported as a PNG.
 *
 * The drawing itself is done by the signature_pad library (https://github.com/szimek/signature_pad,
 * global `SignaturePad`), loaded before this file from the CDN with SRI: SIGNATURE_PAD_URL in
 * portal/web.py. This thin wrapper adds what the portal needs around it: the buttons, the checks
 * the server makes (in Russian), a drawing that survives resizing, and a PNG of a fixed size that
 * carries nothing but the pixels.
 *
 * Markup (server templates; missing parts are created here):
 *   <div class="signature-pad" data-signature-pad>
 *     <div class="signature-pad-surface">
 *       <canvas role="img" aria-label="Поле для подписи"></canvas>
 *     </div>
 *     <div class="signature-pad-actions">
 *       <button type="button" class="button secondary" data-action="undo">Отменить штрих</button>
 *       <button type="button" class="button secondary" data-action="clear">Очистить</button>
 *     </div>
 *     <p class="signature-pad-error" role="alert" hidden></p>
 *   </div>
 *
 * API, window.PortalSignature:
 *   get(element | selector) → pad or null: the pad of that root [data-signature-pad], or of the
 *     root around or inside the element; made on first use.
 *   init(node) — makes the pads in node (done on page load and on every htmx:load).
 *   messages — the Russian messages {blank, line, filled, unavailable}.
 * A pad:
 *   isEmpty() → boolean;
 *   validate() → null, or the message it also shows under the field: nothing drawn, a dot or a
 *     single straight line, a filled shape (the same checks as validate_signature_png in
 *     portal/documents/signing.py, a little stricter, made on the pixels of the PNG);
 *   toPNGBlob() → Promise<Blob>: 1200×400 px, transparent, dark ink, whatever the screen; only the
 *     PNG chunks that carry the pixels (IHDR, PLTE, IDAT, IEND) — the server refuses anything else;
 *   undo() — removes the last stroke; clear() — removes them all;
 *   strokes() → [[{x, y}, …], …] in a 600×200 logical space;
 *   destroy() — detaches it (htmx does it before swapping the element out).
 * Every change dispatches a bubbling `signature:change` CustomEvent on the root,
 * detail: {strokes: <number of strokes>, empty: <boolean>, reason: "stroke" | "undo" | "clear"}.
 *
 * No inline scripts, no eval: works under CSP `script-src 'self' https://cdn.jsdelivr.net`.
 */
(function () {
  "use strict";

  if (window.PortalSignature) return; // loaded twice

  var LOGICAL_W = 600; // the logical drawing space (3:1), as the CSS draws the field
  var LOGICAL_H = 200;
  var EXPORT_SCALE = 2; // the PNG is 1200×400 px: far below the server's 2000×1000 px and 200 KB
  var INK = "#14213d";
  // Half the line's width in CSS px on screen (logical px in the PNG): thinner when the pen is fast.
  var PEN = { minWidth: 0.75, maxWidth: 2, throttle: 0, minDistance: 2, penColor: INK };

  // The server's checks (portal/documents/signing.py), with a margin of about 10 % so that what
  // passes here also passes there.
  var INK_LUMA = 200; // a pixel composited on white darker than this is ink
  var ANALYSIS_MAX_SIDE = 500; // the ink is analysed on its bounding box reduced to ≤ this
  var MIN_INK = 12; // fewer ink cells: a dot
  var MIN_EXTENT = 9; // server 8: ink shorter than this (analysis px) is a dot
  var LINE_RATIO = 0.066; // server 0.06: spread across the main axis / along it (std. dev.)
  var LINE_HALF_WIDTH = 3.5; // server 3: 98 % of the ink within ± this (analysis px) of the axis
  var MAX_INK_SHARE = 0.45; // server 0.5: ink covering more of its bounding box is a filled shape

  var MESSAGES = {
    blank: "Подпись не нарисована: поле для подписи пустое — распишитесь в нём.", // as the server says
    line: "Подпись не может быть одной прямой линией — распишитесь так, как на бумаге.",
    filled: "Подпись не может быть закрашенной фигурой — распишитесь так, как на бумаге.",
    unavailable: "Поле для подписи не загрузилось. Обновите страницу и распишитесь снова."
  };

  // The browser signs the SHA-256 of the PNG it uploads and the server keeps exactly those bytes,
  // so the image is cleaned here, before hashing: a browser may add colour or metadata chunks.
  var PIXEL_CHUNKS = ["IHDR", "PLTE", "IDAT", "IEND"];

  var instances = new WeakMap(); // root element → Pad
  var live = new Set(); // pads on the page, resized with it
  var resizeObserver = typeof ResizeObserver === "function"
    ? new ResizeObserver(function (entries) {
        entries.forEach(function (entry) {
          var pad = instances.get(entry.target.closest("[data-signature-pad]"));
          if (pad) pad._resize();
        });
      })
    : null;

  /* ---- the strokes, the image and its checks ---- */

  /* Copies of the library's strokes with every distance × k (and the line widths of `options`).
   * The times are stretched alike: the speed of the pen, which sets the width of the line, stays. */
  function scaled(groups, k, options) {
    return groups.map(function (group) {
      var t0 = group.points[0].time;
      return Object.assign({}, group, options, {
        points: group.points.map(function (p) {
          return { x: p.x * k, y: p.y * k, pressure: p.pressure, time: t0 + (p.time - t0) * k };
        })
      });
    });
  }

  /* The strokes drawn by the library on a 1200×400 canvas. */
  function render(groups, cssWidth) {
    var out = document.createElement("canvas");
    out.width = LOGICAL_W * EXPORT_SCALE;
    out.height = LOGICAL_H * EXPORT_SCALE;
    var painter = new window.SignaturePad(out, PEN);
    painter.off();
    painter.fromData(scaled(groups, out.width / cssWidth, {
      minWidth: PEN.minWidth * EXPORT_SCALE, maxWidth: PEN.maxWidth * EXPORT_SCALE, dotSize: 0
    }));
    return out;
  }

  /* What is wrong with the image: "line" (a dot or a straight line), "filled" or null. The same
   * analysis as the server's: ink mask, its share of the bounding box, principal axes of the ink
   * cells on the box reduced to ≤ ANALYSIS_MAX_SIDE px (a cell with any ink counts). */
  function problem(canvas) {
    var w = canvas.width, h = canvas.height;
    var px = canvas.getContext("2d").getImageData(0, 0, w, h).data;
    var ink = [], x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (var i = 0; i < w * h; i++) {
      var a = px[4 * i + 3] / 255;
      var luma = (0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]) * a + 255 * (1 - a);
      if (luma >= INK_LUMA) continue;
      var x = i % w, y = (i - x) / w;
      ink.push(x, y);
      x0 = Math.min(x0, x); x1 = Math.max(x1, x);
      y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
    if (!ink.length) return "line";
    var bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    var factor = Math.max(1, Math.ceil(Math.max(bw, bh) / ANALYSIS_MAX_SIDE));
    var cw = Math.max(1, Math.floor(bw / factor)), ch = Math.max(1, Math.floor(bh / factor));
    var cells = new Set();
    for (var j = 0; j < ink.length; j += 2) {
      cells.add(Math.floor((ink[j] - x0) * cw / bw) + cw * Math.floor((ink[j + 1] - y0) * ch / bh));
    }
    var pts = Array.from(cells, function (c) { return [c % cw, Math.floor(c / cw)]; });
    var n = pts.length;
    if (n < MIN_INK) return "line";
    var mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    pts.forEach(function (p) { mx += p[0] / n; my += p[1] / n; });
    pts.forEach(function (p) {
      sxx += (p[0] - mx) * (p[0] - mx) / n;
      syy += (p[1] - my) * (p[1] - my) / n;
      sxy += (p[0] - mx) * (p[1] - my) / n;
    });
    var root = Math.sqrt(Math.pow((sxx - syy) / 2, 2) + sxy * sxy);
    var major = (sxx + syy) / 2 + root, minor = Math.max(0, (sxx + syy) / 2 - root);
    if (Math.sqrt(major * 12) < MIN_EXTENT) return "line";
    var nx = 0, ny = 1; // across the principal axis
    if (sxy !== 0) {
      var norm = Math.hypot(major - syy, sxy);
      nx = -sxy / norm; ny = (major - syy) / norm;
    } else if (syy > sxx) {
      nx = 1; ny = 0;
    }
    var d = pts.map(function (p) { return Math.abs((p[0] - mx) * nx + (p[1] - my) * ny); });
    d.sort(function (a, b) { return a - b; });
    if (Math.sqrt(minor / major) < LINE_RATIO || d[Math.floor(0.98 * (n - 1))] <= LINE_HALF_WIDTH) return "line";
    return ink.length / 2 / (bw * bh) > MAX_INK_SHARE ? "filled" : null;
  }

  /* The PNG with only the chunks in PIXEL_CHUNKS, up to IEND (the chunks' CRCs stay valid). */
  function pixelChunksOnly(buffer) {
    var bytes = new Uint8Array(buffer), view = new DataView(buffer);
    var parts = [bytes.subarray(0, 8)], pos = 8;
    while (pos + 12 <= bytes.length) {
      var type = String.fromCharCode.apply(null, bytes.subarray(pos + 4, pos + 8));
      var end = pos + 12 + view.getUint32(pos);
      if (PIXEL_CHUNKS.indexOf(type) >= 0) parts.push(bytes.subarray(pos, end));
      pos = end;
      if (type === "IEND") break;
    }
    return new Blob(parts, { type: "image/png" });
  }

  /* ---- one pad ---- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function Pad(root) {
    var self = this;
    this.root = root;
    this._build();
    this._cssWidth = 0; // the strokes are kept in the canvas's CSS px at this width
    this._drawing = false;
    this._lib = window.SignaturePad ? new window.SignaturePad(this.canvas, PEN) : null;
    if (!this._lib) {
      this._showError(MESSAGES.unavailable);
      return;
    }
    this._lib.addEventListener("beginStroke", function () { self._drawing = true; self._hideError(); });
    this._lib.addEventListener("endStroke", function () {
      self._drawing = false;
      self._resize(); // if the field changed size during the stroke
      self._changed("stroke");
    });
    this._onClick = function (e) {
      var button = e.target.closest("[data-action]");
      if (!button || !root.contains(button)) return;
      if (button.dataset.action === "undo") self.undo();
      if (button.dataset.action === "clear") self.clear();
    };
    root.addEventListener("click", this._onClick);
    if (resizeObserver) resizeObserver.observe(this.surface);
    live.add(this);
    this._resize();
  }

  Pad.prototype._build = function () {
    var root = this.root;
    var surface = root.querySelector(".signature-pad-surface");
    var canvas = root.querySelector("canvas") || el("canvas", "");
    if (!surface) root.insertBefore(surface = el("div", "signature-pad-surface"), root.firstChild);
    if (canvas.parentNode !== surface) surface.appendChild(canvas);
    if (!canvas.hasAttribute("role")) canvas.setAttribute("role", "img");
    if (!canvas.hasAttribute("aria-label")) canvas.setAttribute("aria-label", "Поле для подписи");
    var actions = root.querySelector(".signature-pad-actions");
    if (!actions) surface.after(actions = el("div", "signature-pad-actions"));
    [["undo", "Отменить штрих"], ["clear", "Очистить"]].forEach(function (b) {
      if (root.querySelector('[data-action="' + b[0] + '"]')) return;
      var button = el("button", "button secondary", b[1]);
      button.dataset.action = b[0];
      actions.appendChild(button);
    });
    root.querySelectorAll("button[data-action]").forEach(function (b) { b.type = "button"; });
    var error = root.querySelector(".signature-pad-error");
    if (!error) root.appendChild(error = el("p", "signature-pad-error"));
    error.setAttribute("role", "alert");
    if (!error.id) error.id = "signature-pad-error-" + Math.random().toString(36).slice(2, 10);
    var described = (canvas.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (described.indexOf(error.id) < 0) canvas.setAttribute("aria-describedby", described.concat(error.id).join(" "));
    this.canvas = canvas;
    this.surface = surface;
    this.errorEl = error;
  };

  /* Fit the canvas to its displayed size × devicePixelRatio and redraw the strokes, scaled from
   * the previous size. (The library draws in CSS px: the context is scaled to device px.) */
  Pad.prototype._resize = function () {
    if (!this._lib || this._drawing) return; // after the stroke, then
    var rect = this.canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    var dpr = Math.min(window.devicePixelRatio || 1, 3);
    var w = Math.round(rect.width * dpr), h = Math.round(rect.height * dpr);
    if (w === this.canvas.width && h === this.canvas.height && rect.width === this._cssWidth) return;
    var strokes = this._cssWidth ? scaled(this._lib.toData(), rect.width / this._cssWidth) : [];
    this._cssWidth = rect.width;
    this.canvas.width = w; // resets the bitmap and the context
    this.canvas.height = h;
    this.canvas.getContext("2d").scale(w / rect.width, h / rect.height);
    this._lib.fromData(strokes);
  };

  Pad.prototype._changed = function (reason) {
    this._hideError();
    this.root.classList.toggle("is-empty", this.isEmpty());
    this.root.dispatchEvent(new CustomEvent("signature:change", {
      bubbles: true,
      detail: { strokes: this._strokes().length, empty: this.isEmpty(), reason: reason }
    }));
  };

  Pad.prototype._showError = function (message) {
    this.errorEl.textContent = message;
    this.errorEl.hidden = false;
    this.root.classList.add("is-invalid");
    this.canvas.setAttribute("aria-invalid", "true");
  };

  Pad.prototype._hideError = function () {
    this.errorEl.textContent = "";
    this.errorEl.hidden = true;
    this.root.classList.remove("is-invalid");
    this.canvas.removeAttribute("aria-invalid");
  };

  Pad.prototype._strokes = function () {
    return this._lib ? this._lib.toData() : [];
  };

  /* ---- public API ---- */

  Pad.prototype.isEmpty = function () {
    return this._strokes().length === 0;
  };

  Pad.prototype.strokes = function () {
    return scaled(this._strokes(), LOGICAL_W / this._cssWidth).map(function (group) {
      return group.points.map(function (p) {
        return { x: Math.round(p.x * 100) / 100, y: Math.round(p.y * 100) / 100 };
      });
    });
  };

  Pad.prototype.validate = function () {
    var message = null;
    if (!this._lib) message = MESSAGES.unavailable;
    else if (this.isEmpty()) message = MESSAGES.blank;
    else message = MESSAGES[problem(render(this._strokes(), this._cssWidth))] || null;
    if (message) this._showError(message);
    else this._hideError();
    return message;
  };

  Pad.prototype.undo = function () {
    if (this._drawing || this.isEmpty()) return;
    this._lib.fromData(this._strokes().slice(0, -1));
    this._changed("undo");
  };

  Pad.prototype.clear = function () {
    if (this._drawing) return;
    var had = !this.isEmpty();
    if (this._lib) this._lib.clear();
    if (had) this._changed("clear");
    else this._hideError();
  };

  Pad.prototype.toPNGBlob = function () {
    if (!this._lib) return Promise.reject(new Error(MESSAGES.unavailable));
    var out = render(this._strokes(), this._cssWidth);
    return new Promise(function (resolve, reject) {
      out.toBlob(function (blob) {
        if (!blob) { reject(new Error("Не удалось получить изображение подписи.")); return; }
        blob.arrayBuffer().then(function (buffer) { resolve(pixelChunksOnly(buffer)); }, reject);
      }, "image/png");
    });
  };

  Pad.prototype.destroy = function () {
    if (this._lib) this._lib.off();
    if (this._onClick) this.root.removeEventListener("click", this._onClick);
    if (resizeObserver) resizeObserver.unobserve(this.surface);
    live.delete(this);
    instances.delete(this.root);
  };

  /* ---- finding the pads, following the page's size ---- */

  function resizeAll() {
    live.forEach(function (pad) { if (pad.root.isConnected) pad._resize(); });
  }

  function watchDevicePixelRatio() { // a zoom, or the window moved to another screen
    if (!window.matchMedia) return;
    window.matchMedia("(resolution: " + (window.devicePixelRatio || 1) + "dppx)")
      .addEventListener("change", function () { resizeAll(); watchDevicePixelRatio(); }, { once: true });
  }

  function padOf(root) {
    if (!instances.has(root)) instances.set(root, new Pad(root));
    return instances.get(root);
  }

  function init(node) {
    if (!node || node.nodeType !== 1) node = document.body;
    if (node.matches("[data-signature-pad]")) padOf(node);
    node.querySelectorAll("[data-signature-pad]").forEach(padOf);
  }

  function get(element) {
    if (typeof element === "string") element = document.querySelector(element);
    if (!element || element.nodeType !== 1) return null;
    var root = element.closest("[data-signature-pad]") || element.querySelector("[data-signature-pad]");
    return root ? padOf(root) : null;
  }

  window.addEventListener("resize", resizeAll);
  watchDevicePixelRatio();
  document.addEventListener("htmx:load", function (e) { init(e.target); });
  document.addEventListener("htmx:beforeCleanupElement", function (e) {
    if (instances.has(e.target)) instances.get(e.target).destroy();
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document.body); });
  } else {
    init(document.body);
  }

  window.PortalSignature = { get: get, init: init, messages: MESSAGES };
})();

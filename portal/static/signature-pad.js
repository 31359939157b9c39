/* Signature pad: a hand-drawn signature (finger, pen, trackpad, mouse) exported as a PNG.
 *
 * Markup (server templates):
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
 * Missing parts (surface, canvas, buttons, error element) are created by the script.
 *
 * API: window.SignaturePad.get(element) → instance (element: the root or anything inside it):
 *   isEmpty(), validate() → null | Russian message (also shown in the error element),
 *   toPNGBlob() → Promise<Blob> (1200×400 transparent PNG: only the chunks that carry the
 *   pixels, IHDR/IDAT/IEND — the server refuses anything else in the image), clear(), undo(),
 *   strokes() → [[{x, y}, …], …] in a 600×200 logical coordinate space.
 * Every change dispatches a bubbling `signature:change` CustomEvent on the root element,
 * detail: {strokes: <number of strokes>, empty: <boolean>, reason: "stroke"|"undo"|"clear"}.
 *
 * No inline scripts, no eval: works under CSP `script-src 'self'`.
 */
(function () {
  "use strict";

  if (window.SignaturePad && window.SignaturePad.__signaturePad) return; // loaded twice

  /* Logical drawing space (aspect 3:1); the export is this size × EXPORT_SCALE. */
  var LOGICAL_W = 600;
  var LOGICAL_H = 200;
  var EXPORT_SCALE = 2; // 1200×400 px: far below 2000×1000 and 200 KB
  var LINE_WIDTH_CSS = 2.5; // on screen, CSS px
  var LINE_WIDTH_LOGICAL = 2.5; // in the exported image, logical px (×EXPORT_SCALE)
  var INK = "#14213d";
  var MIN_STEP_CSS = 0.75; // ignore pointer moves shorter than this

  /* Validation, mirroring portal/documents/signing.py (validate_signature_png): the server
   * analyses the ink of the PNG, cropped to its bounding box and reduced to ≤ 500 px, and
   * refuses a dot or a straight line (principal axes of the ink). The same test runs here on
   * the ink the strokes will make, with a ~10 % margin so that what passes here also passes
   * on the server. */
  var ANALYSIS_MAX_SIDE = 500;
  var LINE_RATIO = 0.066; // server 0.06: spread across the main axis / along it (std. dev.)
  var LINE_HALF_WIDTH = 3.5; // server 3: 98 % of the ink within ± this (analysis px) of the axis
  var MIN_EXTENT = 9; // server 8: ink shorter than this (analysis px) is a dot
  var MIN_BOX = 6; // logical px: strokes inside a box this small on both sides are a dot
  var INK_LUMA = 200; // server: a pixel composited on white darker than this is ink
  var MAX_INK_SHARE = 0.45; // server 0.5: ink covering more of its bounding box is a filled shape

  var MESSAGES = {
    blank: "Подпись не нарисована: поле для подписи пустое — распишитесь в нём.",  // the server says the same
    line: "Подпись не может быть одной прямой линией — распишитесь так, как на бумаге.",
    filled: "Подпись не может быть закрашенной фигурой — распишитесь так, как на бумаге."
  };

  /* The PNG chunks that carry the pixels. The browser signs the SHA-256 of the PNG it uploads
   * and the server keeps exactly those bytes (portal/documents/signing.py explains why), so the
   * image is cleaned here, before hashing: a browser may add colour or metadata chunks. */
  var PIXEL_CHUNKS = ["IHDR", "PLTE", "IDAT", "IEND"];

  var instances = new WeakMap(); // root element → Pad
  var live = new Set(); // connected pads (for resize / devicePixelRatio changes)

  var resizeObserver = typeof ResizeObserver === "function"
    ? new ResizeObserver(function (entries) {
        entries.forEach(function (entry) {
          var pad = instances.get(entry.target.closest("[data-signature-pad]"));
          if (pad) pad._resize();
        });
      })
    : null;

  function el(tag, className, attrs) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function dist(a, b) {
    return Math.hypot(a.x - b.x, a.y - b.y);
  }

  /* Smooth stroke: quadratic curves through the midpoints, the raw points as controls. */
  function tracePath(ctx, pts) {
    var n = pts.length;
    ctx.beginPath();
    ctx.moveTo(pts[0].x, pts[0].y);
    if (n === 2) {
      ctx.lineTo(pts[1].x, pts[1].y);
    } else {
      for (var i = 1; i < n - 1; i++) {
        var mx = (pts[i].x + pts[i + 1].x) / 2;
        var my = (pts[i].y + pts[i + 1].y) / 2;
        ctx.quadraticCurveTo(pts[i].x, pts[i].y, mx, my);
      }
      ctx.lineTo(pts[n - 1].x, pts[n - 1].y);
    }
    ctx.stroke();
  }

  function drawDot(ctx, p, width) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, width / 2, 0, Math.PI * 2);
    ctx.fill();
  }

  function drawStrokes(ctx, strokes, width) {
    ctx.lineWidth = width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    strokes.forEach(function (pts) {
      if (pts.length === 1) drawDot(ctx, pts[0], width);
      else if (pts.length > 1) tracePath(ctx, pts);
    });
  }

  /* Points along the drawn (smoothed) strokes at ~1 logical px spacing, like ink pixels. */
  function sampleQuad(out, a, c, b) {
    var steps = Math.max(1, Math.ceil(2 * (dist(a, c) + dist(c, b)))); // ≤ 0.5 px apart
    for (var s = 1; s <= steps; s++) {
      var t = s / steps, u = 1 - t;
      out.push({
        x: u * u * a.x + 2 * u * t * c.x + t * t * b.x,
        y: u * u * a.y + 2 * u * t * c.y + t * t * b.y
      });
    }
  }

  function samplePoints(strokes) {
    var out = [];
    strokes.forEach(function (pts) {
      var n = pts.length;
      out.push(pts[0]);
      if (n === 2) {
        sampleQuad(out, pts[0], pts[0], pts[1]);
      } else if (n > 2) { // same path as tracePath()
        var from = pts[0];
        for (var i = 1; i < n - 1; i++) {
          var mid = { x: (pts[i].x + pts[i + 1].x) / 2, y: (pts[i].y + pts[i + 1].y) / 2 };
          sampleQuad(out, from, pts[i], mid);
          from = mid;
        }
        sampleQuad(out, from, from, pts[n - 1]);
      }
    });
    return out;
  }

  /* Principal-axis test. Like the server, it looks at the set of "ink cells": the smoothed
   * strokes with their width, on the grid the server analyses (export px, ink box reduced to
   * ≤ 500 px). Returns {line: true|false, ratio, band, extent}; line = a dot or a straight line. */
  function analyse(strokes) {
    var pts = samplePoints(strokes);
    var result = { line: true, ratio: 0, band: 0, extent: 0 };
    if (!pts.length) return result;
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    pts.forEach(function (p) {
      if (p.x < minX) minX = p.x;
      if (p.x > maxX) maxX = p.x;
      if (p.y < minY) minY = p.y;
      if (p.y > maxY) maxY = p.y;
    });
    if (maxX - minX < MIN_BOX && maxY - minY < MIN_BOX) return result; // tiny bounding box

    // Logical px → analysis px; the ink box is clipped to the image like the exported ink.
    var half = LINE_WIDTH_LOGICAL / 2;
    var ox = Math.max(0, minX - half), oy = Math.max(0, minY - half);
    var inkSide = Math.max(Math.min(LOGICAL_W, maxX + half) - ox, Math.min(LOGICAL_H, maxY + half) - oy);
    var k = EXPORT_SCALE / Math.max(1, Math.ceil(inkSide * EXPORT_SCALE / ANALYSIS_MAX_SIDE));
    var r = half * k, maxCX = (LOGICAL_W - ox) * k, maxCY = (LOGICAL_H - oy) * k;
    var seen = new Set(), cells = [];
    pts.forEach(function (p) {
      var ax = (p.x - ox) * k, ay = (p.y - oy) * k;
      for (var cx = Math.floor(ax - r); cx <= Math.floor(ax + r); cx++) {
        if (cx < 0 || cx >= maxCX) continue;
        for (var cy = Math.floor(ay - r); cy <= Math.floor(ay + r); cy++) {
          if (cy < 0 || cy >= maxCY) continue;
          // Ink if the stroke covers some export pixel of the cell (its part inside the image).
          var dx = Math.max(cx - ax, 0, ax - Math.min(cx + 1, maxCX));
          var dy = Math.max(cy - ay, 0, ay - Math.min(cy + 1, maxCY));
          if (Math.hypot(dx, dy) > r - k / 5) continue;
          var key = cx * 8192 + cy;
          if (seen.has(key)) continue;
          seen.add(key);
          cells.push([cx, cy]);
        }
      }
    });
    if (cells.length < 2) return result;
    var n = cells.length, mx = 0, my = 0;
    cells.forEach(function (c) { mx += c[0]; my += c[1]; });
    mx /= n; my /= n;
    var sxx = 0, syy = 0, sxy = 0;
    cells.forEach(function (c) {
      var dx = c[0] - mx, dy = c[1] - my;
      sxx += dx * dx; syy += dy * dy; sxy += dx * dy;
    });
    sxx /= n; syy /= n; sxy /= n;
    var mid = (sxx + syy) / 2;
    var root = Math.sqrt(Math.max(0, Math.pow((sxx - syy) / 2, 2) + sxy * sxy));
    var major = mid + root;
    var minor = Math.max(0, mid - root);
    if (major <= 0) return result;
    result.extent = Math.sqrt(major) * Math.sqrt(12); // length along the main axis
    result.ratio = Math.sqrt(minor) / Math.sqrt(major); // spread across it / along it

    // Unit vector across the principal axis; 98 % of the ink lies within ±band of the axis.
    var nx, ny;
    if (sxy === 0) {
      if (sxx >= syy) { nx = 0; ny = 1; } else { nx = 1; ny = 0; }
    } else {
      var ex = major - syy, ey = sxy, norm = Math.hypot(ex, ey);
      nx = -ey / norm; ny = ex / norm;
    }
    var d = cells.map(function (c) { return Math.abs((c[0] - mx) * nx + (c[1] - my) * ny); });
    d.sort(function (a, b) { return a - b; });
    result.band = d[Math.floor(0.98 * (n - 1))];
    result.line = result.extent < MIN_EXTENT || result.ratio < LINE_RATIO ||
      result.band <= LINE_HALF_WIDTH;
    return result;
  }

  /* The strokes as exported: 1200×400 px, transparent, dark ink. */
  function renderExport(strokes) {
    var out = document.createElement("canvas");
    out.width = LOGICAL_W * EXPORT_SCALE;
    out.height = LOGICAL_H * EXPORT_SCALE;
    var ctx = out.getContext("2d");
    ctx.setTransform(EXPORT_SCALE, 0, 0, EXPORT_SCALE, 0, 0);
    drawStrokes(ctx, strokes, LINE_WIDTH_LOGICAL);
    return out;
  }

  /* Share of the ink's bounding box covered by ink in the exported image, as the server
   * measures it (each pixel composited on white, luminance below INK_LUMA). */
  function inkShare(strokes) {
    var out = renderExport(strokes);
    var w = out.width, h = out.height;
    var px = out.getContext("2d").getImageData(0, 0, w, h).data;
    var ink = 0, minX = w, minY = h, maxX = -1, maxY = -1;
    for (var y = 0; y < h; y++) {
      for (var x = 0; x < w; x++) {
        var i = (y * w + x) * 4, a = px[i + 3] / 255;
        var luma = (0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2]) * a + 255 * (1 - a);
        if (luma >= INK_LUMA) continue;
        ink++;
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
    }
    return ink ? ink / ((maxX - minX + 1) * (maxY - minY + 1)) : 0;
  }

  /* The PNG with only the chunks in PIXEL_CHUNKS, up to IEND (chunk CRCs stay valid). */
  function pixelChunksOnly(buffer) {
    var bytes = new Uint8Array(buffer), view = new DataView(buffer);
    var parts = [bytes.subarray(0, 8)], pos = 8;
    while (pos + 12 <= bytes.length) {
      var type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
      var end = pos + 12 + view.getUint32(pos);
      if (PIXEL_CHUNKS.indexOf(type) >= 0) parts.push(bytes.subarray(pos, end));
      pos = end;
      if (type === "IEND") break;
    }
    return new Blob(parts, { type: "image/png" });
  }

  function Pad(root) {
    this.root = root;
    this._strokes = [];
    this._active = null; // {id, points}
    this._cssW = 0;
    this._cssH = 0;
    this._dpr = 1;
    this._build();
    this._bind();
    this._resize();
    root.classList.add("is-empty");
  }

  Pad.prototype._build = function () {
    var root = this.root;
    var canvas = root.querySelector("canvas");
    var surface = root.querySelector(".signature-pad-surface");
    if (!surface) {
      surface = el("div", "signature-pad-surface");
      if (canvas) canvas.parentNode.insertBefore(surface, canvas);
      else root.insertBefore(surface, root.firstChild);
    }
    if (!canvas) canvas = el("canvas");
    if (canvas.parentNode !== surface) surface.appendChild(canvas);
    if (!canvas.hasAttribute("aria-label")) canvas.setAttribute("aria-label", "Поле для подписи");
    if (!canvas.hasAttribute("role")) canvas.setAttribute("role", "img");
    canvas.style.touchAction = "none"; // also in the CSS: a finger draws instead of scrolling

    var actions = root.querySelector(".signature-pad-actions");
    var needUndo = !root.querySelector('[data-action="undo"]');
    var needClear = !root.querySelector('[data-action="clear"]');
    if ((needUndo || needClear) && !actions) {
      actions = el("div", "signature-pad-actions");
      surface.parentNode.insertBefore(actions, surface.nextSibling);
    }
    if (needUndo) {
      var undo = el("button", "button secondary", { type: "button", "data-action": "undo" });
      undo.textContent = "Отменить штрих";
      actions.appendChild(undo);
    }
    if (needClear) {
      var clear = el("button", "button secondary", { type: "button", "data-action": "clear" });
      clear.textContent = "Очистить";
      actions.appendChild(clear);
    }
    root.querySelectorAll("button[data-action]").forEach(function (b) {
      if (!b.hasAttribute("type")) b.type = "button"; // never submit the surrounding form
    });

    var error = root.querySelector(".signature-pad-error");
    if (!error) {
      error = el("p", "signature-pad-error", { role: "alert" });
      error.hidden = true;
      root.appendChild(error);
    }
    if (!error.id) error.id = "signature-pad-error-" + Math.random().toString(36).slice(2, 10);
    var described = (canvas.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (described.indexOf(error.id) < 0) described.push(error.id);
    canvas.setAttribute("aria-describedby", described.join(" "));

    this.canvas = canvas;
    this.surface = surface;
    this.errorEl = error;
    this.ctx = canvas.getContext("2d");
  };

  Pad.prototype._bind = function () {
    var self = this, canvas = this.canvas;
    this._onDown = function (e) { self._pointerDown(e); };
    this._onMove = function (e) { self._pointerMove(e); };
    this._onUp = function (e) { self._pointerUp(e); };
    this._onTouch = function (e) { if (e.cancelable) e.preventDefault(); };
    this._onClick = function (e) {
      var button = e.target.closest("[data-action]");
      if (!button || !self.root.contains(button)) return;
      var action = button.getAttribute("data-action");
      if (action === "undo") { e.preventDefault(); self.undo(); }
      else if (action === "clear") { e.preventDefault(); self.clear(); }
    };
    canvas.addEventListener("pointerdown", this._onDown);
    canvas.addEventListener("pointermove", this._onMove);
    canvas.addEventListener("pointerup", this._onUp);
    canvas.addEventListener("pointercancel", this._onUp);
    canvas.addEventListener("lostpointercapture", this._onUp);
    // Older iOS: make sure the page does not scroll or zoom under the finger.
    canvas.addEventListener("touchstart", this._onTouch, { passive: false });
    canvas.addEventListener("touchmove", this._onTouch, { passive: false });
    this.root.addEventListener("click", this._onClick);
    if (resizeObserver) resizeObserver.observe(this.surface);
    live.add(this);
  };

  /* Pointer position in logical coordinates (clamped to the pad). */
  Pad.prototype._point = function (e, rect) {
    var x = (e.clientX - rect.left) / rect.width * LOGICAL_W;
    var y = (e.clientY - rect.top) / rect.height * LOGICAL_H;
    return {
      x: Math.round(Math.min(LOGICAL_W, Math.max(0, x)) * 100) / 100,
      y: Math.round(Math.min(LOGICAL_H, Math.max(0, y)) * 100) / 100
    };
  };

  Pad.prototype._pointerDown = function (e) {
    if (this._active) return; // one pointer draws at a time (ignore a second finger)
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    try { this.canvas.setPointerCapture(e.pointerId); } catch (err) { /* not capturable */ }
    this._resize();
    var rect = this.canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    var p = this._point(e, rect);
    this._active = { id: e.pointerId, points: [p] };
    this._strokes.push(this._active.points);
    this._hideError();
    this._setTransform();
    drawStrokes(this.ctx, [[p]], this._lineWidth());
  };

  Pad.prototype._pointerMove = function (e) {
    var active = this._active;
    if (!active || e.pointerId !== active.id) return;
    e.preventDefault();
    var rect = this.canvas.getBoundingClientRect();
    var events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    if (!events.length) events = [e];
    var pts = active.points;
    var minStep = MIN_STEP_CSS * LOGICAL_W / rect.width;
    var start = pts.length;
    for (var i = 0; i < events.length; i++) {
      var p = this._point(events[i], rect);
      if (dist(p, pts[pts.length - 1]) >= minStep) pts.push(p);
    }
    if (pts.length === start) return;
    // Draw the new part: from the midpoint before the first new point to the last midpoint.
    this._setTransform();
    var ctx = this.ctx;
    ctx.lineWidth = this._lineWidth();
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = INK;
    ctx.beginPath();
    var from = Math.max(1, start - 1);
    var a = pts[from - 1], b = pts[from];
    if (from === 1) ctx.moveTo(a.x, a.y);
    else ctx.moveTo((a.x + b.x) / 2, (a.y + b.y) / 2);
    for (var k = from; k < pts.length - 1; k++) {
      ctx.quadraticCurveTo(pts[k].x, pts[k].y, (pts[k].x + pts[k + 1].x) / 2, (pts[k].y + pts[k + 1].y) / 2);
    }
    var last = pts[pts.length - 1];
    ctx.lineTo(last.x, last.y); // provisional tail, redrawn smoothly on pointerup
    ctx.stroke();
  };

  Pad.prototype._pointerUp = function (e) {
    var active = this._active;
    if (!active || e.pointerId !== active.id) return;
    if (e.type !== "lostpointercapture") {
      try { this.canvas.releasePointerCapture(e.pointerId); } catch (err) { /* already released */ }
    }
    this._active = null;
    this._redraw();
    this._changed("stroke");
  };

  Pad.prototype._lineWidth = function () {
    // LINE_WIDTH_CSS on screen, expressed in logical units.
    return this._cssW ? LINE_WIDTH_CSS * LOGICAL_W / this._cssW : LINE_WIDTH_LOGICAL;
  };

  Pad.prototype._setTransform = function () {
    var sx = this.canvas.width / LOGICAL_W, sy = this.canvas.height / LOGICAL_H;
    this.ctx.setTransform(sx, 0, 0, sy, 0, 0);
  };

  /* Match the backing store to the displayed size × devicePixelRatio; redraw the strokes. */
  Pad.prototype._resize = function () {
    var rect = this.canvas.getBoundingClientRect();
    var dpr = Math.min(window.devicePixelRatio || 1, 3);
    if (!rect.width || !rect.height) return;
    var w = Math.max(1, Math.round(rect.width * dpr));
    var h = Math.max(1, Math.round(rect.height * dpr));
    this._cssW = rect.width;
    this._cssH = rect.height;
    if (this.canvas.width === w && this.canvas.height === h && this._dpr === dpr) return;
    this._dpr = dpr;
    this.canvas.width = w; // resets the bitmap
    this.canvas.height = h;
    this._redraw();
  };

  Pad.prototype._redraw = function () {
    var ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this._setTransform();
    drawStrokes(ctx, this._strokes, this._lineWidth());
  };

  Pad.prototype._changed = function (reason) {
    this._hideError();
    this.root.classList.toggle("is-empty", this.isEmpty());
    this.root.dispatchEvent(new CustomEvent("signature:change", {
      bubbles: true,
      detail: { strokes: this._strokes.length, empty: this.isEmpty(), reason: reason }
    }));
  };

  Pad.prototype._showError = function (message) {
    this.errorEl.textContent = message;
    this.errorEl.hidden = false;
    this.root.classList.add("is-invalid");
    this.canvas.setAttribute("aria-invalid", "true");
  };

  Pad.prototype._hideError = function () {
    if (this.errorEl.hidden && !this.errorEl.textContent) return;
    this.errorEl.textContent = "";
    this.errorEl.hidden = true;
    this.root.classList.remove("is-invalid");
    this.canvas.removeAttribute("aria-invalid");
  };

  /* ---- public API ---- */

  Pad.prototype.isEmpty = function () {
    return this._strokes.length === 0;
  };

  Pad.prototype.strokes = function () {
    return this._strokes.map(function (pts) {
      return pts.map(function (p) { return { x: p.x, y: p.y }; });
    });
  };

  Pad.prototype.validate = function () {
    var message = null;
    if (this.isEmpty()) message = MESSAGES.blank;
    else if (analyse(this._strokes).line) message = MESSAGES.line;
    else if (inkShare(this._strokes) > MAX_INK_SHARE) message = MESSAGES.filled;
    if (message) this._showError(message);
    else this._hideError();
    return message;
  };

  Pad.prototype.undo = function () {
    if (this._active) return;
    if (!this._strokes.length) return;
    this._strokes.pop();
    this._redraw();
    this._changed("undo");
  };

  Pad.prototype.clear = function () {
    if (this._active) return;
    var had = this._strokes.length > 0;
    this._strokes = [];
    this._redraw();
    if (had) this._changed("clear");
    else this._hideError();
  };

  /* Transparent PNG, 1200×400 px, dark ink: well within 2000×1000 px and 200 KB. The same
   * size on every screen: the strokes are kept in the logical 600×200 space. */
  Pad.prototype.toPNGBlob = function () {
    var out = renderExport(this._strokes);
    return new Promise(function (resolve, reject) {
      out.toBlob(function (blob) {
        if (!blob) { reject(new Error("Не удалось получить изображение подписи.")); return; }
        blob.arrayBuffer().then(function (buffer) { resolve(pixelChunksOnly(buffer)); }, reject);
      }, "image/png");
    });
  };

  /* Detach listeners (htmx cleans the element up before it is swapped out). */
  Pad.prototype.destroy = function () {
    var canvas = this.canvas;
    canvas.removeEventListener("pointerdown", this._onDown);
    canvas.removeEventListener("pointermove", this._onMove);
    canvas.removeEventListener("pointerup", this._onUp);
    canvas.removeEventListener("pointercancel", this._onUp);
    canvas.removeEventListener("lostpointercapture", this._onUp);
    canvas.removeEventListener("touchstart", this._onTouch);
    canvas.removeEventListener("touchmove", this._onTouch);
    this.root.removeEventListener("click", this._onClick);
    if (resizeObserver) resizeObserver.unobserve(this.surface);
    live.delete(this);
    instances.delete(this.root);
  };

  /* ---- discovery ---- */

  function init(root) {
    var pad = instances.get(root);
    if (!pad) {
      pad = new Pad(root);
      instances.set(root, pad);
    }
    return pad;
  }

  function scan(node) {
    if (!node || node.nodeType !== 1) node = document.body || document.documentElement;
    if (!node) return;
    if (node.matches("[data-signature-pad]")) init(node);
    node.querySelectorAll("[data-signature-pad]").forEach(init);
  }

  function get(element) {
    if (typeof element === "string") element = document.querySelector(element);
    if (!element || element.nodeType !== 1) return null;
    var root = element.closest("[data-signature-pad]") ||
      element.querySelector("[data-signature-pad]");
    return root ? init(root) : null;
  }

  function onDprChange() {
    live.forEach(function (pad) {
      if (pad.root.isConnected) pad._resize();
    });
    watchDpr();
  }

  function watchDpr() {
    if (!window.matchMedia) return;
    var mq = window.matchMedia("(resolution: " + (window.devicePixelRatio || 1) + "dppx)");
    if (mq.addEventListener) mq.addEventListener("change", onDprChange, { once: true });
  }

  window.addEventListener("resize", function () {
    live.forEach(function (pad) {
      if (pad.root.isConnected) pad._resize();
    });
  });
  watchDpr();

  document.addEventListener("htmx:load", function (e) { scan(e.target); });
  document.addEventListener("htmx:beforeCleanupElement", function (e) {
    var node = e.target;
    if (node && node.nodeType === 1 && instances.has(node)) instances.get(node).destroy();
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { scan(document.body); });
  } else {
    scan(document.body);
  }

  window.SignaturePad = {
    __signaturePad: true,
    get: get,
    init: scan,
    analyse: function (element) { var pad = get(element); return pad ? analyse(pad._strokes) : null; },
    messages: MESSAGES
  };
})();

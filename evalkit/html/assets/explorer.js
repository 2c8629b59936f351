/* evalkit report pages: the sample explorer (report.html) and the flips explorer
   (compare.html). Plain JavaScript, no dependencies, inlined into the page.
   Data comes from <script type="application/json" id="evalkit-data">; every piece of sample
   text is inserted with textContent, never as HTML. The lists are virtualised: only the rows
   in view exist in the DOM, so 100k samples scroll and filter as fast as 100. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("evalkit-data").textContent);
  var S = data.strings || [];
  function str(v) { return typeof v === "number" ? S[v] : (v == null ? "" : String(v)); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function pretty(text) {
    if (!text) return text;
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }
  function block(parent, title, text) {
    parent.appendChild(el("h3", null, title));
    parent.appendChild(el("pre", null, text == null || text === "" ? "—" : text));
  }

  /* A virtual list: fixed row height, rows rendered for the visible window only. */
  function VList(box, renderRow, onSelect) {
    this.box = box; this.renderRow = renderRow; this.onSelect = onSelect;
    this.items = []; this.rowH = 28; this.sel = -1;
    this.spacer = el("div", "spacer"); box.appendChild(this.spacer);
    var self = this, pending = false;
    box.addEventListener("scroll", function () {
      if (pending) return; pending = true;
      requestAnimationFrame(function () { pending = false; self.draw(); });
    });
    box.addEventListener("click", function (ev) {
      var row = ev.target.closest(".row");
      if (row) self.select(+row.dataset.pos);
    });
    box.tabIndex = 0;
    box.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown" || ev.key === "j") { self.select(Math.min(self.sel + 1, self.items.length - 1)); ev.preventDefault(); }
      if (ev.key === "ArrowUp" || ev.key === "k") { self.select(Math.max(self.sel - 1, 0)); ev.preventDefault(); }
    });
  }
  VList.prototype.set = function (items) {
    this.items = items; this.sel = -1;
    this.spacer.style.height = (items.length * this.rowH) + "px";
    this.box.scrollTop = 0; this.draw();
    if (items.length) this.select(0); else this.onSelect(null);
  };
  VList.prototype.draw = function () {
    var top = this.box.scrollTop, h = this.box.clientHeight || 600;
    var first = Math.max(0, Math.floor(top / this.rowH) - 10);
    var last = Math.min(this.items.length, Math.ceil((top + h) / this.rowH) + 10);
    var frag = document.createDocumentFragment();
    for (var p = first; p < last; p++) {
      var row = this.renderRow(this.items[p]);
      row.classList.add("row"); row.dataset.pos = p;
      row.style.top = (p * this.rowH) + "px";
      if (p === this.sel) row.classList.add("sel");
      frag.appendChild(row);
    }
    this.spacer.replaceChildren(frag);
  };
  VList.prototype.select = function (pos) {
    if (pos < 0 || pos >= this.items.length) return;
    this.sel = pos;
    var y = pos * this.rowH;
    if (y < this.box.scrollTop) this.box.scrollTop = y;
    else if (y + this.rowH > this.box.scrollTop + this.box.clientHeight) this.box.scrollTop = y + this.rowH - this.box.clientHeight;
    this.draw(); this.onSelect(this.items[pos]);
  };

  function badge(s) {
    if (s.et === "request") return el("span", "badge err", "failed");
    if (s.et === "parse") return el("span", "badge parse", "parse error");
    if (s.ok === true) return el("span", "badge ok", "✓");
    if (s.ok === false) return el("span", "badge bad", "✗");
    return el("span", "badge", "·");
  }
  function snippet(s) {
    var text = str(s.o) || str(s.p) || str(s.e);
    return text.replace(/\s+/g, " ").slice(0, 160);
  }
  function haystack(s) {
    if (s._h == null) {
      var parts = [s.id, str(s.o), str(s.p), str(s.l), s.e || "", s.sub || ""];
      (s.m || []).forEach(function (m) { parts.push(str(m[1])); });
      s._h = parts.join("\n").toLowerCase();
    }
    return s._h;
  }
  function scoresTable(parent, scores) {
    var keys = Object.keys(scores || {});
    if (!keys.length) { parent.appendChild(el("p", "notice", "no per-sample scores in this run")); return; }
    var t = el("table", "data"), head = t.insertRow();
    head.appendChild(el("th", null, "metric")); head.appendChild(el("th", null, "score"));
    keys.forEach(function (k) {
      var r = t.insertRow(), v = scores[k];
      r.insertCell().textContent = k;
      var c = r.insertCell(); c.className = "text";
      c.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    });
    parent.appendChild(t);
  }
  function messages(parent, list) {
    (list || []).forEach(function (m) {
      parent.appendChild(el("div", "role", m[0]));
      parent.appendChild(el("pre", null, str(m[1])));
    });
  }

  function runExplorer() {
    var samples = data.samples || [];
    var box = document.getElementById("sample-list"), detail = document.getElementById("sample-detail");
    if (!box) return;
    var q = document.getElementById("f-search"), fe = document.getElementById("f-error"),
        fc = document.getElementById("f-correct"), fs = document.getElementById("f-subset"),
        count = document.getElementById("sample-count");
    var list = new VList(box, function (s) {
      var row = el("div");
      row.appendChild(el("span", "idx", "#" + s.i)); row.appendChild(badge(s));
      row.appendChild(el("span", "rid", s.id)); row.appendChild(el("span", "snip", snippet(s)));
      return row;
    }, function (s) {
      detail.replaceChildren();
      if (!s) { detail.appendChild(el("p", "notice", "no sample matches the filters")); return; }
      detail.appendChild(el("h3", null, "sample #" + s.i + " · id " + s.id + (s.sub ? " · subset " + s.sub : "") + (s.c ? " · cached" : "")));
      if (s.e) detail.appendChild(el("p", "banner bad", s.e));
      scoresTable(detail, s.s);
      if (s.m && s.m.length) { detail.appendChild(el("h3", null, "messages")); messages(detail, s.m); }
      block(detail, "raw output", str(s.o));
      block(detail, "parsed prediction", pretty(str(s.p)));
      block(detail, "label", pretty(str(s.l)));
    });
    function apply() {
      var text = (q.value || "").trim().toLowerCase(), e = fe.value, c = fc.value, sub = fs ? fs.value : "";
      var out = samples.filter(function (s) {
        if (e === "none" && s.et) return false;
        if (e && e !== "none" && s.et !== e) return false;
        if (c === "correct" && s.ok !== true) return false;
        if (c === "incorrect" && s.ok !== false) return false;
        if (c === "unknown" && s.ok != null) return false;
        if (sub && s.sub !== sub) return false;
        return !text || haystack(s).indexOf(text) >= 0;
      });
      count.textContent = out.length + " of " + samples.length + " shown";
      list.set(out);
    }
    var timer = null;
    q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
    [fe, fc, fs].forEach(function (x) { if (x) x.addEventListener("change", apply); });
    apply();
  }

  function flipsExplorer() {
    var flips = data.flips || [];
    var box = document.getElementById("flip-list"), detail = document.getElementById("flip-detail");
    if (!box) return;
    var fp = document.getElementById("f-pair"), fk = document.getElementById("f-metric"),
        fd = document.getElementById("f-direction"), q = document.getElementById("f-flip-search"),
        count = document.getElementById("flip-count");
    var list = new VList(box, function (f) {
      var row = el("div");
      row.appendChild(el("span", "idx", "#" + f.i));
      row.appendChild(el("span", f.dir === "r2w" ? "badge bad" : "badge ok", f.dir === "r2w" ? "right→wrong" : "wrong→right"));
      row.appendChild(el("span", "rid", f.id)); row.appendChild(el("span", "snip", f.key));
      return row;
    }, function (f) {
      detail.replaceChildren();
      if (!f) { detail.appendChild(el("p", "notice", "no flips match")); return; }
      detail.appendChild(el("h3", null, "sample #" + f.i + " · id " + f.id + " · " + f.key));
      block(detail, "label", pretty(str(f.l)));
      var sides = el("div", "sides");
      [["base: " + (data.names || [])[data.base], f.b], ["other: " + (data.names || [])[f.pair], f.x]].forEach(function (side) {
        var col = el("div");
        col.appendChild(el("h3", null, side[0]));
        scoresTable(col, side[1].s);
        block(col, "parsed prediction", pretty(str(side[1].p)));
        block(col, "raw output", str(side[1].o));
        sides.appendChild(col);
      });
      detail.appendChild(sides);
      if (f.m && f.m.length) { detail.appendChild(el("h3", null, "messages (base run)")); messages(detail, f.m); }
    });
    function apply() {
      var text = (q.value || "").trim().toLowerCase();
      var out = flips.filter(function (f) {
        if (fp.value !== "" && String(f.pair) !== fp.value) return false;
        if (fk.value && f.key !== fk.value) return false;
        if (fd.value && f.dir !== fd.value) return false;
        if (text) {
          var h = [f.id, str(f.l), str(f.b.o), str(f.x.o), str(f.b.p), str(f.x.p)].join("\n").toLowerCase();
          if (h.indexOf(text) < 0) return false;
        }
        return true;
      });
      count.textContent = out.length + " of " + flips.length + " flips shown";
      list.set(out);
    }
    [fp, fk, fd].forEach(function (x) { x.addEventListener("change", apply); });
    q.addEventListener("input", apply);
    apply();
  }

  runExplorer();
  flipsExplorer();
})();

// The report page and the coordinator's live page: one script. The data is either embedded in the page
// (<script id="cadenza-data">, `cadenza report`) or polled from the coordinator's /api/v1 (body data-live="1").
// Charts are drawn by uPlot (npm, embedded at build time); every value drawn is also written to #plotted as JSON,
// so that a test can compare what the page shows with the API.
(function () {
  "use strict";
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
  var plots = [];
  var lastText = null;
  var draws = 0;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function fmt(v) {
    if (typeof v !== "number") return v === undefined || v === null ? "" : String(v);
    if (Number.isInteger(v)) return String(v);
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : v.toPrecision(4).replace(/\.?0+$/, "");
  }

  // Series of a figure on one x axis (the union of their x values): uPlot's aligned data, with each series' 95% CI
  // band as two more (hidden) series.
  function alignedData(fig) {
    var xs = [];
    fig.series.forEach(function (s) { s.x.forEach(function (x) { if (xs.indexOf(x) < 0) xs.push(x); }); });
    xs.sort(function (a, b) { return a - b; });
    var data = [xs];
    fig.series.forEach(function (s) {
      var y = [], lo = [], hi = [];
      xs.forEach(function (x) {
        var i = s.x.indexOf(x);
        y.push(i < 0 ? null : s.y[i]);
        lo.push(i < 0 ? null : s.lo[i]);
        hi.push(i < 0 ? null : s.hi[i]);
      });
      data.push(y, lo, hi);
    });
    return data;
  }

  function drawFigure(fig, parent, withFiles) {
    var box = el("div", { "class": "figure", "id": "fig-" + fig.id });
    box.appendChild(el("h3", null, fig.title));
    var chart = el("div", { "class": "chart" });
    box.appendChild(chart);
    var legend = el("div", { "class": "legend" });
    fig.series.forEach(function (s, i) {
      var item = el("span");
      var swatch = el("i");
      swatch.style.background = COLORS[i % COLORS.length];
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.label));
      legend.appendChild(item);
    });
    box.appendChild(legend);
    (fig.missing || []).forEach(function (m) { box.appendChild(el("div", { "class": "missing" }, "missing: " + m)); });
    if (withFiles) {
      var files = el("div", { "class": "files" });
      ["svg", "png"].forEach(function (ext) {
        var a = el("a", { href: "figures/" + fig.id + "." + ext }, ext.toUpperCase());
        files.appendChild(a);
      });
      box.appendChild(files);
    }
    parent.appendChild(box);

    var series = [{ label: fig.xlabel }];
    var bands = [];
    fig.series.forEach(function (s, i) {
      var c = COLORS[i % COLORS.length];
      var base = 1 + 3 * i;
      series.push({ label: s.label, stroke: c, width: 2, points: { show: true, size: 6 }, spanGaps: true });
      series.push({ label: s.label + " lo", stroke: "transparent", points: { show: false }, spanGaps: true });
      series.push({ label: s.label + " hi", stroke: "transparent", points: { show: false }, spanGaps: true });
      bands.push({ series: [base + 2, base + 1], fill: c + "33" });
    });
    var data = alignedData(fig);
    var opts = {
      width: 540, height: 300,
      legend: { show: false },
      scales: { x: { time: false, distr: fig.logx ? 3 : 1 } },
      axes: [{ label: fig.xlabel }, { label: fig.ylabel, size: 60 }],
      series: series,
      bands: bands
    };
    if (typeof uPlot === "function" && data[0].length > 0) plots.push(new uPlot(opts, data, chart));
    return {
      id: fig.id,
      series: fig.series.map(function (s, i) {
        var pts = [];
        data[0].forEach(function (x, k) { if (data[1 + 3 * i][k] !== null) pts.push([x, data[1 + 3 * i][k]]); });
        return { label: s.label, points: pts };
      })
    };
  }

  // Cells table: axis columns, n, train tokens, then "mean ± ci95" for every metric.
  function drawCells(cells, parent) {
    if (!cells.length) {
      parent.appendChild(el("p", null, "No cell has a finished experiment yet."));
      return;
    }
    var metrics = [], axes = [];
    cells.forEach(function (c) {
      Object.keys(c).forEach(function (k) {
        var m = k.match(/^(.*)_mean$/);
        if (m) { if (metrics.indexOf(m[1]) < 0) metrics.push(m[1]); }
        else if (!/_(sd|ci95|n)$/.test(k) && axes.indexOf(k) < 0) axes.push(k);
      });
    });
    metrics.sort();
    var wrap = el("div", { "class": "tablewrap" });
    var t = el("table", { id: "cells" });
    var head = el("tr");
    axes.concat(metrics).forEach(function (h) { head.appendChild(el("th", { "class": "text" }, h)); });
    t.appendChild(head);
    cells.forEach(function (c) {
      var tr = el("tr");
      axes.forEach(function (a) { tr.appendChild(el("td", { "class": typeof c[a] === "number" ? "" : "text" }, fmt(c[a]))); });
      metrics.forEach(function (m) {
        var mean = c[m + "_mean"], ci = c[m + "_ci95"], n = c[m + "_n"];
        var text = mean === undefined || mean === "" ? "" : fmt(mean) + (n > 1 ? " ± " + fmt(ci) : "") + " (n=" + n + ")";
        tr.appendChild(el("td", null, text));
      });
      t.appendChild(tr);
    });
    wrap.appendChild(t);
    parent.appendChild(wrap);
  }

  function render(data) {
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    var root = document.getElementById("report");
    root.textContent = "";
    document.title = "cadenza: " + data.title;
    root.appendChild(el("h1", null, "cadenza: " + data.title));
    (data.notes || []).forEach(function (n) { root.appendChild(el("div", { "class": "note" }, n)); });
    root.appendChild(el("h2", null, "Figures"));
    var figs = el("div", { "class": "figures" });
    root.appendChild(figs);
    var drawn = (data.figures || []).map(function (f) { return drawFigure(f, figs, !!data.files); });
    if (!drawn.length) figs.appendChild(el("p", null, "No figure has a point yet."));
    if ((data.images || []).length) {
      root.appendChild(el("h2", null, "Self-similarity of samples and of the reference"));
      var scale = el("div", { "class": "scale" });
      scale.appendChild(el("span", null, "similarity 0"));
      scale.appendChild(el("i"));
      scale.appendChild(el("span", null, "1 (lines: bar starts; thick: every 4 bars)"));
      root.appendChild(scale);
      var pics = el("div", { "class": "figures" });
      data.images.forEach(function (im) {
        var box = el("div", { "class": "figure ssm" });
        box.appendChild(el("h3", null, im.title));
        var img = el("img", { alt: im.title });
        if (/^\/api\//.test(im.file)) {  // live: the API needs the token, which an <img src> cannot send
          api(im.file, true).then(function (blob) { img.src = URL.createObjectURL(blob); }).catch(function () {});
        } else {
          img.src = im.file;
        }
        box.appendChild(img);
        if (im.caption) box.appendChild(el("div", { "class": "caption" }, im.caption));
        pics.appendChild(box);
      });
      root.appendChild(pics);
    }
    root.appendChild(el("h2", null, "Cells (mean ± 95% CI over seeds)"));
    drawCells(data.cells || [], root);
    root.appendChild(el("h2", null, "Context"));
    var facts = el("table", { "class": "facts" });
    (data.facts || []).forEach(function (f) {
      var tr = el("tr");
      tr.appendChild(el("th", { "class": "text" }, f[0]));
      var td = el("td");
      var pre = el("pre", null, f[1]);
      pre.style.margin = "0";
      pre.style.whiteSpace = "pre-wrap";
      td.appendChild(pre);
      tr.appendChild(td);
      facts.appendChild(tr);
    });
    root.appendChild(facts);
    draws++;
    var plotted = document.getElementById("plotted");
    plotted.textContent = JSON.stringify({ draws: draws, figures: drawn, cells: (data.cells || []).length });
    document.body.setAttribute("data-draws", String(draws));
  }

  // --- live mode -------------------------------------------------------------------------------------------
  function token() {
    var m = location.hash.match(/token=([^&]+)/);
    if (m) {
      sessionStorage.setItem("cadenza-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);  // keep the token out of the address bar
    }
    return sessionStorage.getItem("cadenza-token");
  }

  function status(text, isError) {
    var s = document.getElementById("status");
    s.textContent = text;
    s.className = isError ? "status error" : "status";
  }

  function askToken(message) {
    var box = document.getElementById("login");
    box.hidden = false;
    status(message, true);
    document.getElementById("login-form").onsubmit = function (ev) {
      ev.preventDefault();
      sessionStorage.setItem("cadenza-token", document.getElementById("token").value.trim());
      box.hidden = true;
      poll();
    };
  }

  function api(path, binary) {
    return fetch(path, { headers: { Authorization: "Bearer " + token() } }).then(function (r) {
      if (binary) {
        if (!r.ok) throw { message: path + ": " + r.status };
        return r.blob();
      }
      return r.text().then(function (text) {
        if (r.status === 401) throw { auth: true, message: "The coordinator refused the token: enter a valid one." };
        if (!r.ok) {
          var msg = text;
          try { msg = JSON.parse(text).error.message; } catch (e) { /* not JSON */ }
          throw { message: path + ": " + r.status + " " + msg };
        }
        return text;
      });
    });
  }

  var sweep = null;
  var timer = null;
  function poll() {
    if (timer) clearTimeout(timer);
    if (!token()) { askToken("This page reads the coordinator's API with your bearer token (asked once per tab)."); return; }
    var q = new URLSearchParams(location.search);
    var chosen = sweep || q.get("sweep");
    var next = chosen ? Promise.resolve(chosen) : api("/api/v1/sweeps").then(function (text) {
      var list = JSON.parse(text).sweeps;
      if (!list.length) throw { message: "No sweep submitted yet (cadenza submit --sweep FILE); this page updates by itself.", wait: true };
      return String(list[list.length - 1].id);
    });
    next.then(function (id) {
      sweep = id;
      return api("/api/v1/sweeps/" + encodeURIComponent(id) + "/report");
    }).then(function (text) {
      if (text !== lastText) {
        lastText = text;
        render(JSON.parse(text));
      }
      status("live: sweep " + sweep + ", checked " + new Date().toLocaleTimeString() + " (every 3 s)");
      timer = setTimeout(poll, 3000);
    }).catch(function (e) {
      if (e && e.auth) { sessionStorage.removeItem("cadenza-token"); askToken(e.message); return; }
      status((e && e.message) || String(e), !(e && e.wait));
      timer = setTimeout(poll, 3000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.getAttribute("data-live") === "1") {
      poll();
    } else {
      var text = document.getElementById("cadenza-data").textContent;
      render(JSON.parse(text));
    }
  });
})();

"""The style sheet and the script that report.html carries inline (it must open offline).

The script reads the rows from a JSON blob and draws one page of them at a time, so a run of
thousands of rows stays quick to open. It builds every element with ``textContent``, never
``innerHTML``, so nothing from the sheet is ever parsed as markup.
"""

from __future__ import annotations

STYLE = """
:root {
  --ink: #24292f; --muted: #57606a; --line: #d8dee4; --soft: #f6f8fa; --accent: #0969da;
  --radius: 8px;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Liberation Sans", sans-serif;
}
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; font-weight: 600; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 18px; font-weight: 600; margin: 36px 0 12px; }
h3 { font-size: 14px; font-weight: 600; margin: 0 0 8px; color: var(--muted); }
.sub { color: var(--muted); margin: 0; font-size: 14px; }
.sub span + span::before { content: "\\00b7"; margin: 0 8px; color: var(--line); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
  gap: 12px; margin-top: 24px; }
@media (min-width: 900px) { .cards { grid-template-columns: repeat(4, 1fr); } }
.card { border: 1px solid var(--line); border-radius: var(--radius); padding: 12px 14px; }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: 0.04em; }
.card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .note { font-size: 13px; color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(440px, 100%), 1fr));
  gap: 16px; }
.panel { border: 1px solid var(--line); border-radius: var(--radius); padding: 14px 16px; }
svg.chart { width: 100%; height: auto; display: block;
  font-family: inherit; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px;
  text-transform: uppercase; letter-spacing: 0.04em; border-bottom: 1px solid var(--line);
  padding: 8px; background: #fff; position: sticky; top: 0; z-index: 1; }
td { border-bottom: 1px solid var(--line); padding: 10px 8px; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.groups td.reason { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 13px; word-break: break-word; }
.groups .example { color: var(--muted); font-size: 13px; margin-top: 2px; word-break: break-word; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.tools { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 12px; }
.chip { border: 1px solid var(--line); background: #fff; color: var(--ink); border-radius: 999px;
  padding: 4px 12px; font: inherit; font-size: 13px; cursor: pointer; }
.chip[aria-pressed="true"] { background: var(--ink); border-color: var(--ink); color: #fff; }
.chip .n { color: inherit; opacity: 0.7; margin-left: 4px; font-variant-numeric: tabular-nums; }
input[type="search"] { flex: 1 1 240px; min-width: 200px; font: inherit; font-size: 14px;
  padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px; }
.pager { display: flex; gap: 10px; align-items: center; color: var(--muted); font-size: 13px;
  margin: 10px 0; }
.pager button { font: inherit; font-size: 13px; padding: 3px 10px; border-radius: 6px;
  border: 1px solid var(--line); background: #fff; cursor: pointer; }
.pager button:disabled { opacity: 0.4; cursor: default; }
td.thumb { width: 84px; }
td.thumb img { width: 72px; height: 72px; object-fit: cover; border-radius: 6px;
  display: block; background: var(--soft); }
.noimg { width: 72px; height: 72px; border-radius: 6px; background: var(--soft);
  color: var(--muted); font-size: 11px; display: flex; align-items: center;
  justify-content: center; text-align: center; padding: 4px; word-break: break-all; }
td.main { min-width: 260px; }
.rowid { font-weight: 600; word-break: break-all; }
.extra { color: var(--muted); font-size: 12px; margin-left: 6px; }
.prompt { margin-top: 2px; white-space: pre-wrap; word-break: break-word; display: -webkit-box;
  -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; cursor: pointer; }
.prompt.open { display: block; }
.error { margin-top: 4px; color: #82071e; font-size: 13px; word-break: break-word; }
td.video video { width: 240px; max-width: 100%; border-radius: 6px; background: #000;
  display: block; }
td.video { width: 256px; }
.muted { color: var(--muted); font-size: 13px; }
.empty { color: var(--muted); padding: 24px 8px; text-align: center; }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; }
.js-error { position: fixed; bottom: 0; left: 0; right: 0; background: #ffebe9; color: #82071e;
  padding: 8px 16px; font-size: 13px; }
.scroll { overflow-x: auto; max-width: 100%; }
.breakdown td, .runs td { padding: 6px 8px; }
h3 { margin-top: 18px; }
th button.sort { all: unset; cursor: pointer; }
th button.sort:focus-visible { outline: 2px solid var(--accent); }
th[aria-sort="ascending"] button.sort::after { content: " \\25b2"; }
th[aria-sort="descending"] button.sort::after { content: " \\25bc"; }
td.meta { font-size: 13px; color: var(--muted); white-space: nowrap; }
td.own { font-size: 13px; overflow-wrap: anywhere; }
.imgpath { color: var(--muted); font-size: 12px; margin-top: 2px; overflow-wrap: anywhere; }
.rowid, .prompt, .error, .extra { overflow-wrap: anywhere; }
#sort { font: inherit; font-size: 13px; padding: 5px 8px; border: 1px solid var(--line);
  border-radius: 6px; background: #fff; }
@media (max-width: 720px) {
  main { padding: 16px 12px 32px; }
  input[type="search"] { min-width: 0; }
  .rowtable thead { display: none; }
  .rowtable, .rowtable tbody, .rowtable tr, .rowtable td { display: block; width: auto; }
  .rowtable tr.row { border: 1px solid var(--line); border-radius: var(--radius);
    margin: 0 0 12px; padding: 8px 12px; }
  .rowtable td { border: 0; padding: 3px 0; text-align: left; white-space: normal;
    min-width: 0; }
  .rowtable td[data-label]::before { content: attr(data-label) ": "; color: var(--muted);
    font-size: 12px; }
  td.video video { width: 100%; }
}
@media print { .tools, .pager, td.video { display: none; } }
"""

SCRIPT = """
"use strict";
window.addEventListener("error", function (event) {
  var box = document.createElement("div");
  box.id = "report-error";
  box.className = "js-error";
  box.textContent = "This page hit a script error: " + event.message;
  document.body.appendChild(box);
});
(function () {
  var PAGE = 200;
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var rows = data.rows, thumbs = data.thumbs, columns = data.columns || [];
  // Row layout, as written by batchwan/outputs/report.py.
  var POS = 0, ID = 1, STATUS = 2, PROMPT = 3, ERROR = 4, THUMB = 5, VIDEO = 6, RENDER = 7,
    IMAGE = 8, URL = 9, EXTRA = 10, MISSING = 11, MODEL = 12, RES = 13, DUR = 14, COST = 15,
    OWN = 16;
  var ORDER = ["succeeded", "failed", "unknown", "invalid", "duplicate", "running", "pending"];
  var state = { status: "all", query: "", page: 0, sort: "pos", dir: 1 };
  var shown = rows;
  var haystack = null;
  var body = document.getElementById("rows-body");
  var info = document.querySelectorAll(".pageinfo");
  var width = document.querySelectorAll(".rowtable thead th").length;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function cell(cls, label, text) {
    var td = el("td", cls, text);
    if (label) { td.setAttribute("data-label", label); }
    return td;
  }
  function fmtDuration(s) {
    if (s === null || s === undefined) { return ""; }
    var w = Math.round(s);
    if (w < 60) { return (s < 10 && s !== w ? s.toFixed(1) : String(w)) + " s"; }
    var m = Math.floor(w / 60), sec = w % 60;
    if (m < 60) { return m + "m " + (sec < 10 ? "0" : "") + sec + "s"; }
    var h = Math.floor(m / 60), mm = m % 60;
    return h + "h " + (mm < 10 ? "0" : "") + mm + "m";
  }
  function fmtMoney(v) { return v === null || v === undefined ? "" : "$" + v.toFixed(2); }
  function isWebLink(url) { return /^https?:\\/\\//i.test(url || ""); }
  function thumbCell(r) {
    var td = el("td", "thumb");
    if (r[THUMB] >= 0) {
      var img = el("img");
      img.src = thumbs[r[THUMB]];
      img.alt = "";
      img.loading = "lazy";
      img.title = r[IMAGE];
      td.appendChild(img);
    } else {
      var box = el("div", "noimg", isWebLink(r[IMAGE]) ? "image URL" : "no preview");
      box.title = r[IMAGE];
      td.appendChild(box);
    }
    return td;
  }
  function mainCell(r) {
    var td = el("td", "main");
    var head = el("div");
    head.appendChild(el("span", "rowid", r[ID]));
    if (r[EXTRA]) { head.appendChild(el("span", "extra", r[EXTRA])); }
    td.appendChild(head);
    var prompt = el("div", "prompt", r[PROMPT]);
    prompt.title = "Click to show all";
    prompt.addEventListener("click", function () { prompt.classList.toggle("open"); });
    td.appendChild(prompt);
    if (r[IMAGE]) { td.appendChild(el("div", "imgpath", "image: " + r[IMAGE])); }
    if (r[ERROR]) { td.appendChild(el("div", "error", r[ERROR])); }
    return td;
  }
  function videoCell(r) {
    var td = el("td", "video");
    if (r[VIDEO]) {
      var video = el("video");
      video.controls = true;
      video.preload = "none";
      video.setAttribute("src", r[VIDEO]);
      td.appendChild(video);
    } else if (r[MISSING]) {
      td.appendChild(el("span", "muted", "video file missing: " + r[MISSING]));
    } else if (isWebLink(r[URL])) {
      var a = el("a", null, "provider link");
      a.href = r[URL];
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      td.appendChild(a);
    } else {
      td.appendChild(el("span", "muted", "\\u2014"));
    }
    return td;
  }
  function rowElement(r) {
    var tr = el("tr", "row");
    tr.appendChild(cell("num", "Row", r[POS]));
    tr.appendChild(thumbCell(r));
    tr.appendChild(mainCell(r));
    var st = el("td");
    st.appendChild(el("span", "badge s-" + r[STATUS], r[STATUS]));
    tr.appendChild(st);
    tr.appendChild(cell("meta", "Model",
      [r[MODEL], r[RES], r[DUR] + " s"].filter(function (x) { return x; }).join(" \\u00b7 ")));
    tr.appendChild(cell("num", "Render", fmtDuration(r[RENDER])));
    tr.appendChild(cell("num", "Cost", fmtMoney(r[COST])));
    columns.forEach(function (name, i) { tr.appendChild(cell("own", name, r[OWN][i])); });
    tr.appendChild(videoCell(r));
    return tr;
  }
  function sortValue(r) {
    var key = state.sort;
    if (key === "pos") { return r[POS]; }
    if (key === "status") { return ORDER.indexOf(r[STATUS]); }
    if (key === "render") { return r[RENDER]; }
    if (key === "cost") { return r[COST]; }
    if (key === "model") { return r[MODEL] + " " + r[RES]; }
    var text = r[OWN][Number(key.slice(4))];
    if (text === "" || text === undefined) { return null; }
    var number = Number(text);
    return isNaN(number) ? String(text).toLowerCase() : number;
  }
  function compare(a, b) {
    var x = sortValue(a), y = sortValue(b);
    var noX = x === null || x === undefined, noY = y === null || y === undefined;
    // Empty values go last whichever way the column is sorted.
    if (noX || noY) { return noX && noY ? a[POS] - b[POS] : (noX ? 1 : -1); }
    var order = 0;
    if (typeof x === "number" && typeof y === "number") { order = x - y; }
    else { order = String(x).localeCompare(String(y), undefined, { numeric: true }); }
    return order * state.dir || a[POS] - b[POS];
  }
  function draw() {
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var first = state.page * PAGE;
    var slice = shown.slice(first, first + PAGE);
    var frag = document.createDocumentFragment();
    slice.forEach(function (r) { frag.appendChild(rowElement(r)); });
    if (!slice.length) {
      var tr = el("tr"), td = el("td", "empty", "No rows match.");
      td.colSpan = width;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    var text = shown.length
      ? "Rows " + (first + 1).toLocaleString("en-US") + "\\u2013" +
        (first + slice.length).toLocaleString("en-US") + " of " +
        shown.length.toLocaleString("en-US") + " \\u00b7 page " + (state.page + 1) + " of " + pages
      : "0 of " + rows.length.toLocaleString("en-US") + " rows";
    info.forEach(function (node) { node.textContent = text; });
    document.querySelectorAll(".prev").forEach(function (b) { b.disabled = state.page === 0; });
    document.querySelectorAll(".next").forEach(function (b) {
      b.disabled = state.page >= pages - 1;
    });
    document.querySelectorAll("th[data-sort]").forEach(function (th) {
      var on = th.getAttribute("data-sort") === state.sort;
      th.setAttribute("aria-sort", on ? (state.dir > 0 ? "ascending" : "descending") : "none");
    });
  }
  function apply() {
    var q = state.query;
    if (q && haystack === null) {
      haystack = rows.map(function (r) {
        return [r[PROMPT], r[ID], r[ERROR], r[EXTRA], r[IMAGE], r[MODEL]].concat(r[OWN])
          .join("\\n").toLowerCase();
      });
    }
    shown = rows.filter(function (r, i) {
      return (state.status === "all" || r[STATUS] === state.status) &&
        (!q || haystack[i].indexOf(q) !== -1);
    });
    shown.sort(compare);
    state.page = 0;
    draw();
  }
  var search = document.getElementById("search");
  var menu = document.getElementById("sort");
  function press(chip) {
    document.querySelectorAll(".chip").forEach(function (c) {
      c.setAttribute("aria-pressed", String(c === chip));
    });
    state.status = chip.getAttribute("data-status");
  }
  function sortBy(key, dir) {
    state.sort = key;
    state.dir = dir;
    menu.value = key;
  }
  // The view lives in the address (report.html#status=failed&q=cat&sort=cost), to be shared.
  function writeHash() {
    var params = new URLSearchParams();
    if (state.status !== "all") { params.set("status", state.status); }
    if (search.value.trim()) { params.set("q", search.value.trim()); }
    if (state.sort !== "pos" || state.dir < 0) {
      params.set("sort", (state.dir < 0 ? "-" : "") + state.sort);
    }
    var text = params.toString();
    try {
      history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
    } catch (ignored) {
      // Some viewers of saved pages refuse to change the address; the filter still works.
    }
  }
  function readHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    var wanted = params.get("status");
    document.querySelectorAll(".chip").forEach(function (chip) {
      if (chip.getAttribute("data-status") === wanted) { press(chip); }
    });
    if (params.get("q")) {
      search.value = params.get("q");
      state.query = search.value.trim().toLowerCase();
    }
    var sort = params.get("sort");
    if (sort) {
      var key = sort.replace(/^-/, "");
      if (document.querySelector('th[data-sort="' + key.replace(/[^\\w:]/g, "") + '"]')) {
        sortBy(key, sort.charAt(0) === "-" ? -1 : 1);
      }
    }
  }
  document.querySelectorAll(".chip").forEach(function (chip) {
    chip.addEventListener("click", function () {
      press(chip);
      writeHash();
      apply();
    });
  });
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.querySelector("button").addEventListener("click", function () {
      var key = th.getAttribute("data-sort");
      sortBy(key, state.sort === key ? -state.dir : 1);
      writeHash();
      apply();
    });
  });
  menu.addEventListener("change", function () {
    sortBy(menu.value, 1);
    writeHash();
    apply();
  });
  var timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      state.query = search.value.trim().toLowerCase();
      writeHash();
      apply();
    }, 150);
  });
  function turn(delta, scroll) {
    state.page += delta;
    draw();
    if (scroll) { document.getElementById("rows").scrollIntoView(); }
  }
  document.querySelectorAll(".prev").forEach(function (b) {
    b.addEventListener("click", function () { turn(-1, b.hasAttribute("data-scroll")); });
  });
  document.querySelectorAll(".next").forEach(function (b) {
    b.addEventListener("click", function () { turn(1, b.hasAttribute("data-scroll")); });
  });
  document.documentElement.setAttribute("data-rendered", String(rows.length));
  readHash();
  apply();
})();
"""

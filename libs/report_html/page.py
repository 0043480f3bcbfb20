"""The page shell every results page shares: inline style and one inline script, no CDN, no fonts.

Data reaches the script only through ``<script type="application/json">`` blocks (``json_block``), with
``<``, ``>`` and ``&`` escaped, and the script writes it into the page with ``textContent``: a string in a
results file can never become markup or code. The script is the same text on every page, so the results
browser can allow exactly it (``SCRIPT_SHA256`` in its Content-Security-Policy) and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

STYLE = """
:root { --fg: #1d2327; --muted: #667085; --line: #d0d5dd; --bg: #ffffff; --soft: #f4f6f8; --accent: #0b6bcb;
  --ok: #2e7d32; --bad: #b42318; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg);
  background: var(--bg); margin: 0; }
header.top { background: #16202a; color: #fff; padding: 10px 24px; display: flex; gap: 24px;
  align-items: baseline; }
header.top a { color: #cfe3ff; }
header.top .brand { font-weight: 600; }
main { padding: 8px 24px 40px; max-width: 1400px; }
h1 { font-size: 22px; margin: 14px 0 4px; }
h2 { font-size: 17px; margin: 26px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
pre { background: var(--soft); padding: 8px 10px; border-radius: 4px; white-space: pre-wrap;
  word-break: break-all; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.callout { background: #eef6ee; border-left: 4px solid var(--ok); padding: 8px 12px; margin: 10px 0; }
.error { background: #fdecea; border-left: 4px solid var(--bad); padding: 8px 12px; margin: 10px 0; }
.warn { background: #fff6e5; border-left: 4px solid #e69f00; padding: 8px 12px; margin: 10px 0; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { font-weight: 600; }
.chart text { font-size: 11px; fill: #344054; }
.chart text.on-bar { fill: #fff; font-weight: 600; }
.chart line.grid { stroke: #e4e7ec; }
.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; margin: 8px 0; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.filters select, .filters input { font: inherit; padding: 3px 4px; min-width: 130px; }
#episodes th[data-key] { cursor: pointer; user-select: none; }
#episodes th[data-key]::after { content: " \\2195"; color: #98a2b3; }
#episodes th.sorted-asc::after { content: " \\2191"; color: var(--fg); }
#episodes th.sorted-desc::after { content: " \\2193"; color: var(--fg); }
#episodes tbody tr.episode { cursor: pointer; }
#episodes tbody tr.episode:hover { background: #f0f6ff; }
#episodes tbody tr.open { background: #e8f1fd; }
tr.detail > td { background: #fbfcfe; padding: 10px 14px; }
.outcome { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; color: #fff;
  background: #98a2b3; }
.outcome.success { background: var(--ok); }
.media { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; margin: 6px 0; }
.media video, .media img { max-width: 640px; width: 100%; border: 1px solid var(--line); border-radius: 4px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin: 10px 0 22px; }
.pair > div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.pair video, .pair img { width: 100%; border: 1px solid var(--line); border-radius: 4px; }
progress { width: 100%; max-width: 480px; height: 12px; }
form.inline { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; }
form.inline label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
form.inline select { font: inherit; max-width: 420px; }
""".strip()

#: The one script of every page: the episode table (sort, filter, open a row), the live progress panel.
SCRIPT = r"""
(function () {
  "use strict";
  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function fmt(value, digits) {
    return value === null || value === undefined || value === "" ? "–" : Number(value).toFixed(digits);
  }
  var table = document.getElementById("episodes");
  var episodes = data("episodes-data");
  if (table && episodes) {
    var tbody = table.querySelector("tbody");
    var sortKey = null, sortDir = 1, openSeedKey = null;
    var filters = {
      checkpoint: document.getElementById("filter-checkpoint"),
      outcome: document.getElementById("filter-outcome"),
      cause: document.getElementById("filter-cause"),
      arm: document.getElementById("filter-arm")
    };
    var text = document.getElementById("filter-text");
    var shown = document.getElementById("shown-count");
    function fillSelect(select, key) {
      if (!select) return;
      var values = [];
      episodes.forEach(function (e) { if (values.indexOf(e[key]) < 0) values.push(e[key]); });
      values.sort();
      values.forEach(function (v) {
        var o = el("option", v === "" ? "(none)" : v); o.value = v; select.appendChild(o);
      });
      select.addEventListener("change", render);
    }
    Object.keys(filters).forEach(function (key) { fillSelect(filters[key], key); });
    if (text) text.addEventListener("input", render);
    function matches(e) {
      for (var key in filters) {
        var f = filters[key];
        if (f && f.value !== "*" && String(e[key]) !== f.value) return false;
      }
      if (text && text.value) {
        var needle = text.value.toLowerCase();
        var hay = [e.checkpoint, e.seed, e.arm, e.outcome, e.cause, e.sentence].join(" ").toLowerCase();
        if (hay.indexOf(needle) < 0) return false;
      }
      return true;
    }
    function detail(e) {
      var row = el("tr", null, "detail"), cell = el("td");
      cell.colSpan = table.querySelectorAll("thead th").length;
      var head = el("p");
      head.appendChild(el("strong", e.checkpoint + (e.arm ? " + " + e.arm : "") + ", seed " + e.seed + ": "));
      head.appendChild(el("span", e.outcome, "outcome " + e.outcome));
      cell.appendChild(head);
      var fallback = e.outcome === "success" ? "Placed in the bowl." : "No failure pattern recognised.";
      cell.appendChild(el("p", e.sentence || fallback));
      var facts = "steps " + e.steps + ", max block height " + fmt(e.height_cm, 1) + " cm, latency " +
        fmt(e.latency_ms, 1) + " ms" + (e.progress === null ? "" : ", progress " + fmt(e.progress, 2)) +
        (e.pick_step === null ? ", never picked up" : ", picked up at step " + e.pick_step);
      cell.appendChild(el("p", facts, "muted"));
      var media = el("div", null, "media");
      if (e.video) {
        var video = el("video");
        video.controls = true; video.muted = true; video.preload = "metadata";
        video.src = e.video; video.className = "whisker-video";
        media.appendChild(video);
      }
      if (e.summary) {
        var img = el("img"); img.src = e.summary; img.alt = "whisker summary of seed " + e.seed;
        img.className = "whisker-summary";
        media.appendChild(img);
      }
      if (e.video || e.summary) cell.appendChild(media);
      else cell.appendChild(el("p", "No whisker video for this episode: the command below replays it " +
        "and records one.", "muted"));
      if (e.likely && e.likely.length) {
        cell.appendChild(el("p", "Whiskers' likely causes: " + e.likely.join(", ")));
      }
      cell.appendChild(el("div", "Reproduce this episode:", "muted"));
      cell.appendChild(el("pre", e.command, "command"));
      row.appendChild(cell);
      return row;
    }
    function render() {
      var rows = episodes.filter(matches);
      if (sortKey) {
        rows.sort(function (a, b) {
          var x = a[sortKey], y = b[sortKey];
          if (x === y) return a.order - b.order;
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * sortDir;
        });
      }
      tbody.textContent = "";
      rows.forEach(function (e) {
        var tr = el("tr", null, "episode");
        tr.dataset.key = e.key;
        [e.checkpoint, e.seed, e.arm || "–", null, e.sentence || (e.outcome === "success" ? "" : "–"),
         e.steps, fmt(e.height_cm, 1), fmt(e.latency_ms, 1), e.video ? "video" : (e.summary ? "picture" : "")]
          .forEach(function (value, index) {
            var td;
            if (index === 3) { td = el("td"); td.appendChild(el("span", e.outcome, "outcome " + e.outcome)); }
            else td = el("td", value, index === 1 || index === 5 || index === 6 || index === 7 ? "num" : "");
            tr.appendChild(td);
          });
        tr.addEventListener("click", function () {
          var open = openSeedKey === e.key;
          render.closeAll();
          if (!open) { tr.classList.add("open"); tr.after(detail(e)); openSeedKey = e.key; }
        });
        tbody.appendChild(tr);
        if (openSeedKey === e.key) { tr.classList.add("open"); tr.after(detail(e)); }
      });
      if (shown) shown.textContent = rows.length + " of " + episodes.length + " episodes";
    }
    render.closeAll = function () {
      tbody.querySelectorAll("tr.detail").forEach(function (r) { r.remove(); });
      tbody.querySelectorAll("tr.open").forEach(function (r) { r.classList.remove("open"); });
      openSeedKey = null;
    };
    table.querySelectorAll("th[data-key]").forEach(function (th) {
      th.addEventListener("click", function () {
        var key = th.dataset.key;
        sortDir = sortKey === key ? -sortDir : 1; sortKey = key;
        table.querySelectorAll("th").forEach(function (h) {
          h.classList.remove("sorted-asc", "sorted-desc");
        });
        th.classList.add(sortDir > 0 ? "sorted-asc" : "sorted-desc");
        render();
      });
    });
    render();
  }
  var live = document.getElementById("live");
  if (live && live.dataset.url) {
    var fails = 0;
    var poll = function () {
      fetch(live.dataset.url, {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (p) {
        fails = 0;
        document.getElementById("live-done").textContent = p.done;
        document.getElementById("live-planned").textContent = p.planned === null ? "?" : p.planned;
        document.getElementById("live-age").textContent = p.age;
        var bar = document.getElementById("live-bar");
        if (bar && p.planned) { bar.max = p.planned; bar.value = Math.min(p.done, p.planned); }
        var error = document.getElementById("live-error");
        error.textContent = p.error || ""; error.hidden = !p.error;
        var body = document.querySelector("#live-table tbody");
        body.textContent = "";
        p.checkpoints.forEach(function (c) {
          var tr = el("tr");
          [c.checkpoint, c.episodes + (c.planned ? " / " + c.planned : ""), c.successes + "/" + c.episodes +
           " (" + c.rate + ")", c.interval].forEach(function (v) { tr.appendChild(el("td", v)); });
          body.appendChild(tr);
        });
        live.dataset.done = p.done;
        if (p.finished && live.dataset.finished !== "1") { live.dataset.finished = "1"; location.reload(); }
        else setTimeout(poll, 1000);
      }).catch(function () { fails += 1; setTimeout(poll, Math.min(10000, 1000 * (fails + 1))); });
    };
    setTimeout(poll, 1000);
  }
})();
""".strip()

SCRIPT_SHA256 = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
STYLE_SHA256 = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
#: The Content-Security-Policy the results browser sends with its pages: this script and style only, no
#: other origin, media and pictures from the server itself.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src 'sha256-{SCRIPT_SHA256}'; style-src 'sha256-{STYLE_SHA256}'; "
    "img-src 'self'; media-src 'self'; connect-src 'self'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def json_block(element_id: str, value: Any) -> str:
    """``value`` as a JSON data block the page's script reads (never executed, never parsed as markup)."""
    text = json.dumps(value, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{escape(element_id)}">{text}</script>'


def document(title: str, body: str, *, base: str | None = None, nav: str = "") -> str:
    """A whole page: ``base`` (the results browser) makes the page's relative links point into its folder."""
    base_tag = f'<base href="{escape(base)}">' if base else ""
    top = f'<header class="top"><span class="brand">so101lab results</span>{nav}</header>' if nav else ""
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"{base_tag}<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{top}<main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )

// moor ui: metric charts, drawn as SVG. Steps on x, one line per run (a
// job's: per node). The server sends each line downsampled (at most 512
// points, whatever was logged), so drawing stays quick; dragging across a
// chart zooms into those steps (asked of the server again, at full detail
// for the range), a double click or "Reset" zooms out.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  const M = { left: 64, right: 16, top: 12, bottom: 30 };

  function node(name, attrs, parent) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }

  // About `count` round numbers spanning lo..hi.
  function ticks(lo, hi, count) {
    const span = hi - lo || Math.abs(hi) || 1;
    const raw = span / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
    return out;
  }

  // Draws `lines` ([{label, points: [[step, value]], count}]) into `box`.
  // `zoom(from, to)` is called with the steps dragged across.
  moor.drawChart = function (box, lines, zoom) {
    box.innerHTML = "";
    const width = Math.max(320, box.clientWidth || 640);
    const height = 260;
    const clean = lines.map((l) => ({
      ...l,
      points: l.points.filter((p) => typeof p[1] === "number" && isFinite(p[1])).sort((a, b) => a[0] - b[0]),
    }));
    const all = clean.flatMap((l) => l.points);
    const svg = node("svg", { width, height, class: "chart", viewBox: "0 0 " + width + " " + height });
    svg.dataset.count = String(lines.reduce((n, l) => n + (l.count || 0), 0));
    box.appendChild(svg);
    if (!all.length) {
      node("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "muted" }, svg).textContent = "no points";
      return;
    }
    let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
    if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
    if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
    const pad = (y1 - y0) * 0.05;
    [y0, y1] = [y0 - pad, y1 + pad];
    const w = width - M.left - M.right;
    const h = height - M.top - M.bottom;
    const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * w;
    const sy = (y) => M.top + h - ((y - y0) / (y1 - y0)) * h;
    const step = (px) => x0 + ((px - M.left) / w) * (x1 - x0);
    for (const t of ticks(y0, y1, 5)) {
      node("line", { x1: M.left, x2: M.left + w, y1: sy(t), y2: sy(t), class: "grid" }, svg);
      node("text", { x: M.left - 6, y: sy(t) + 4, "text-anchor": "end", class: "axis" }, svg).textContent = moor.number(t);
    }
    for (const t of ticks(x0, x1, 6).filter((t) => Number.isInteger(t))) {
      node("line", { x1: sx(t), x2: sx(t), y1: M.top + h, y2: M.top + h + 4, class: "grid" }, svg);
      node("text", { x: sx(t), y: height - 10, "text-anchor": "middle", class: "axis" }, svg).textContent = String(t);
    }
    node("rect", { x: M.left, y: M.top, width: w, height: h, class: "frame" }, svg);
    clean.forEach((l, i) => {
      const color = COLORS[i % COLORS.length];
      const d = l.points.map((p, j) => (j ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1)).join("");
      const path = node("path", { d, stroke: color, class: "line" }, svg);
      path.dataset.points = String(l.points.length);
      path.dataset.label = l.label;
      if (l.points.length === 1) node("circle", { cx: sx(l.points[0][0]), cy: sy(l.points[0][1]), r: 3, fill: color }, svg);
    });
    const legend = document.createElement("div");
    legend.className = "legend";
    legend.innerHTML = clean
      .map((l, i) => '<span><i class="c' + (i % COLORS.length) + '"></i>' + moor.esc(l.label) + ' <span class="muted">(' + (l.count || 0) + " points)</span></span>")
      .join("");
    box.appendChild(legend);
    // Hover: the values at the nearest step; drag: zoom.
    const cursor = node("line", { y1: M.top, y2: M.top + h, class: "cursor", visibility: "hidden" }, svg);
    const band = node("rect", { y: M.top, height: h, class: "band", visibility: "hidden" }, svg);
    const tip = document.createElement("div");
    tip.className = "tip";
    box.appendChild(tip);
    let from = null;
    const px = (event) => {
      const r = svg.getBoundingClientRect();
      return Math.min(M.left + w, Math.max(M.left, ((event.clientX - r.left) / r.width) * width));
    };
    svg.addEventListener("pointerdown", (event) => {
      from = px(event);
      try {
        svg.setPointerCapture(event.pointerId);
      } catch (e) {
        // A pointer the browser does not track (a synthetic event): no capture.
      }
    });
    svg.addEventListener("pointermove", (event) => {
      const x = px(event);
      cursor.setAttribute("x1", x);
      cursor.setAttribute("x2", x);
      cursor.setAttribute("visibility", "visible");
      if (from !== null) {
        band.setAttribute("x", Math.min(from, x));
        band.setAttribute("width", Math.abs(x - from));
        band.setAttribute("visibility", "visible");
      }
      const at = step(x);
      const near = clean
        .map((l) => l.points.reduce((best, p) => (!best || Math.abs(p[0] - at) < Math.abs(best[0] - at) ? p : best), null))
        .map((p, i) => (p ? moor.esc(clean[i].label) + ": " + moor.number(p[1]) + " @ " + p[0] : ""))
        .filter(Boolean);
      tip.innerHTML = near.join("<br>");
      tip.style.display = near.length ? "block" : "none";
    });
    svg.addEventListener("pointerleave", () => {
      cursor.setAttribute("visibility", "hidden");
      tip.style.display = "none";
    });
    svg.addEventListener("pointerup", (event) => {
      const to = px(event);
      band.setAttribute("visibility", "hidden");
      if (from !== null && Math.abs(to - from) > 4 && zoom) {
        const [a, b] = [step(Math.min(from, to)), step(Math.max(from, to))];
        zoom(Math.floor(a), Math.ceil(b));
      }
      from = null;
    });
    svg.addEventListener("dblclick", () => zoom && zoom(null, null));
  };

  // Lines of a chart answer: one per run, or per node of a job.
  function lines(chart, compared) {
    return chart.series.map((s) => ({
      label: (compared ? s.run : "") + (s.node !== undefined ? (compared ? " " : "") + "node " + s.node : compared ? "" : s.run),
      points: s.curve.buckets,
      count: s.count,
    }));
  }

  // The chart of metric `key` of `runs` in `box`, with its zoom: the
  // curves asked of the server (`initial`: lines already at hand for the
  // whole range).
  moor.metricChart = async function (box, runs, key, initial) {
    box.classList.add("chart-box");
    box.innerHTML = "";
    const bar = document.createElement("div");
    bar.className = "chart-bar";
    bar.innerHTML = "<b>" + moor.esc(key) + '</b> <span class="range muted"></span> <button class="reset" hidden>Reset zoom</button>';
    const plot = document.createElement("div");
    box.append(bar, plot);
    const show = async (from, to) => {
      let drawn = from === null && initial ? initial : null;
      if (!drawn) {
        const q = runs.map((r) => "run=" + encodeURIComponent(r)).join("&") + "&key=" + encodeURIComponent(key) + (from !== null ? "&from=" + from + "&to=" + to : "");
        drawn = lines(await moor.api("chart?" + q), runs.length > 1);
      }
      moor.drawChart(plot, drawn, (a, b) => show(a, b).catch((e) => moor.failed(plot, e)));
      bar.querySelector(".range").textContent = from === null ? "" : "steps " + from + "–" + to;
      bar.querySelector(".reset").hidden = from === null;
      box.dataset.zoomed = from === null ? "" : from + "-" + to;
    };
    bar.querySelector(".reset").addEventListener("click", () => show(null, null));
    await show(null, null);
  };
})();

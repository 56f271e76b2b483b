// moor ui: the page's core. The token from the URL goes with every API
// request (in a header); pages are routed by the URL's hash (#/runs,
// #/run/ID, #/compare?runs=A,B, #/targets, #/envs, #/endpoints).
"use strict";

const moor = (window.moor = {
  token: new URLSearchParams(location.search).get("token") || "",
  pages: {},
  // Timers and streams of the page shown; stopped when another is shown.
  cleanups: [],
});

// A GET (or POST, with an optional JSON body) of the API, as JSON; an
// error answer throws its message.
moor.api = async function (path, method, body) {
  const headers = { "X-Moor-Token": moor.token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch("/api/" + path, {
    method: method || "GET",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const e = answer && answer.error;
    throw new Error(e ? e.message + "; fix: " + e.fix : "HTTP " + response.status);
  }
  return answer;
};

// Text for HTML.
moor.esc = function (value) {
  return String(value === undefined || value === null ? "" : value).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]
  );
};

// A duration in seconds as 45s, 3m12s, 2h05m, 3d04h (as the command line).
moor.duration = function (secs) {
  if (secs === undefined || secs === null) return "";
  const pad = (n) => String(n).padStart(2, "0");
  if (secs < 60) return secs + "s";
  if (secs < 3600) return Math.floor(secs / 60) + "m" + pad(secs % 60) + "s";
  if (secs < 86400) return Math.floor(secs / 3600) + "h" + pad(Math.floor((secs % 3600) / 60)) + "m";
  return Math.floor(secs / 86400) + "d" + pad(Math.floor((secs % 86400) / 3600)) + "h";
};

// A number for people: up to 6 significant digits.
moor.number = function (v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v; // NaN, Infinity
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(6)));
};

moor.bytes = function (n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return (i ? n.toFixed(1) : n) + " " + units[i];
};

// A run's state as a badge.
moor.state = function (state) {
  return '<span class="state state-' + moor.esc(state) + '">' + moor.esc(state) + "</span>";
};

// An HTML table: headers, and rows of cells already escaped.
moor.table = function (id, headers, rows) {
  const head = headers.map((h) => "<th>" + moor.esc(h) + "</th>").join("");
  const body = rows.map((cells) => "<tr>" + cells.map((c) => "<td>" + c + "</td>").join("") + "</tr>");
  return '<table id="' + id + '"><thead><tr>' + head + "</tr></thead><tbody>" + body.join("") + "</tbody></table>";
};

// Environment names by content hash: NAME:VERSION.
moor.envNames = function (envs) {
  const names = {};
  for (const e of envs) names[e.hash] = e.name + ":" + e.version;
  return names;
};

// An error shown where a page's content would be.
moor.failed = function (where, e) {
  where.innerHTML = '<p class="error">' + moor.esc(e.message || e) + "</p>";
};

// Calls `f` every `ms` while the page is shown and visible.
moor.every = function (ms, f) {
  const timer = setInterval(() => {
    if (!document.hidden) f();
  }, ms);
  moor.cleanups.push(() => clearInterval(timer));
};

// The link to a page, keeping the token.
moor.link = function (hash, text) {
  return '<a href="' + moor.esc(hash) + '">' + moor.esc(text) + "</a>";
};

// Shows the page the hash names.
moor.route = function () {
  for (const cleanup of moor.cleanups.splice(0)) cleanup();
  const hash = location.hash.replace(/^#\/?/, "") || "runs";
  const [path, query] = hash.split("?");
  const [page, ...rest] = path.split("/");
  const params = new URLSearchParams(query || "");
  const main = document.getElementById("main");
  document.body.dataset.page = page;
  delete document.body.dataset.ready;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === page || ((page === "run" || page === "compare") && a.dataset.page === "runs"));
  }
  const show = moor.pages[page];
  if (!show) {
    main.innerHTML = '<p class="error">No page ' + moor.esc(page) + "</p>";
    return;
  }
  main.innerHTML = '<p class="muted">Loading…</p>';
  show(main, rest.map(decodeURIComponent), params).catch((e) => moor.failed(main, e));
};

// Marks the page as drawn (tests and benchmarks wait for it).
moor.ready = function () {
  document.body.dataset.ready = document.body.dataset.page;
  performance.mark("ready-" + document.body.dataset.page);
};

window.addEventListener("load", () => {
  if (!moor.token) {
    document.getElementById("main").innerHTML =
      '<p class="error">This page needs its token: open the URL <code>moor ui</code> printed.</p>';
    return;
  }
  moor
    .api("about")
    .then((about) => {
      document.getElementById("workspace").textContent = "workspace " + about.workspace;
    })
    .catch(() => {});
  window.addEventListener("hashchange", moor.route);
  moor.route();
});

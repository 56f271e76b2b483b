// moor ui: the list pages (runs, targets, environments, endpoints) and the
// comparison of several runs' metrics on one chart.
"use strict";

(function () {
  const { esc, table, link } = moor;

  // ---- Runs: every run and job of the workspace, newest first.
  moor.pages.runs = async function (main, _rest, params) {
    const all = params.get("all") === "1";
    main.innerHTML =
      '<div class="toolbar">' +
      '<input id="filter" type="search" placeholder="Filter: id, name, target, state, command">' +
      '<label><input id="all" type="checkbox"' + (all ? " checked" : "") + "> detached targets too</label>" +
      '<label>metric <select id="metric"><option value="">—</option></select></label>' +
      '<button id="compare" disabled>Compare selected</button>' +
      '<span id="count" class="muted"></span></div>' +
      '<form id="new-run" class="toolbar"><strong>New run</strong>' +
      '<input id="new-target" required placeholder="target(s) or pool, space-separated">' +
      '<input id="new-source" placeholder="source folder (default: where moor ui runs)">' +
      '<input id="new-name" placeholder="name (optional)">' +
      '<input id="new-command" required placeholder="command, e.g. python3 train.py --lr 0.1">' +
      '<button id="start" type="submit">Start</button><span id="started" class="muted"></span></form>' +
      '<div id="runs"></div><p id="notes" class="muted"></p>';
    const selected = new Set();
    let rows = [];
    const draw = () => {
      const words = main.querySelector("#filter").value.toLowerCase().split(/\s+/).filter(Boolean);
      const metric = main.querySelector("#metric").value;
      let shown = rows.filter((r) => {
        const text = [r.id, r.name, r.target, r.state, r.command.join(" ")].join(" ").toLowerCase();
        return words.every((w) => text.includes(w));
      });
      if (metric) {
        const value = (r) => (r.metrics && typeof r.metrics[metric] === "number" ? r.metrics[metric] : null);
        shown = shown.slice().sort((a, b) => {
          const [x, y] = [value(a), value(b)];
          return x === null ? (y === null ? 0 : 1) : y === null ? -1 : x - y;
        });
      }
      const headers = ["", "RUN", "NAME", "TARGET", "STATE", "EXIT", "DURATION"];
      if (metric) headers.push(metric.toUpperCase());
      headers.push("COMMAND", "CREATED");
      const cells = shown.map((r) => {
        const exit = r.exit_code !== null ? r.exit_code : r.signal !== null ? "s" + r.signal : "";
        const row = [
          '<input type="checkbox" data-run="' + esc(r.id) + '"' + (selected.has(r.id) ? " checked" : "") + ">",
          link("#/run/" + encodeURIComponent(r.id), r.id) + (r.nodes ? ' <span class="tag">job ×' + r.nodes.length + "</span>" : ""),
          esc(r.name),
          esc(r.target),
          moor.state(r.reachable ? r.state : (r.target_detached ? "detached " : "unreachable ") + r.state),
          esc(exit),
          esc(moor.duration(r.duration_secs)),
        ];
        if (metric) row.push(esc(moor.number(r.metrics ? r.metrics[metric] : null)));
        row.push('<code class="command">' + esc(r.command.join(" ")) + "</code>", esc(r.created_at));
        return row;
      });
      main.querySelector("#runs").innerHTML = table("runs-table", headers, cells);
      main.querySelector("#count").textContent = shown.length + " of " + rows.length + " runs";
    };
    const load = async () => {
      const runs = await moor.api("runs" + (main.querySelector("#all").checked ? "?all=1" : ""));
      rows = runs;
      const metrics = new Set();
      for (const r of rows) for (const k of Object.keys(r.metrics || {})) metrics.add(k);
      const select = main.querySelector("#metric");
      const chosen = select.value;
      select.innerHTML =
        '<option value="">—</option>' +
        [...metrics].sort().map((k) => '<option value="' + esc(k) + '">' + esc(k) + "</option>").join("");
      select.value = metrics.has(chosen) ? chosen : "";
      draw();
    };
    main.querySelector("#filter").addEventListener("input", draw);
    main.querySelector("#metric").addEventListener("change", draw);
    main.querySelector("#all").addEventListener("change", () => load().catch((e) => moor.failed(main.querySelector("#notes"), e)));
    main.querySelector("#runs").addEventListener("change", (event) => {
      const id = event.target.dataset.run;
      if (!id) return;
      if (event.target.checked) selected.add(id);
      else selected.delete(id);
      main.querySelector("#compare").disabled = selected.size < 1;
    });
    // A new run: `moor run`'s own arguments, started detached by the server
    // through the same plan as the command line (words split on spaces: use
    // `sh -c '...'` on the command line for shell syntax).
    main.querySelector("#new-run").addEventListener("submit", async (event) => {
      event.preventDefault();
      const words = (id) => main.querySelector(id).value.trim().split(/\s+/).filter(Boolean);
      const argv = [];
      for (const t of words("#new-target")) argv.push("--target", t);
      const source = main.querySelector("#new-source").value.trim();
      if (source) argv.push("--source-dir", source);
      const name = main.querySelector("#new-name").value.trim();
      if (name) argv.push("--name", name);
      argv.push("--", ...words("#new-command"));
      const note = main.querySelector("#started");
      note.textContent = "starting…";
      try {
        const ran = await moor.api("runs", "POST", { argv });
        note.innerHTML = "started " + link("#/run/" + encodeURIComponent(ran.id), ran.id);
        await load();
      } catch (e) {
        moor.failed(note, e);
      }
    });
    main.querySelector("#compare").addEventListener("click", () => {
      location.hash = "#/compare?runs=" + [...selected].map(encodeURIComponent).join(",");
    });
    await load();
    moor.ready();
    moor.every(5000, () => load().catch(() => {}));
  };

  // ---- Compare: one metric of several runs (a job's: each node) on one chart.
  moor.pages.compare = async function (main, _rest, params) {
    const runs = (params.get("runs") || "").split(",").filter(Boolean);
    main.innerHTML =
      "<h1>Compare " + runs.map((r) => link("#/run/" + encodeURIComponent(r), r)).join(", ") + "</h1>" +
      '<div class="toolbar"><label>metric <select id="metric"></select></label></div><div id="chart"></div>';
    const summaries = await Promise.all(runs.map((r) => moor.api("runs/" + encodeURIComponent(r) + "/metrics")));
    const keys = new Set();
    for (const s of summaries) for (const run of s.runs) for (const k of Object.keys(run.metrics)) keys.add(k);
    const select = main.querySelector("#metric");
    select.innerHTML = [...keys].sort().map((k) => '<option value="' + esc(k) + '">' + esc(k) + "</option>").join("");
    const chosen = params.get("key");
    if (chosen && keys.has(chosen)) select.value = chosen;
    const draw = async () => {
      if (!select.value) {
        main.querySelector("#chart").innerHTML = '<p class="muted">Nothing logged through MLflow in these runs.</p>';
        return;
      }
      await moor.metricChart(main.querySelector("#chart"), runs, select.value);
    };
    select.addEventListener("change", () => draw().catch((e) => moor.failed(main.querySelector("#chart"), e)));
    await draw();
    moor.ready();
  };

  // ---- Targets: settings, facts and checks, and what each agent says now.
  moor.pages.targets = async function (main) {
    const [targets, pools] = await Promise.all([moor.api("targets"), moor.api("pools")]);
    const rows = targets.map((t) => {
      const f = t.facts || {};
      const counts = {};
      for (const c of t.checks) counts[c.status] = (counts[c.status] || 0) + 1;
      const checks = Object.entries(counts).map(([s, n]) => '<span class="check-' + esc(s) + '">' + n + " " + esc(s) + "</span>").join(" ");
      return [
        "<b>" + esc(t.name) + "</b>",
        esc(t.kind),
        esc(t.user + "@" + t.host + ":" + t.port),
        esc(t.state),
        esc(t.agent_version),
        esc([f.os && f.os.pretty_name, f.arch].filter(Boolean).join(", ")),
        esc(f.cpus || ""),
        esc(moor.bytes(f.memory_total_bytes)),
        esc(f.nvidia ? "yes" : "no"),
        '<span class="status" data-target="' + esc(t.name) + '">…</span>',
        '<details><summary>' + checks + "</summary>" +
          table("", ["CHECK", "STATUS", "DETAIL", "REMEDY"], t.checks.map((c) => [esc(c.id), '<span class="check-' + esc(c.status) + '">' + esc(c.status) + "</span>", esc(c.detail), esc(c.remedy)])) +
          "</details>",
      ];
    });
    main.innerHTML =
      "<h1>Targets</h1>" +
      (targets.length
        ? table("targets-table", ["NAME", "KIND", "ENDPOINT", "STATE", "AGENT", "OS", "CPUS", "MEMORY", "GPU", "NOW", "CHECKS"], rows)
        : '<p class="muted">No targets: attach one with <code>moor attach vm NAME --host HOST --user USER</code>.</p>') +
      (pools.length ? "<h2>Pools</h2>" + table("pools-table", ["POOL", "TARGETS"], pools.map((p) => [esc(p.name), esc(p.targets.join(", "))])) : "");
    moor.ready();
    const status = await moor.api("status").catch(() => []);
    for (const row of status) {
      const cell = main.querySelector('.status[data-target="' + CSS.escape(row.target) + '"]');
      if (!cell) continue;
      cell.innerHTML = row.up
        ? '<span class="up">up</span> ' + esc(moor.duration(row.uptime_secs)) + ", load " + esc((row.load || []).map((l) => l.toFixed(2)).join(" ")) + ", " + esc(row.running) + " running"
        : '<span class="down">down</span> <span title="' + esc(row.fix || "") + '">' + esc(row.error || "") + "</span>";
    }
  };

  // ---- Environments: the workspace's specs, and what each target holds.
  moor.pages.envs = async function (main) {
    const envs = await moor.api("envs");
    const names = moor.envNames(envs);
    main.innerHTML =
      "<h1>Environments</h1>" +
      (envs.length
        ? table("envs-table", ["NAME", "VERSION", "KIND", "HASH", "FROM", "CREATED"], envs.map((e) => [esc(e.name), esc(e.version), esc(e.kind), "<code>" + esc(e.hash.slice(0, 12)) + "</code>", esc(e.sources.join(", ")), esc(e.created_at)]))
        : '<p class="muted">No environments: create one with <code>moor env create</code>.</p>') +
      '<h2>On the targets</h2><div id="built"><p class="muted">Asking the targets…</p></div>' +
      '<p class="muted">An environment is built on a target the first time a run uses it (or with <code>moor env prepare</code>).</p>';
    moor.ready();
    const built = await moor.api("envs/targets");
    const rows = [];
    for (const t of built) {
      if (t.error) rows.push([esc(t.target), "", "", '<span class="down">unreachable</span>', "", esc(t.error)]);
      for (const e of t.envs || []) {
        rows.push([
          esc(t.target),
          esc(names[e.hash] || e.hash.slice(0, 12)),
          esc(e.kind),
          '<span class="env-' + esc(e.state) + '">' + esc(e.state) + "</span>",
          esc(e.ready_at || ""),
          (e.build_run ? link("#/run/" + encodeURIComponent(e.build_run), "build log") + " " : "") + esc(e.error || ""),
        ]);
      }
    }
    main.querySelector("#built").innerHTML = rows.length
      ? table("built-table", ["TARGET", "ENVIRONMENT", "KIND", "STATE", "READY AT", "BUILD"], rows)
      : '<p class="muted">No environment is built on any target yet.</p>';
  };

  // ---- Endpoints: what each target serves, and whether it answers.
  moor.pages.endpoints = async function (main) {
    const draw = async () => {
      const listed = await moor.api("endpoints");
      const rows = listed.endpoints.map((e) => [
        "<b>" + esc(e.name) + "</b>",
        esc(e.target),
        '<span class="health health-' + esc(e.state) + '">' + esc(e.state) + "</span>",
        esc((e.socket ? e.address : e.address + ":" + e.port) + e.health_path),
        esc(e.restarts),
        esc(e.healthy_since || ""),
        esc(e.error || e.last_exit || ""),
        link("#/run/" + encodeURIComponent(e.run_id), e.run_id),
      ]);
      main.innerHTML =
        "<h1>Endpoints</h1>" +
        (rows.length
          ? table("endpoints-table", ["ENDPOINT", "TARGET", "HEALTH", "SERVES", "RESTARTS", "HEALTHY SINCE", "LAST ERROR", "RUN"], rows)
          : '<p class="muted">No endpoints: create one with <code>moor endpoint create</code>.</p>') +
        (listed.unreachable || []).map((u) => '<p class="error">' + esc(u.target + ": " + u.error) + "</p>").join("");
    };
    await draw();
    moor.ready();
    moor.every(5000, () => draw().catch(() => {}));
  };
})();

// moor ui: one run or job. Its state (each node's, for a job), command and
// environment; a Cancel button while it goes; what its code logged through
// MLflow (params, tags, a chart per metric, one line per node); its log,
// streamed as it grows (a job's: the node chosen).
"use strict";

(function () {
  const { esc, table, link } = moor;
  const LOG_TAIL = 256 * 1024; // the log's last bytes shown at first
  const LOG_KEEP = 2 * 1024 * 1024; // characters kept in the page

  const going = (state) => state === "queued" || state === "running";
  let streaming = null; // the log stream shown (one at a time)

  function info(row, envNames) {
    const fields = [
      ["State", moor.state(row.state) + (row.reachable ? "" : ' <span class="muted">(as last heard: target ' + (row.target_detached ? "detached" : "unreachable") + ")</span>")],
      ["Target", esc(row.target)],
      ["Command", '<code class="command">' + esc(row.command.join(" ")) + "</code>"],
      ["Exit", esc(row.exit_code !== null ? row.exit_code : row.signal !== null ? "signal " + row.signal : "")],
      ["Duration", esc(moor.duration(row.duration_secs))],
      ["Created", esc(row.created_at)],
      ["Started", esc(row.started_at || "")],
      ["Ended", esc(row.ended_at || "")],
    ];
    if (row.name) fields.splice(1, 0, ["Name", esc(row.name)]);
    if (row.experiment) fields.push(["Experiment", esc(row.experiment)]);
    const env = row.environment && (envNames[row.environment] || row.environment.slice(0, 12));
    fields.push(["Environment", env ? "<code>" + esc(env) + "</code>" : '<span class="muted">the host\'s own</span>']);
    if (row.env && row.env.length) fields.push(["Variables", esc(row.env.join(", "))]);
    if (row.spark) fields.push(["Spark", esc(JSON.stringify(row.spark)) + (row.yarn_application ? " " + esc(row.yarn_application) : "")]);
    if (row.error) fields.push(["Error", '<span class="error">' + esc(row.error) + "</span>"]);
    return '<dl class="fields">' + fields.map(([k, v]) => "<dt>" + k + "</dt><dd>" + v + "</dd>").join("") + "</dl>";
  }

  function nodes(row) {
    if (!row.nodes) return "";
    return (
      "<h2>Nodes</h2>" +
      table(
        "nodes-table",
        ["NODE", "TARGET", "RUN", "STATE", "EXIT", "ERROR"],
        row.nodes.map((n) => [
          esc(n.rank),
          esc(n.target),
          "<code>" + esc(n.run) + "</code>",
          moor.state(n.state || "unknown"),
          esc(n.exit_code !== null ? n.exit_code : n.signal !== null ? "s" + n.signal : ""),
          esc(n.error || ""),
        ])
      )
    );
  }

  // Params and tags (MLflow's own mlflow.* tags left out), node by node.
  function logged(summary) {
    const pairs = (map, skip) =>
      Object.entries(map || {})
        .filter(([k]) => !skip || !k.startsWith("mlflow."))
        .map(([k, v]) => "<code>" + esc(k) + "=" + esc(v) + "</code>")
        .join(" ");
    return summary.runs
      .map((r) => {
        const who = r.node !== undefined ? "<b>node " + r.node + "</b> " : "";
        const params = pairs(r.params);
        const tags = pairs(r.tags, true);
        if (!params && !tags && !Object.keys(r.metrics).length) return who + '<span class="muted">nothing logged through MLflow (yet)</span>';
        return who + (params ? "params " + params + " " : "") + (tags ? "tags " + tags : "") + (r.status ? ' <span class="muted">' + esc(r.status) + "</span>" : "");
      })
      .map((line) => "<p>" + line + "</p>")
      .join("");
  }

  function metricTable(summary) {
    const rows = [];
    for (const r of summary.runs) {
      for (const [key, m] of Object.entries(r.metrics)) {
        rows.push([
          esc(key) + (r.node !== undefined ? ' <span class="muted">node ' + r.node + "</span>" : ""),
          esc(moor.number(m.last)),
          esc(m.last_step),
          esc(moor.number(m.min)),
          esc(moor.number(m.max)),
          esc(m.count),
        ]);
      }
    }
    return rows.length ? table("metrics-table", ["METRIC", "LAST", "STEP", "MIN", "MAX", "POINTS"], rows) : "";
  }

  // A chart per metric: one line per node, from the summary's curves.
  async function charts(box, id, summary) {
    const keys = [...new Set(summary.runs.flatMap((r) => Object.keys(r.metrics)))].sort();
    const existing = new Map([...box.querySelectorAll(".chart-box")].map((c) => [c.dataset.key, c]));
    for (const key of keys) {
      let chart = existing.get(key);
      if (chart && chart.dataset.zoomed) continue; // being looked at closely: left alone
      if (!chart) {
        chart = document.createElement("div");
        chart.dataset.key = key;
        box.appendChild(chart);
      }
      const initial = summary.runs
        .filter((r) => r.metrics[key])
        .map((r) => ({ label: r.node !== undefined ? "node " + r.node : key, points: r.metrics[key].curve.buckets, count: r.metrics[key].count }));
      await moor.metricChart(chart, [id], key, initial);
    }
  }

  // The log of node `node`, streamed into `pre` until the run ends; a
  // broken stream is resumed where it stopped while the run goes.
  function follow(pre, id, node, state) {
    if (streaming) streaming.abort();
    const controller = (streaming = new AbortController());
    moor.cleanups.push(() => controller.abort());
    pre.textContent = "";
    let offset = null; // where the next byte is, once known
    const decoder = new TextDecoder();
    const append = (text) => {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent += text;
      if (pre.textContent.length > LOG_KEEP) pre.textContent = "…\n" + pre.textContent.slice(-LOG_KEEP);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      pre.dataset.bytes = String(offset);
    };
    const once = async () => {
      const where = offset === null ? "tail=" + LOG_TAIL : "offset=" + offset;
      const response = await fetch("/api/runs/" + encodeURIComponent(id) + "/log?node=" + node + "&" + where, {
        headers: { "X-Moor-Token": moor.token },
        signal: controller.signal,
        cache: "no-store",
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        throw new Error(body && body.error ? body.error.message + "; fix: " + body.error.fix : "HTTP " + response.status);
      }
      const start = Number(response.headers.get("X-Moor-Offset") || 0);
      let skipPartial = offset === null && start > 0;
      if (skipPartial) append("… (the log's first " + moor.bytes(start) + " are not shown: moor logs " + id + ")\n");
      offset = start;
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        offset += value.byteLength;
        let text = decoder.decode(value, { stream: true });
        if (skipPartial) {
          const newline = text.indexOf("\n");
          if (newline < 0) continue;
          text = text.slice(newline + 1);
          skipPartial = false;
        }
        append(text);
      }
    };
    (async () => {
      for (let tries = 0; tries < 100 && !controller.signal.aborted; tries++) {
        try {
          await once();
          if (!going(state())) break;
        } catch (e) {
          if (controller.signal.aborted) return;
          append("\n[moor ui] " + (e.message || e) + "\n");
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      pre.dataset.ended = "1";
    })();
  }

  moor.pages.run = async function (main, rest) {
    const id = rest[0];
    let row = await moor.api("runs/" + encodeURIComponent(id));
    const envNames = moor.envNames(await moor.api("envs").catch(() => []));
    main.innerHTML =
      "<h1>" + (row.nodes ? "Job " : "Run ") + esc(row.id) + ' <button id="cancel" class="danger" hidden>Cancel</button></h1>' +
      '<div id="info"></div><div id="nodes"></div>' +
      '<h2>Metrics <span class="muted small">drag across a chart to zoom; pick runs on the ' + link("#/runs", "runs page") + " to compare</span></h2>" +
      '<div id="logged"></div><div id="metric-table"></div><div id="charts" class="charts"></div>' +
      '<h2>Log <select id="node" hidden></select></h2><pre id="log" class="log"></pre>';
    const draw = () => {
      main.querySelector("#info").innerHTML = info(row, envNames);
      main.querySelector("#nodes").innerHTML = nodes(row);
      main.querySelector("#cancel").hidden = !going(row.state);
    };
    draw();
    const select = main.querySelector("#node");
    if (row.nodes) {
      select.innerHTML = row.nodes.map((n) => '<option value="' + n.rank + '">node ' + n.rank + " (" + esc(n.target) + ")</option>").join("");
      select.hidden = false;
    }
    const pre = main.querySelector("#log");
    const state = () => row.state;
    follow(pre, id, 0, state);
    select.addEventListener("change", () => follow(pre, id, Number(select.value), state));
    main.querySelector("#cancel").addEventListener("click", async () => {
      if (!confirm("Cancel " + id + "? Its processes get SIGTERM, then SIGKILL after 10 s.")) return;
      try {
        await moor.api("runs/" + encodeURIComponent(id) + "/cancel", "POST");
      } catch (e) {
        alert(e.message);
      }
    });
    const metrics = async () => {
      const summary = await moor.api("runs/" + encodeURIComponent(id) + "/metrics");
      main.querySelector("#logged").innerHTML = logged(summary);
      main.querySelector("#metric-table").innerHTML = metricTable(summary);
      await charts(main.querySelector("#charts"), id, summary);
    };
    await metrics().catch((e) => moor.failed(main.querySelector("#logged"), e));
    moor.ready();
    let ticks = 0;
    moor.every(2000, async () => {
      if (!going(row.state)) return;
      row = await moor.api("runs/" + encodeURIComponent(id)).catch(() => row);
      draw();
      // Charts every other tick while it goes, and once when it ends.
      if (++ticks % 2 === 0 || !going(row.state)) await metrics().catch(() => {});
    });
  };
})();

//! The browser half of `deploy/bench/ui.sh`: opens a running `moor ui` in
//! headless chromium (the tests' WebDriver client) and measures, in the
//! browser's own clock:
//! - the runs page, from navigation to its table drawn (N loads, median);
//! - how long a log line takes from the run's `print` to the page (the run
//!   prints `T=<epoch ms>` lines; a MutationObserver stamps their arrival;
//!   host and browser share this machine's clock);
//! - a run of many points: its page drawn, a zoom (drag) redrawn, and one
//!   chart redraw of the downsampled curve.
//!
//! `ui-bench URL BIG_RUN LIVE_RUN [LOADS]` prints one `RESULT key value` line
//! per figure.

use std::time::Duration;

use moor_tests::browser::Browser;
use serde_json::json;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, big, live, rest @ ..] = args.as_slice() else {
        eprintln!("usage: ui-bench URL BIG_RUN LIVE_RUN [LOADS]");
        std::process::exit(2);
    };
    let loads: usize = rest.first().and_then(|n| n.parse().ok()).unwrap_or(5);
    let browser = Browser::start();
    let wait = Duration::from_secs(60);

    // The runs page, loaded afresh each time.
    let mut page = Vec::new();
    let mut rows = 0;
    for _ in 0..loads {
        browser.goto("about:blank");
        browser.goto(url);
        browser.wait_for(
            "the runs page",
            "return document.body.dataset.ready === 'runs';",
            wait,
        );
        let ms = browser.execute(
            "return performance.getEntriesByName('ready-runs')[0].startTime;",
            &[],
        );
        page.push(ms.as_f64().unwrap());
        rows = browser
            .execute(
                "return document.querySelectorAll('#runs-table tbody tr').length;",
                &[],
            )
            .as_u64()
            .unwrap();
    }
    println!(
        "RESULT runs_page_ms {:.0} (median of {loads}; {rows} rows; min {:.0}, max {:.0})",
        median(page.clone()),
        page.iter().cloned().fold(f64::MAX, f64::min),
        page.iter().cloned().fold(0.0, f64::max)
    );

    // The live log: each `T=ms` line's arrival minus its print.
    browser.execute(
        "delete document.body.dataset.ready; location.hash = arguments[0];",
        &[json!(format!("#/run/{live}"))],
    );
    browser.wait_for(
        "the live run's page",
        "return document.body.dataset.ready === 'run';",
        wait,
    );
    browser.execute(
        "window.lags = [];
         window.seenLines = document.getElementById('log').textContent.split('\\n').filter(l => l.startsWith('T=')).length;
         new MutationObserver(() => {
           const now = Date.now();
           const text = document.getElementById('log').textContent;
           const seen = window.seenLines || 0;
           const lines = text.split('\\n').filter(l => l.startsWith('T='));
           for (const l of lines.slice(seen)) window.lags.push(now - Number(l.slice(2)));
           window.seenLines = lines.length;
         }).observe(document.getElementById('log'), {childList: true, characterData: true, subtree: true});",
        &[],
    );
    let lags = browser.wait_for(
        "40 log lines",
        "return window.lags.length >= 41 && window.lags.slice(1);",
        wait,
    );
    let lags: Vec<f64> = lags
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let max = lags.iter().cloned().fold(0.0, f64::max);
    println!(
        "RESULT log_line_ms {:.0} (median of {} lines; max {max:.0})",
        median(lags.clone()),
        lags.len()
    );

    // The run of many points: its page, a zoom, a redraw.
    browser.execute(
        "delete document.body.dataset.ready; location.hash = arguments[0];",
        &[json!(format!("#/run/{big}"))],
    );
    let t0 = browser
        .execute("return performance.now();", &[])
        .as_f64()
        .unwrap();
    browser.wait_for(
        "the big run's page",
        "return document.body.dataset.ready === 'run' && document.querySelector('.chart-box svg');",
        wait,
    );
    let t1 = browser
        .execute("return performance.now();", &[])
        .as_f64()
        .unwrap();
    let count = browser.execute(
        "return document.querySelector('.chart-box svg').dataset.count;",
        &[],
    );
    println!(
        "RESULT big_run_page_ms {:.0} ({} points logged, drawn downsampled)",
        t1 - t0,
        count.as_str().unwrap_or("?")
    );
    let zoom = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         const box = document.querySelector('.chart-box'); const svg = box.querySelector('svg');
         const r = svg.getBoundingClientRect(); const t = performance.now();
         const at = (type, f) => svg.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 1, clientX: r.left + r.width * f, clientY: r.top + r.height / 2}));
         at('pointerdown', 0.4); at('pointermove', 0.45); at('pointerup', 0.45);
         const check = () => box.dataset.zoomed ? done([performance.now() - t, box.querySelector('svg').dataset.count]) : setTimeout(check, 5);
         check();",
        &[],
    );
    println!(
        "RESULT zoom_ms {:.0} ({} points in the zoomed steps)",
        zoom[0].as_f64().unwrap(),
        zoom[1].as_str().unwrap_or("?")
    );
    let redraw = browser.execute(
        "const box = document.createElement('div'); document.body.appendChild(box);
         const points = [...Array(512).keys()].map(i => [i * 200, Math.sin(i / 30)]);
         const t = performance.now();
         for (let i = 0; i < 20; i++) moor.drawChart(box, [{label: 'a', points, count: 100000}], null);
         const ms = (performance.now() - t) / 20; box.remove(); return ms;",
        &[],
    );
    println!(
        "RESULT redraw_ms {:.1} (one chart of 512 points, mean of 20)",
        redraw.as_f64().unwrap()
    );
}

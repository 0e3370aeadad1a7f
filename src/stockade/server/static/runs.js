// The dashboard's run page: pipeline runs, per-step progress, test results.
// Vanilla JS like app.js; every value reaches the DOM through textContent
// (test output and job reasons are hostile input). It uses the token the
// dashboard put in this tab's sessionStorage, sent only as a header.
"use strict";

const RUN_TOKEN_KEY = "stockade.token";
const RUN_DONE = new Set(["succeeded", "failed", "cancelled"]);
const RUNS_POLL_MS = 1000;

const byId = (id) => document.getElementById(id);
let runTimer = null;

function node(tag, text, className) {
  const item = document.createElement(tag);
  if (text !== undefined && text !== null) {
    item.textContent = String(text);
  }
  if (className) {
    item.className = className;
  }
  return item;
}

function empty(item) {
  while (item.firstChild) {
    item.removeChild(item.firstChild);
  }
}

function badge(state) {
  const safe = /^[a-z]+$/.test(state) ? state : "unknown";
  return node("span", state, "state " + safe);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) {
      td.appendChild(cell);
    } else {
      td.textContent = cell === null || cell === undefined ? "—" : String(cell);
    }
    tr.appendChild(td);
  }
  return tr;
}

function stamp(epoch) {
  return epoch === null || epoch === undefined ? "—" : new Date(epoch * 1000).toLocaleString();
}

function took(run) {
  if (run.started_at === null) {
    return "—";
  }
  const end = run.finished_at === null ? Date.now() / 1000 : run.finished_at;
  return (end - run.started_at).toFixed(1) + " s";
}

function counts(map) {
  const parts = Object.keys(map || {}).sort().map((key) => map[key] + " " + key);
  return parts.length ? parts.join(", ") : "—";
}

function jobTotals(steps) {
  let done = 0;
  let all = 0;
  for (const name of Object.keys(steps)) {
    all += steps[name].jobs || 0;
    done += (steps[name].counts || {}).succeeded || 0;
  }
  return done + "/" + all;
}

async function call(path, options) {
  const headers = { Authorization: "Bearer " + (sessionStorage.getItem(RUN_TOKEN_KEY) || "") };
  const resp = await fetch(path, Object.assign({}, options || {}, { headers, cache: "no-store" }));
  const body = await resp.json().catch(() => ({}));
  if (resp.status === 401) {
    show("signed-out");
    throw new Error("unauthorized");
  }
  if (!resp.ok) {
    throw new Error(typeof body.error === "string" ? body.error : "HTTP " + resp.status);
  }
  return body;
}

function show(id) {
  for (const section of ["signed-out", "runs-view", "run-view"]) {
    byId(section).hidden = section !== id;
  }
  byId("logout").hidden = id === "signed-out";
}

function progressBar(step) {
  const total = step.jobs || 0;
  const finished = ["succeeded", "failed", "cancelled", "skipped"]
    .map((key) => (step.counts || {})[key] || 0)
    .reduce((a, b) => a + b, 0);
  const bar = node("progress");
  bar.max = Math.max(total, 1);
  bar.value = total ? finished : 0;
  bar.title = finished + " of " + total + " done";
  return bar;
}

async function listRuns() {
  const body = await call("/api/v1/runs?limit=50");
  const tbody = byId("runs").querySelector("tbody");
  empty(tbody);
  for (const run of body.runs) {
    const link = node("a", run.id);
    link.href = "#/runs/" + encodeURIComponent(run.id);
    tbody.appendChild(row([link, run.pipeline, badge(run.state), jobTotals(run.steps),
      counts(run.tests), stamp(run.started_at), took(run), run.reason]));
  }
  byId("runs-empty").hidden = body.runs.length > 0;
}

function renderRun(run) {
  byId("run-id").textContent = run.id;
  const state = byId("run-state");
  empty(state);
  state.appendChild(badge(run.state));
  byId("run-cancel").disabled = RUN_DONE.has(run.state);
  const fields = byId("run-fields");
  empty(fields);
  const facts = [["pipeline", run.pipeline], ["reason", run.reason], ["started", stamp(run.started_at)],
    ["duration", took(run)], ["rerun of", run.source_run], ["options", JSON.stringify(run.options)]];
  for (const [key, value] of facts) {
    fields.appendChild(node("dt", key));
    fields.appendChild(node("dd", value === null || value === undefined ? "—" : value));
  }
  const steps = byId("run-steps").querySelector("tbody");
  empty(steps);
  for (const name of Object.keys(run.steps)) {
    const step = run.steps[name];
    const tr = row([name, badge(step.status), progressBar(step), counts(step.counts), step.reason]);
    tr.dataset.step = name;
    steps.appendChild(tr);
  }
  byId("run-tests").textContent = Object.keys(run.tests).length ? counts(run.tests) : "No tests.";
  const failed = byId("run-failed-tests");
  empty(failed);
  for (const test of run.failed_tests) {
    const box = node("div", null, "failed-test");
    box.appendChild(node("h3", "FAIL " + test.package + " " + test.test));
    box.appendChild(node("pre", test.output, "log"));
    failed.appendChild(box);
  }
  const jobs = byId("run-jobs").querySelector("tbody");
  empty(jobs);
  for (const job of run.jobs) {
    const link = node("a", job.job);
    link.href = "/#/jobs/" + encodeURIComponent(job.id);
    jobs.appendChild(row([link, badge(job.status), job.attempts,
      job.duration === null ? "—" : job.duration.toFixed(1) + " s", job.exit_code, job.reason]));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
const BAR_COLOURS = { succeeded: "#2e7d32", failed: "#c62828", running: "#1565c0",
  cancelled: "#757575", skipped: "#bdbdbd" };

function svgNode(tag, attrs, text) {
  const item = document.createElementNS(SVG_NS, tag);
  for (const key of Object.keys(attrs)) {
    item.setAttribute(key, String(attrs[key]));
  }
  if (text !== undefined) {
    item.textContent = String(text);
  }
  return item;
}

// The run's timeline as an SVG drawn here: a row per lane, a bar per job
// coloured by status, the critical path outlined and joined by a line.
function renderTimeline(timeline) {
  const box = byId("run-timeline");
  empty(box);
  byId("run-timeline-note").textContent = timeline.bars.length
    ? timeline.lanes + " lane(s), " + timeline.lanes_from + "; outlined: the critical path"
    : "No job has started.";
  if (!timeline.bars.length) {
    return;
  }
  const left = 40;
  const width = Math.max(box.clientWidth || 800, 320);
  const row = 22;
  const height = timeline.lanes * row + 24;
  const scale = (width - left - 10) / Math.max(timeline.span, 0.001);
  const svg = svgNode("svg", { width, height, viewBox: "0 0 " + width + " " + height,
    role: "img", "aria-label": "run timeline" });
  for (let lane = 0; lane < timeline.lanes; lane += 1) {
    svg.appendChild(svgNode("text", { x: 4, y: lane * row + 15, class: "lane" }, "#" + lane));
  }
  const centres = [];
  for (const bar of timeline.bars) {
    const x = left + bar.start * scale;
    const w = Math.max((bar.end - bar.start) * scale, 2);
    const rect = svgNode("rect", { x, y: bar.lane * row + 3, width: w, height: row - 6, rx: 3,
      fill: BAR_COLOURS[bar.status] || "#9e9e9e", class: "bar" + (bar.critical ? " critical" : ""),
      "data-job": bar.job, "data-status": bar.status });
    rect.appendChild(svgNode("title", {}, bar.job + " " + bar.status + " " +
      (bar.end - bar.start).toFixed(1) + " s"));
    svg.appendChild(rect);
    if (w > bar.job.length * 7 + 8) {
      svg.appendChild(svgNode("text", { x: x + 4, y: bar.lane * row + 15, class: "bar-label" },
        bar.job));
    }
    if (bar.critical) {
      centres.push([x, x + w, bar.lane * row + row / 2]);
    }
  }
  if (centres.length > 1) {
    const points = centres.map(([a, b, y]) => a + "," + y + " " + b + "," + y).join(" ");
    svg.appendChild(svgNode("polyline", { points, class: "critical-path", fill: "none" }));
  }
  const axis = timeline.lanes * row + 18;
  svg.appendChild(svgNode("text", { x: left, y: axis, class: "axis" }, "0 s"));
  svg.appendChild(svgNode("text", { x: width - 10, y: axis, class: "axis", "text-anchor": "end" },
    timeline.span.toFixed(timeline.span < 1 ? 2 : 1) + " s"));
  box.appendChild(svg);
}

async function showRun(id) {
  const path = "/api/v1/runs/" + encodeURIComponent(id);
  const run = await call(path);
  renderRun(run);
  renderTimeline(await call(path + "/timeline"));
  return run;
}

function stopPolling() {
  if (runTimer !== null) {
    clearTimeout(runTimer);
    runTimer = null;
  }
}

function poll(step) {
  stopPolling();
  const tick = async () => {
    let again = true;
    try {
      again = await step();
    } catch (err) {
      byId("runs-error").textContent = err.message;
    }
    if (again !== false) {
      runTimer = setTimeout(tick, RUNS_POLL_MS);
    }
  };
  tick();
}

async function cancelRun() {
  const id = byId("run-id").textContent;
  try {
    const body = await call("/api/v1/runs/" + encodeURIComponent(id) + "/cancel", { method: "POST" });
    byId("run-action").textContent = body.result;
  } catch (err) {
    byId("run-action").textContent = err.message;
  }
}

function routeRuns() {
  if (!sessionStorage.getItem(RUN_TOKEN_KEY)) {
    stopPolling();
    show("signed-out");
    return;
  }
  const match = /^#\/runs\/([^/]+)$/.exec(location.hash);
  if (match) {
    show("run-view");
    byId("run-action").textContent = "";
    const id = decodeURIComponent(match[1]);
    poll(async () => !RUN_DONE.has((await showRun(id)).state));
  } else {
    show("runs-view");
    poll(async () => {
      await listRuns();
      return true;
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  byId("run-cancel").addEventListener("click", cancelRun);
  startNav(() => {
    sessionStorage.removeItem(RUN_TOKEN_KEY);
    location.href = "/";
  });
  window.addEventListener("hashchange", routeRuns);
  routeRuns();
});

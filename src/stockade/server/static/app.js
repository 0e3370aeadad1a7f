// The stockade dashboard: vanilla JS, no build step, no third-party code.
// Every piece of data goes into the DOM through textContent (never innerHTML):
// job input, output and logs are hostile input. The API token lives in this
// tab's sessionStorage and is sent only as an Authorization header, never in a URL.
"use strict";

const TOKEN_KEY = "stockade.token";
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const LIST_POLL_MS = 1500;
const JOB_POLL_MS = 1000;
const PAGE = 50;

const $ = (id) => document.getElementById(id);
let view = null; // {stop: () => void} of the current view

class Unauthorized extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, {
    Authorization: "Bearer " + token(),
  });
  const resp = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  if (resp.status === 401) {
    throw new Unauthorized();
  }
  return resp;
}

async function apiJSON(path, options) {
  const resp = await api(path, options);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw new Error(typeof body.error === "string" ? body.error : "HTTP " + resp.status);
  }
  return body;
}

function onError(err) {
  if (err instanceof Unauthorized) {
    logout("The token was refused; sign in again.");
    return true;
  }
  return false;
}

// -- DOM helpers (text only) ------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  if (className) {
    node.className = className;
  }
  return node;
}

function clear(node) {
  while (node.firstChild) {
    node.removeChild(node.firstChild);
  }
}

function stateBadge(state) {
  const safe = /^[a-z]+$/.test(state) ? state : "unknown";
  return el("span", state, "state " + safe);
}

function when(epoch) {
  if (epoch === null || epoch === undefined) {
    return "—";
  }
  return new Date(epoch * 1000).toLocaleString();
}

function seconds(start, end) {
  if (start === null || start === undefined) {
    return "—";
  }
  const stop = end === null || end === undefined ? Date.now() / 1000 : end;
  return (stop - start).toFixed(1) + " s";
}

function json(value) {
  return value === null || value === undefined ? "—" : JSON.stringify(value, null, 2);
}

// -- login --------------------------------------------------------------------

function showOnly(id) {
  for (const section of ["login", "jobs-view", "job-view", "workers-view"]) {
    $(section).hidden = section !== id;
  }
  $("logout").hidden = id === "login";
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopView();
  showOnly("login");
  $("login-error").textContent = message || "";
  $("token").focus();
}

async function login(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  $("login-error").textContent = "";
  const resp = await fetch("/api/v1/jobs?limit=1", {
    headers: { Authorization: "Bearer " + value },
    cache: "no-store",
  }).catch(() => null);
  if (resp === null) {
    $("login-error").textContent = "The server does not answer.";
    return;
  }
  if (resp.status === 401) {
    $("login-error").textContent = "Token refused.";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  route();
}

// -- jobs list ------------------------------------------------------------------

function jobsView() {
  showOnly("jobs-view");
  let timer = null;
  let stopped = false;
  let limit = PAGE;

  async function refresh() {
    if (stopped) {
      return;
    }
    const params = new URLSearchParams({ limit: String(limit) });
    const state = $("filter-state").value;
    const task = $("filter-task").value.trim();
    const search = $("filter-q").value.trim();
    if (state) {
      params.append("state", state);
    }
    if (task) {
      params.set("task", task);
    }
    if (search) {
      params.set("q", search);
    }
    try {
      const [body, ends] = await Promise.all([
        apiJSON("/api/v1/jobs?" + params.toString()),
        apiJSON("/api/v1/stats/ends?minutes=60"),
      ]);
      if (!stopped) {
        renderEnds(ends);
        renderJobs(body.jobs || []);
        $("jobs-more").hidden = !body.next;
        $("jobs-updated").textContent = "updated " + new Date().toLocaleTimeString();
      }
    } catch (err) {
      if (onError(err)) {
        return;
      }
      $("jobs-updated").textContent = "update failed: " + err.message;
    }
    if (!stopped) {
      timer = setTimeout(refresh, LIST_POLL_MS);
    }
  }

  function again() {
    clearTimeout(timer);
    refresh();
  }

  $("filter-state").onchange = again;
  $("filter-task").oninput = again;
  $("filter-q").oninput = again;
  $("filters").onsubmit = (event) => {
    event.preventDefault();
    again();
  };
  $("jobs-more").onclick = () => {
    limit = Math.min(limit + PAGE, 500);
    again();
  };
  refresh();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

const SVG = "http://www.w3.org/2000/svg";
const END_STATES = ["succeeded", "failed", "cancelled"];

// The last hour's ends as stacked bars, one per minute (inline SVG: no library, no CDN).
function renderEnds(ends) {
  const holder = $("ends-svg");
  clear(holder);
  const minutes = ends.minutes;
  const totals = Array.from({ length: minutes }, (_, i) =>
    END_STATES.reduce((sum, state) => sum + ((ends.series[state] || [])[i] || 0), 0));
  const top = Math.max(1, ...totals);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${minutes * 10} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "jobs ended per minute, last hour");
  for (let i = 0; i < minutes; i++) {
    let y = 100;
    for (const state of END_STATES) {
      const count = (ends.series[state] || [])[i] || 0;
      if (!count) {
        continue;
      }
      const height = (count / top) * 96;
      y -= height;
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", String(i * 10 + 1));
      bar.setAttribute("y", String(y));
      bar.setAttribute("width", "8");
      bar.setAttribute("height", String(height));
      bar.setAttribute("class", "bar " + state);
      const title = document.createElementNS(SVG, "title");
      const at = new Date((ends.start + i * 60) * 1000).toLocaleTimeString();
      title.textContent = `${at}: ${count} ${state}`;
      bar.appendChild(title);
      svg.appendChild(bar);
    }
  }
  holder.appendChild(svg);
  $("ends-chart").hidden = false;
}

function renderJobs(jobs) {
  const body = document.querySelector("#jobs tbody");
  clear(body);
  for (const job of jobs) {
    const row = el("tr");
    row.dataset.jobId = job.id;
    const link = el("a", job.id);
    link.href = "#/jobs/" + encodeURIComponent(job.id);
    const idCell = el("td");
    idCell.appendChild(link);
    row.appendChild(idCell);
    row.appendChild(el("td", job.task));
    const stateCell = el("td");
    stateCell.appendChild(stateBadge(job.state));
    row.appendChild(stateCell);
    row.appendChild(el("td", job.attempts + " / " + job.max_attempts));
    row.appendChild(el("td", when(job.created_at)));
    row.appendChild(el("td", seconds(job.started_at, job.finished_at)));
    row.appendChild(el("td", job.outcome ?? "—"));
    body.appendChild(row);
  }
  $("jobs-empty").hidden = jobs.length > 0;
}

// -- one job ----------------------------------------------------------------------

function jobView(jobId) {
  showOnly("job-view");
  const controller = new AbortController();
  let timer = null;
  let stopped = false;
  const base = "/api/v1/jobs/" + encodeURIComponent(jobId);

  $("job-id").textContent = jobId;
  clear($("job-state"));
  clear($("job-fields"));
  clear($("job-log"));
  delete $("job-log").dataset.attempt;
  delete $("job-log").dataset.last;
  $("job-action").textContent = "";
  $("job-log-status").textContent = "";

  async function refresh() {
    if (stopped) {
      return;
    }
    let done = false;
    try {
      const [job, events] = await Promise.all([
        apiJSON(base),
        apiJSON(base + "/events").catch(() => ({ events: [] })),
      ]);
      if (stopped) {
        return;
      }
      renderJob(job, events.events || []);
      done = TERMINAL.has(job.state);
    } catch (err) {
      if (onError(err)) {
        return;
      }
      $("job-action").textContent = err.message;
    }
    if (!stopped) {
      timer = setTimeout(refresh, done ? JOB_POLL_MS * 5 : JOB_POLL_MS);
    }
  }

  async function act(what) {
    $("job-action").textContent = what + "…";
    try {
      const body = await apiJSON(base + "/" + what, { method: "POST" });
      $("job-action").textContent = what + ": " + body.result;
      if (what === "retry") {
        followLog(jobId, controller.signal);
      }
    } catch (err) {
      if (!onError(err)) {
        $("job-action").textContent = what + " failed: " + err.message;
      }
    }
    clearTimeout(timer);
    refresh();
  }

  $("job-cancel").onclick = () => act("cancel");
  $("job-retry").onclick = () => act("retry");
  refresh();
  followLog(jobId, controller.signal);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      controller.abort();
    },
  };
}

function field(list, name, value) {
  list.appendChild(el("dt", name));
  list.appendChild(el("dd", value ?? "—"));
}

function renderJob(job, events) {
  const state = $("job-state");
  clear(state);
  state.appendChild(stateBadge(job.state));
  $("job-cancel").disabled = TERMINAL.has(job.state);
  $("job-retry").disabled = !TERMINAL.has(job.state);

  const fields = $("job-fields");
  clear(fields);
  field(fields, "task", job.task);
  field(fields, "state", job.state);
  field(fields, "priority", job.priority);
  field(fields, "attempts", job.attempts + " / " + job.max_attempts);
  field(fields, "created", when(job.created_at));
  field(fields, "started", when(job.started_at));
  field(fields, "finished", when(job.finished_at));
  field(fields, "duration", seconds(job.started_at, job.finished_at));
  field(fields, "outcome", job.outcome);
  field(fields, "exit code", job.exit_code);
  field(fields, "signal", job.signal);
  field(fields, "reason", job.reason);
  field(fields, "error", job.error);
  // A finished job no longer holds a worker: name the one of its last attempt.
  const last = (job.attempts_detail || []).at(-1);
  field(fields, "worker", job.worker_id ?? (last ? last.worker_id : null));
  field(fields, "cancel requested", job.cancel_requested ? "yes" : "no");

  renderProgress(job, events);
  $("job-outputs").textContent = json(job.outputs);
  $("job-input").textContent = json(job.input);
  renderArtifacts(job);
  renderNotifications(job);

  const attempts = document.querySelector("#job-attempts tbody");
  clear(attempts);
  for (const a of job.attempts_detail || []) {
    const row = el("tr");
    for (const value of [
      a.attempt, a.worker_id ?? "—", when(a.started_at), when(a.finished_at),
      a.duration === null || a.duration === undefined ? "—" : a.duration.toFixed(2) + " s",
      a.outcome ?? "—", a.exit_code ?? "—", a.reason ?? "—", a.error ?? "—", used(a.usage),
    ]) {
      row.appendChild(el("td", value));
    }
    attempts.appendChild(row);
  }

  const table = document.querySelector("#job-events tbody");
  clear(table);
  for (const e of events) {
    const row = el("tr", null, e.kind === "annotation" ? "annotation" : "");
    row.appendChild(el("td", when(e.time)));
    row.appendChild(el("td", e.kind));
    row.appendChild(el("td", e.attempt ?? "—"));
    row.appendChild(el("td", e.data === null || e.data === undefined ? "" : JSON.stringify(e.data)));
    table.appendChild(row);
  }
}

// The files the latest attempt that kept any kept: each a link that downloads
// it with the token in a header (a plain href could not carry it).
function renderArtifacts(job) {
  const list = $("job-artifacts");
  clear(list);
  const kept = (job.attempts_detail || []).filter((a) => (a.artifacts || []).length).pop();
  if (!kept) {
    list.appendChild(el("li", "none"));
    return;
  }
  for (const item of kept.artifacts) {
    const link = el("a", item.name);
    const url = "/api/v1/jobs/" + encodeURIComponent(job.id) + "/artifacts/" +
      item.name.split("/").map(encodeURIComponent).join("/");
    link.href = url;
    link.onclick = async (event) => {
      event.preventDefault();
      const resp = await api(url);
      const blob = URL.createObjectURL(await resp.blob());
      const save = el("a");
      save.href = blob;
      save.download = item.name.split("/").pop();
      save.click();
      setTimeout(() => URL.revokeObjectURL(blob), 1000);
    };
    const row = el("li");
    row.appendChild(link);
    row.appendChild(el("span", " " + item.size + " bytes, sha256 " + item.sha256.slice(0, 12), "muted"));
    list.appendChild(row);
  }
}

// Each job-end notification: where it goes, how it stands, its last try's error.
function renderNotifications(job) {
  const list = $("job-notifications");
  clear(list);
  const notes = job.notifications || [];
  if (!notes.length) {
    list.appendChild(el("li", "none"));
    return;
  }
  for (const note of notes) {
    const to = Array.isArray(note.to) ? note.to.join(" ") : String(note.to ?? "");
    const tries = note.tries + (note.tries === 1 ? " try" : " tries");
    const row = el("li", note.kind + " " + to + ": " + note.state + " after " + tries);
    const last = (note.history || []).slice(-1)[0];
    if (last && last.error) {
      row.appendChild(el("span", " (" + last.error + ")", "muted"));
    }
    list.appendChild(row);
  }
}

// The latest ::progress of the running attempt (the worker records it about once a second).
function renderProgress(job, events) {
  let latest = null;
  if (job.state === "running") {
    for (const e of events) {
      if (e.kind === "progress" && e.attempt === job.attempts && e.data) {
        latest = e.data;
      }
    }
  }
  $("job-progress").hidden = latest === null;
  if (latest === null) {
    return;
  }
  const value = Math.min(Math.max(Number(latest.value) || 0, 0), 100);
  $("job-progress-bar").value = value;
  const message = typeof latest.message === "string" ? latest.message : "";
  $("job-progress-text").textContent = Math.round(value) + "%" + (message ? " " + message : "");
}

// -- live log: SSE read with fetch() so the token stays in a header ------------------

const following = new WeakMap(); // AbortSignal -> true while a follower runs

async function followLog(jobId, signal) {
  if (following.get(signal)) {
    return;
  }
  following.set(signal, true);
  const log = $("job-log");
  const status = $("job-log-status");
  const path = "/api/v1/jobs/" + encodeURIComponent(jobId) + "/logs/stream";
  let last = Number(log.dataset.last || 0);
  log.dataset.last = String(last);
  try {
    while (!signal.aborted) {
      let ended = false;
      try {
        status.textContent = "following…";
        const resp = await api(path, {
          headers: { Accept: "text/event-stream", "Last-Event-ID": String(last) },
          signal,
        });
        if (!resp.ok) {
          throw new Error("HTTP " + resp.status);
        }
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (signal.aborted) {
            return;
          }
          if (done) {
            break;
          }
          buffer += value.replace(/\r\n?/g, "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const event = parseEvent(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (event === null) {
              continue;
            }
            if (event.event === "log") {
              const data = JSON.parse(event.data);
              const attempt = String(data.attempt);
              if (log.dataset.attempt && log.dataset.attempt !== attempt) {
                log.appendChild(el("span", "— attempt " + attempt + " —\n", "marker"));
              }
              log.dataset.attempt = attempt;
              log.appendChild(el("span", data.text, data.stream === "stderr" ? "stderr" : ""));
              log.scrollTop = log.scrollHeight;
              if (event.id !== undefined) {
                last = Number(event.id) || last;
                log.dataset.last = String(last);
              }
            } else if (event.event === "end") {
              const data = JSON.parse(event.data);
              status.textContent = "finished: " + data.state + (data.outcome ? " (" + data.outcome + ")" : "");
              ended = true;
            } else if (event.event === "shutdown") {
              status.textContent = "server shutting down; reconnecting…";
            }
          }
        }
      } catch (err) {
        if (signal.aborted) {
          return;
        }
        if (onError(err)) {
          return;
        }
        status.textContent = "log stream interrupted (" + err.message + "); reconnecting…";
      }
      if (ended) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    following.delete(signal);
  }
}

function parseEvent(block) {
  const event = {};
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) {
      continue;
    }
    const colon = line.indexOf(":");
    const key = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    event[key] = key === "data" && event.data !== undefined ? event.data + "\n" + value : value;
  }
  return event.event || event.data !== undefined ? event : null;
}

// -- workers ---------------------------------------------------------------------

function workersView() {
  showOnly("workers-view");
  let timer = null;
  let stopped = false;

  async function refresh() {
    if (stopped) {
      return;
    }
    try {
      const body = await apiJSON("/api/v1/workers");
      if (!stopped) {
        renderWorkers(body.workers || []);
        $("workers-updated").textContent = "updated " + new Date().toLocaleTimeString();
      }
    } catch (err) {
      if (onError(err)) {
        return;
      }
      $("workers-updated").textContent = "update failed: " + err.message;
    }
    if (!stopped) {
      timer = setTimeout(refresh, LIST_POLL_MS);
    }
  }

  refresh();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function renderWorkers(workers) {
  const body = document.querySelector("#workers tbody");
  clear(body);
  const list = (items) => (items === null || items === undefined ? "any" : items.join(", ") || "—");
  for (const w of workers) {
    const row = el("tr");
    row.dataset.worker = w.name;
    row.appendChild(el("td", w.name));
    row.appendChild(el("td", w.host));
    row.appendChild(el("td", list(w.queues)));
    const labels = Object.entries(w.labels || {}).map(([k, v]) => k + "=" + v);
    row.appendChild(el("td", labels.join(", ") || "—"));
    row.appendChild(el("td", list(w.sandboxes)));
    row.appendChild(el("td", w.slots.busy + " / " + w.slots.total));
    const running = el("td");
    for (const id of w.running || []) {
      const link = el("a", id);
      link.href = "#/jobs/" + encodeURIComponent(id);
      running.appendChild(link);
      running.appendChild(document.createTextNode(" "));
    }
    if (!(w.running || []).length) {
      running.textContent = "—";
    }
    row.appendChild(running);
    row.appendChild(el("td", w.heartbeat_age.toFixed(0) + " s ago"));
    row.appendChild(el("td", w.version ?? "—"));
    body.appendChild(row);
  }
  $("workers-empty").hidden = workers.length > 0;
}

// -- routing -------------------------------------------------------------------------

function stopView() {
  if (view) {
    view.stop();
    view = null;
  }
}

function route() {
  stopView();
  if (!token()) {
    showOnly("login");
    $("token").focus();
    return;
  }
  const match = /^#\/jobs\/([^/]+)$/.exec(location.hash);
  if (location.hash === "#/workers") {
    view = workersView();
  } else {
    view = match ? jobView(decodeURIComponent(match[1])) : jobsView();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  startNav(() => logout(""));
  window.addEventListener("hashchange", route);
  route();
});

// What an attempt used, in one line: only the figures the host measured.
function used(u) {
  if (!u) return "—";
  const size = (n) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  };
  const parts = [];
  if (u.cpu_user != null && u.cpu_system != null) {
    parts.push("cpu " + u.cpu_user.toFixed(2) + " s user " + u.cpu_system.toFixed(2) + " s sys");
  }
  if (u.memory_peak != null) parts.push("memory peak " + size(u.memory_peak));
  if (u.max_rss != null) parts.push("max rss " + size(u.max_rss));
  if (u.pids_peak != null) parts.push(u.pids_peak + " processes at most");
  if (u.read_bytes) parts.push("read " + size(u.read_bytes));
  if (u.write_bytes) parts.push("written " + size(u.write_bytes));
  return parts.join(", ") || "—";
}

// The header every dashboard page shares: the links, the health badge (GET
// /health, public) and the log-out button. Loaded before the page's own script.
"use strict";

const NAV_HEALTH_POLL_MS = 5000;

async function pollHealth() {
  const badge = document.getElementById("health");
  try {
    const resp = await fetch("/health", { cache: "no-store" });
    const body = await resp.json();
    const status = ["ok", "degraded", "down"].includes(body.status) ? body.status : "unknown";
    const checks = body.checks || {};
    const queue = checks.queue || {};
    const workers = checks.workers || {};
    badge.className = "health " + status;
    badge.textContent = "health: " + status;
    badge.title =
      "queue " + (queue.length ?? "?") + ", oldest " + (queue.oldest_age ?? "?") + " s, " +
      "workers alive " + (workers.alive ?? "?");
  } catch (err) {
    badge.className = "health unreachable";
    badge.textContent = "health: unreachable";
  }
}

// Start the badge's polling; the log-out button calls onLogout.
function startNav(onLogout) {
  document.getElementById("logout").addEventListener("click", onLogout);
  pollHealth();
  setInterval(pollHealth, NAV_HEALTH_POLL_MS);
}

// The Status panel: GET /api/status, polled.

import { api } from "./api.js";
import { $, bytes, duration, el, setText } from "./dom.js";

function healthBadge(health) {
  if (!health) return "";
  const kind = { ok: "ok", restarting: "warn", failed: "warn" }[health.state] || "info";
  const restarts = health.restarts ? ` · ${health.restarts} restarts` : "";
  return el("span", { className: `badge ${kind}`, title: health.reason || "" }, `${health.state}${restarts}`);
}

export async function refreshStatus() {
  const status = await api("/api/status");
  const triton = status.triton;
  setText("#st-triton", triton.ready ? "ready" : "not ready");
  $("#st-triton").className = triton.ready ? "ok" : "bad";
  const restarts = triton.restarts === null ? "" : `, ${triton.restarts} restarts`;
  setText("#st-triton-detail", `${triton.mode}${restarts}`);
  setText("#st-uptime", duration(status.uptime_seconds));
  setText("#st-version", `version ${status.version}`);
  setText("#st-inflight", status.in_flight);
  setText("#st-requests", `${status.requests} inference requests since start`);
  const traffic = status.traffic;
  setText("#st-rate", traffic.requests_per_second.toFixed(2));
  setText("#st-window", `${traffic.requests} requests in the last ${traffic.window_seconds} s`);
  setText("#st-latency", traffic.mean_latency_ms === null ? "–" : `${traffic.mean_latency_ms} ms`);
  setText("#st-errors", `${traffic.server_errors} server errors`);
  const used = status.models.reduce((sum, m) => sum + (m.memory_bytes || 0), 0);
  setText("#st-memory", bytes(used));
  setText(
    "#st-budget",
    status.memory_budget_bytes ? `of ${bytes(status.memory_budget_bytes)} budget` : "no budget set",
  );
  const jobs = status.jobs;
  setText("#st-jobs", jobs ? jobs.queued : "off");
  setText("#st-jobs-detail", jobs ? `${jobs.running} running · ${jobs.workers} workers here` : "jobs.enabled: false");
  const gpu = status.gpu;
  setText("#st-gpu", gpu.available ? bytes(gpu.memory_used_bytes) : "none");
  setText("#st-gpu-detail", gpu.available ? `of ${bytes(gpu.memory_total_bytes)}` : "CPU only");
  const cache = status.cache;
  if (!cache.enabled) {
    setText("#st-cache", "off");
    setText("#st-cache-detail", "cache.enabled: false");
  } else {
    setText("#st-cache", cache.hit_rate === null ? "–" : `${(cache.hit_rate * 100).toFixed(1)} %`);
    const size = cache.bytes === null ? "" : `, ${bytes(cache.bytes)}`;
    const where = cache.available ? `${cache.backend}${size}` : `${cache.backend} unreachable`;
    setText("#st-cache-detail", `${cache.hits} hits, ${cache.misses} misses · ${where}`);
  }
  const rows = status.models.map((m) =>
    el(
      "tr",
      { dataset: { model: m.id } },
      el("td", {}, m.id, m.pinned ? el("span", { className: "badge pinned" }, "pinned") : null),
      el("td", {}, bytes(m.memory_bytes)),
      el("td", {}, m.in_flight),
      el("td", {}, m.requests),
      el("td", {}, duration(m.idle_seconds)),
      el("td", {}, m.expires_in_seconds === null ? "never" : duration(m.expires_in_seconds)),
      el("td", {}, healthBadge(m.health)),
    ),
  );
  // Models the service gave up restarting are not loaded: list them with the reason.
  const failed = Object.entries(status.model_health || {}).filter(([, h]) => h.state === "failed");
  $("#st-failed").replaceChildren(
    ...failed.map(([id, h]) =>
      el("li", { dataset: { model: id } }, `${id} failed: ${h.reason} (Models tab: Load retries it)`),
    ),
  );
  $("#st-models tbody").replaceChildren(...rows);
  $("#st-none").hidden = rows.length > 0;
  setText("#status-error", "");
  return status;
}

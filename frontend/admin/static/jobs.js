// The Jobs panel: this key's jobs (GET /api/jobs), their progress, cancel, and a result view.

import { api } from "./api.js";
import { openCrawl } from "./crawls.js";
import { $, busy, el, setText } from "./dom.js";

const ACTIVE = new Set(["queued", "running"]);
const CRAWLS = new Set(["/api/crawl/site", "/api/crawl/batch"]);

function progress(job) {
  const p = job.progress;
  if (!p || !p.total) return "–";
  return `${p.done} / ${p.total}`;
}

function seconds(ms) {
  return ms === null || ms === undefined ? "–" : `${(ms / 1000).toFixed(2)} s`;
}

async function showJob(id) {
  const job = await api(`/api/jobs/${encodeURIComponent(id)}`);
  setText("#job-detail-title", `Job ${job.id} · ${job.endpoint} · ${job.status}`);
  const shown = job.status === "failed" ? { error: job.error } : job.result;
  const text = JSON.stringify(shown, null, 2) || "(no result yet)";
  // Embeddings are long: show the start of a large result, it is all in the API.
  setText("#job-detail", text.length > 20000 ? `${text.slice(0, 20000)}\n…` : text);
  $("#job-detail-card").hidden = false;
}

function row(job) {
  const actions = el("td", {});
  const view = el("button", { type: "button", className: "quiet" }, "Result");
  view.addEventListener("click", () => busy(view, $("#jobs-error"), () => showJob(job.id)));
  actions.append(view);
  if (CRAWLS.has(job.endpoint)) {
    const pages = el("button", { type: "button", className: "quiet" }, "Pages");
    pages.addEventListener("click", () => busy(pages, $("#jobs-error"), () => openCrawl(job.id)));
    actions.append(pages);
  }
  if (ACTIVE.has(job.status)) {
    const cancel = el("button", { type: "button", className: "quiet danger" }, "Cancel");
    cancel.addEventListener("click", () =>
      busy(cancel, $("#jobs-error"), async () => {
        await api(`/api/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" });
        await refreshJobs();
      }),
    );
    actions.append(cancel);
  }
  return el(
    "tr",
    { dataset: { job: job.id, status: job.status } },
    el("td", { title: job.id }, job.id.slice(0, 8)),
    el("td", {}, job.endpoint),
    el("td", {}, el("span", { className: `badge job-${job.status}` }, job.status)),
    el("td", {}, progress(job)),
    el("td", {}, new Date(job.created_at * 1000).toLocaleTimeString()),
    el("td", {}, seconds(job.timings.run_ms)),
    actions,
  );
}

export async function refreshJobs() {
  const filter = $("#jobs-filter").value;
  const query = filter ? `?status=${encodeURIComponent(filter)}` : "";
  const listing = await api(`/api/jobs${query}`);
  $("#jobs-table tbody").replaceChildren(...listing.jobs.map(row));
  $("#jobs-none").hidden = listing.jobs.length > 0;
  setText("#jobs-total", `${listing.total} jobs`);
  setText("#jobs-error", "");
}

export function setUpJobs() {
  $("#jobs-filter").addEventListener("change", () => refreshJobs().catch(() => {}));
  $("#jobs-refresh").addEventListener("click", () => refreshJobs().catch(() => {}));
}

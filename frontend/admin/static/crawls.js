// The Crawls panel: start a site crawl as a job (POST /api/jobs, endpoint /api/crawl/site),
// follow its progress and its pages (GET /api/jobs/{id}/items) and open a page's text.

import { api } from "./api.js";
import { $, busy, el, setText } from "./dom.js";

const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 1000;
const SHOWN_CHARS = 50000;
let current = null; // {id, items: [], status, timer}

function lines(text) {
  const found = text.split("\n").map((line) => line.trim()).filter(Boolean);
  return found.length ? found : null;
}

function pageStatus(item) {
  if (item.error) return `${item.status_code ?? ""} ${item.error.code}`.trim();
  return String(item.status_code ?? "");
}

function openPage(item, number) {
  setText("#sitecrawl-page-title", `#${number} · ${item.url}`);
  const body = item.error
    ? item.error.message
    : item.markdown || item.text || "(no text)";
  setText("#sitecrawl-page", body.length > SHOWN_CHARS ? `${body.slice(0, SHOWN_CHARS)}\n…` : body);
  $("#sitecrawl-page-card").hidden = false;
}

function row(item, number) {
  const open = el("button", { type: "button", className: "quiet" }, "Open");
  open.addEventListener("click", () => openPage(item, number));
  return el(
    "tr",
    { dataset: { url: item.url, failed: item.error ? "true" : "false" } },
    el("td", {}, String(number)),
    el("td", { title: item.url }, item.url),
    el("td", { className: item.error ? "bad" : "ok" }, pageStatus(item)),
    el("td", {}, item.title ?? "–"),
    el("td", {}, String(item.depth ?? "–")),
    el("td", {}, open),
  );
}

function showProgress(job) {
  const p = job.progress || {};
  const parts = [job.status, `${p.done ?? 0} loaded`, `${p.failed ?? 0} failed`];
  if (ACTIVE.has(job.status)) parts.push(`${p.queued ?? 0} waiting`);
  if (job.result) parts.push(`stopped: ${job.result.stop_reason}`);
  if (job.error) parts.push(job.error.message);
  setText("#sitecrawl-progress", parts.join(" · "));
  $("#sitecrawl-card").dataset.status = job.status;
  $("#sitecrawl-cancel").hidden = !ACTIVE.has(job.status);
}

async function poll() {
  const crawl = current;
  if (!crawl) return;
  clearTimeout(crawl.timer);
  try {
    const id = encodeURIComponent(crawl.id);
    const job = await api(`/api/jobs/${id}`);
    let next = `/api/jobs/${id}/items?offset=${crawl.items.length}`;
    while (next && crawl === current) {
      const page = await api(next);
      const body = $("#sitecrawl-pages tbody");
      for (const item of page.items) {
        crawl.items.push(item);
        body.append(row(item, crawl.items.length));
      }
      next = page.items.length ? page.next : null;
    }
    if (crawl !== current) return;
    showProgress(job);
    crawl.status = job.status;
    setText("#sitecrawl-error", "");
  } catch (error) {
    setText("#sitecrawl-error", error.message);
  }
  if (crawl === current && ACTIVE.has(crawl.status)) crawl.timer = setTimeout(poll, POLL_MS);
}

function follow(job) {
  if (current) clearTimeout(current.timer);
  current = { id: job.id, items: [], status: job.status, timer: null };
  setText("#sitecrawl-title", `Crawl ${job.id.slice(0, 8)}`);
  $("#sitecrawl-pages tbody").replaceChildren();
  $("#sitecrawl-page-card").hidden = true;
  $("#sitecrawl-card").hidden = false;
  showProgress(job);
  poll();
}

/** Shows a crawl job (from the Jobs tab's Pages button) in this panel. */
export async function openCrawl(id) {
  $("#tab-crawls").click();
  follow(await api(`/api/jobs/${encodeURIComponent(id)}`));
}

export function setUpCrawls() {
  const form = $("#sitecrawl-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    busy(button, $("#sitecrawl-error"), async () => {
      const body = {
        url: $("#sitecrawl-url").value.trim(),
        max_pages: Number($("#sitecrawl-max-pages").value),
        max_depth: Number($("#sitecrawl-depth").value),
        include_paths: lines($("#sitecrawl-include").value),
        exclude_paths: lines($("#sitecrawl-exclude").value),
        page: { markdown: true },
      };
      const job = await api("/api/jobs", { method: "POST", json: { endpoint: "/api/crawl/site", body } });
      setText("#sitecrawl-message", `Started job ${job.id}`);
      follow(job);
    });
  });
  $("#sitecrawl-cancel").addEventListener("click", () => {
    if (!current) return;
    busy($("#sitecrawl-cancel"), $("#sitecrawl-error"), async () => {
      await api(`/api/jobs/${encodeURIComponent(current.id)}`, { method: "DELETE" });
      await poll();
    });
  });
}

// The Models panel: every model by task, its state, and the actions on it.

import { api } from "./api.js";
import { $, busy, bytes, duration, el, setText } from "./dom.js";

const TASKS = [
  ["embedding", "Embedding"],
  ["caption", "Caption"],
  ["ocr", "OCR"],
  ["rerank", "Rerank"],
  ["image_embedding", "Image embedding"],
  [null, "Other cached models"],
];
const POLL_MS = 250;
const downloads = new Map(); // HF id -> the latest state of its download job
let models = [];
let onChange = () => {};

export function modelsChanged(handler) {
  onChange = handler;
}

export function configuredModels(task) {
  return models.filter((m) => m.task === task && m.config_id !== null && m.enabled);
}

export async function refreshModels() {
  models = (await api("/api/models")).models;
  for (const m of models) {
    if (m.download && !downloads.has(m.id)) track(m.download);
  }
  // Re-rendering would throw away a keep-alive being typed: wait for the next refresh.
  const editing = document.activeElement?.closest?.("#models-list input");
  if (!editing) render();
  setText("#models-error", "");
  onChange();
  return models;
}

function render() {
  const sections = [];
  for (const [task, title] of TASKS) {
    const items = models.filter((m) => m.task === task);
    if (!items.length) continue;
    sections.push(
      el(
        "section",
        { className: "task", dataset: { task: task ?? "other" } },
        el("h3", {}, `${title} (${items.length})`),
        el("div", { className: "model-grid" }, items.map(card)),
      ),
    );
  }
  $("#models-list").replaceChildren(...sections);
}

function badge(text, kind) {
  return el("span", { className: `badge ${kind}` }, text);
}

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function keepAlive(m) {
  if (m.pinned) return "pinned: never unloaded";
  if (m.keep_alive_seconds === null) return "never unloaded";
  return duration(m.keep_alive_seconds);
}

function card(m) {
  const key = m.config_id ?? m.id;
  const usable = m.configured && m.enabled; // a disabled entry is listed but not served
  const message = el("p", { className: "error", role: "alert" });
  const job = downloads.get(m.id);
  const state = el(
    "div",
    { className: "badges" },
    badge(m.downloaded ? "downloaded" : "not downloaded", m.downloaded ? "ok" : "off"),
    usable ? badge(m.loaded ? "loaded" : "not loaded", m.loaded ? "ok" : "off") : null,
    m.configured && !m.enabled ? badge("disabled", "warn") : null,
    m.pinned ? badge("pinned", "pinned") : null,
    m.default ? badge("default", "info") : null,
    m.builtin ? badge("built in", "info") : null,
    m.large ? badge("large", "warn") : null,
  );
  const actions = el("div", { className: "actions" });
  const action = (name, label, work) => {
    const button = el("button", { type: "button", dataset: { action: name } }, label);
    button.addEventListener("click", () =>
      busy(button, message, async () => {
        await work();
        await refreshModels();
      }),
    );
    actions.append(button);
  };
  if (!m.downloaded && !m.builtin && !job) action("download", "Download", () => download(m.id));
  if (usable && !m.loaded) action("load", "Load", () => post(`${modelPath(key)}/load`));
  if (usable && m.loaded) action("unload", "Unload", () => post(`${modelPath(key)}/unload`));
  if (usable) {
    action("pin", m.pinned ? "Unpin" : "Pin", () => patch(key, { pinned: !m.pinned }));
  }
  if (m.downloaded && !m.builtin) {
    action("delete", "Delete", async () => {
      const users = m.config_id ? ` (used by ${m.config_id})` : "";
      const question = `Delete ${m.id}${users} from the model cache? It is unloaded first.`;
      if (window.confirm(question)) await api(modelPath(m.id), { method: "DELETE" });
    });
  }
  return el(
    "article",
    { className: "card model", dataset: { model: key, hfId: m.id } },
    el(
      "header",
      {},
      el("strong", { className: "model-name" }, m.config_id ?? m.name ?? m.id),
      el("span", { className: "hf-id" }, m.id),
    ),
    state,
    el(
      "dl",
      { className: "facts" },
      fact("On disk", m.downloaded ? bytes(m.size_on_disk_bytes) : m.size_mb ? `~${m.size_mb} MB` : "–"),
      usable ? fact("Memory", m.loaded ? bytes(m.memory_bytes) : "–") : [],
      usable ? fact("Keep-alive", keepAlive(m)) : [],
      m.loaded ? fact("Unloads in", m.expires_in_seconds === null ? "–" : duration(m.expires_in_seconds)) : [],
    ),
    progress(job),
    actions,
    usable ? keepAliveForm(m, key, message) : null,
    message,
  );
}

function progress(job) {
  const bar = el("progress", { className: "download", max: 1 });
  const text = el("span", { className: "progress-text" });
  const box = el("div", { className: "progress", hidden: !job }, bar, text);
  if (job) showProgress(box, job);
  return box;
}

function showProgress(box, job) {
  const bar = box.querySelector("progress");
  if (job.bytes_total) {
    bar.max = job.bytes_total;
    bar.value = job.bytes_done;
    const percent = Math.floor((100 * job.bytes_done) / job.bytes_total);
    setText(box.querySelector(".progress-text"), `${percent}% of ${bytes(job.bytes_total)}`);
  } else {
    bar.removeAttribute("value"); // indeterminate until the file list is read
    setText(box.querySelector(".progress-text"), job.state);
  }
  box.hidden = false;
}

function keepAliveForm(m, key, message) {
  const input = el("input", {
    type: "number",
    min: -1,
    step: "any",
    placeholder: "seconds",
    ariaLabel: `Keep-alive of ${key} in seconds`,
    value: m.keep_alive_seconds === null ? "" : String(m.keep_alive_seconds),
  });
  const save = el("button", { type: "submit" }, "Save");
  const form = el(
    "form",
    { className: "keep-alive row", title: "Idle seconds before unloading; -1 never; empty: as configured" },
    el("label", {}, "Keep-alive (s)", input),
    save,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim() === "" ? null : Number(input.value);
    busy(save, message, async () => {
      await patch(key, { keep_alive_seconds: value });
      input.blur();
      await refreshModels();
    });
  });
  return form;
}

/** /api/models/ORG/NAME with each part escaped (the API takes HF ids with their slash). */
function modelPath(ref) {
  return `/api/models/${ref.split("/").map(encodeURIComponent).join("/")}`;
}

function post(path) {
  return api(path, { method: "POST" });
}

function patch(key, body) {
  return api(modelPath(key), { method: "PATCH", json: body });
}

export async function download(hfId) {
  const job = await api("/api/models/download", { method: "POST", json: { model_id: hfId } });
  track(job);
  return job;
}

function track(job) {
  downloads.set(job.model_id, job);
  setTimeout(() => pollDownload(job), 0);
}

async function pollDownload(job) {
  let latest = job;
  try {
    latest = await api(`/api/downloads/${job.id}`);
  } catch (error) {
    latest = { ...job, state: "failed", error: error.message };
  }
  downloads.set(latest.model_id, latest);
  for (const box of document.querySelectorAll(`#models-list article.model`)) {
    if (box.dataset.hfId === latest.model_id) showProgress(box.querySelector(".progress"), latest);
  }
  if (latest.state === "done" || latest.state === "failed") {
    downloads.delete(latest.model_id);
    setText(
      "#add-message",
      latest.state === "done" ? `${latest.model_id} downloaded` : `Download failed: ${latest.error}`,
    );
    await refreshModels().catch(() => {});
    return;
  }
  setTimeout(() => pollDownload(latest), POLL_MS);
}

export function setUpAddForm() {
  const form = $("#add-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const hfModel = $("#add-model").value.trim();
    const task = $("#add-task").value;
    const button = form.querySelector("button[type=submit]");
    busy(button, $("#add-message"), async () => {
      let info = null;
      if (task) info = await api("/api/models", { method: "POST", json: { task, hf_model: hfModel } });
      if (!info || (!info.downloaded && !info.builtin)) await download(hfModel);
      setText("#add-message", info ? `Added as ${info.config_id}` : `Downloading ${hfModel}…`);
      await refreshModels();
    });
  });
  $("#models-refresh").addEventListener("click", () => refreshModels().catch(showError));
}

function showError(error) {
  setText("#models-error", error.message);
}

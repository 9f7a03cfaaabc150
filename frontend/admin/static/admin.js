// The admin page: tabs, the API key prompt, and the live refresh of status and models.

import { forgetKey, onUnauthorized, storedKey, storeKey } from "./api.js";
import { setUpAskImage } from "./askimage.js";
import { refreshCharts, resizeCharts } from "./charts.js";
import { setUpCrawls } from "./crawls.js";
import { $, setText } from "./dom.js";
import { refreshJobs, setUpJobs } from "./jobs.js";
import { configuredModels, modelsChanged, refreshModels, setUpAddForm } from "./models.js";
import { refreshStatus } from "./status.js";
import { fillModelSelects, setUpTryIt } from "./tryit.js";

const STATUS_EVERY_MS = 2000;
const MODELS_EVERY_MS = 5000;
const JOBS_EVERY_MS = 2000;
let waitingForKey = false;

function showTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.panel === name;
    tab.setAttribute("aria-selected", String(selected));
    $(`#panel-${tab.dataset.panel}`).hidden = !selected;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function askForKey(error) {
  waitingForKey = true;
  setText("#auth-message", error.message);
  $("#auth").hidden = false;
  $("#forget-key").hidden = !storedKey();
  setText("#connection", "locked");
  if (document.activeElement !== $("#auth-key")) $("#auth-key").focus();
}

function setUpAuth() {
  onUnauthorized(askForKey);
  $("#auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#auth-key");
    storeKey(input.value.trim());
    input.value = "";
    waitingForKey = false;
    $("#auth").hidden = true;
    $("#forget-key").hidden = false;
    refreshAll();
  });
  $("#forget-key").addEventListener("click", () => {
    forgetKey();
    $("#forget-key").hidden = true;
    refreshAll();
  });
  $("#forget-key").hidden = !storedKey();
}

async function refreshAll() {
  await Promise.all([pollStatus(), pollModels(), pollJobs(), pollCharts()]);
}

function connection(error) {
  if (waitingForKey) return;
  if (error) setText("#connection", `offline: ${error.message}`);
  else setText("#connection", `live · ${new Date().toLocaleTimeString()}`);
  $("#connection").classList.toggle("bad", Boolean(error));
}

// Each poll schedules the next only once it has answered, so slow answers never pile up.
const timers = {};

async function pollStatus() {
  clearTimeout(timers.status);
  if (!waitingForKey && !document.hidden) {
    try {
      await refreshStatus();
      connection(null);
    } catch (error) {
      if (error.status !== 401) setText("#status-error", error.message);
      connection(error);
    }
  }
  clearTimeout(timers.status); // a refresh may have run meanwhile: keep one chain
  timers.status = setTimeout(pollStatus, STATUS_EVERY_MS);
}

// The charts' history gains a point every interval_seconds (10): poll at that pace.
let chartsEveryMs = 10000;

async function pollCharts() {
  clearTimeout(timers.charts);
  if (!waitingForKey && !document.hidden && !$("#panel-status").hidden) {
    try {
      const history = await refreshCharts();
      chartsEveryMs = Math.min(Math.max(history.interval_seconds * 1000, 1000), 10000);
      setText("#charts-error", "");
    } catch (error) {
      if (error.status !== 401) setText("#charts-error", error.message);
    }
  }
  clearTimeout(timers.charts);
  timers.charts = setTimeout(pollCharts, chartsEveryMs);
}

async function pollModels() {
  clearTimeout(timers.models);
  if (!waitingForKey && !document.hidden) {
    try {
      await refreshModels();
    } catch (error) {
      if (error.status !== 401) setText("#models-error", error.message);
    }
  }
  clearTimeout(timers.models); // a refresh may have run meanwhile: keep one chain
  timers.models = setTimeout(pollModels, MODELS_EVERY_MS);
}

async function pollJobs() {
  clearTimeout(timers.jobs);
  // Only while the Jobs tab is open: the list is per key and may be long.
  if (!waitingForKey && !document.hidden && !$("#panel-jobs").hidden) {
    try {
      await refreshJobs();
    } catch (error) {
      if (error.status !== 401) setText("#jobs-error", error.message);
    }
  }
  clearTimeout(timers.jobs);
  timers.jobs = setTimeout(pollJobs, JOBS_EVERY_MS);
}

function start() {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => {
      showTab(tab.dataset.panel);
      if (tab.dataset.panel === "jobs") pollJobs();
      if (tab.dataset.panel === "status") pollCharts();
    });
  }
  const wanted = location.hash.slice(1);
  showTab(["status", "models", "jobs", "crawls", "try"].includes(wanted) ? wanted : "status");
  setUpAuth();
  setUpAddForm();
  setUpTryIt();
  setUpAskImage();
  setUpJobs();
  setUpCrawls();
  modelsChanged(() => fillModelSelects(configuredModels));
  window.addEventListener("resize", resizeCharts);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshAll();
  });
  refreshAll();
}

start();

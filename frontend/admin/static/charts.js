// The Status tab's charts of the last hour: GET /api/status/history drawn with uPlot
// (vendor/uPlot.iife.min.js, loaded by index.html as the global `uPlot`).

import { api } from "./api.js";
import { $, bytes, setText } from "./dom.js";

const COLORS = ["#2f5bd3", "#b42318", "#1e7b3a", "#a15c00", "#7a3fb8", "#0f7c8c", "#c2185b", "#5c6677"];
const HEIGHT = 180;
const charts = {}; // name -> {plot, key}: a chart is rebuilt only when its series change

function color(index) {
  return COLORS[index % COLORS.length];
}

function line(label, index, extra = {}) {
  return { label, stroke: color(index), width: 1.5, points: { show: false }, ...extra };
}

const LOG = { distr: 3, log: 10 };

// ticks and grid lines of a log axis at 1, 10, 100 ... only
function decades(u, splits) {
  return splits.map((v) => (Math.abs(Math.log10(v) % 1) < 1e-9 ? v : null));
}

function millis(value) {
  if (value === null || value === undefined) return "";
  if (value >= 1000) return `${+(value / 1000).toPrecision(3)} s`;
  return `${+value.toPrecision(3)} ms`;
}

const bytesAxis = { values: (u, splits) => splits.map((v) => bytes(v)), size: 70 };

// name: [series labels and styles, columns] from the history answer
const SPECS = {
  rate: (h) => [
    [line("requests/s", 0), line("5xx/s", 1), line("4xx/s", 3)],
    [h.requests_per_second, h.server_errors_per_second, h.client_errors_per_second],
    {},
  ],
  latency: (h) => {
    const series = [];
    const columns = [];
    Object.entries(h.latency_ms).forEach(([family, values], i) => {
      // an interval without requests of a family is a gap; dots keep lone intervals visible
      const dots = { show: true, size: 4 };
      series.push(
        line(`${family} p50`, i, { points: dots }),
        line(`${family} p95`, i, { points: dots, dash: [6, 4] }),
      );
      columns.push(values.p50, values.p95);
    });
    // log scale: a model's first request (its load, seconds) and 5 ms answers on one chart
    return [series, columns, { values: (u, splits) => splits.map(millis), filter: decades, size: 64 }, LOG];
  },
  memory: (h) => {
    const models = Object.entries(h.model_memory_bytes);
    return [models.map(([id], i) => line(id, i)), models.map(([, values]) => values), bytesAxis];
  },
  gpu: (h) => [[line("GPU memory used", 4)], h.gpu_memory_used_bytes ? [h.gpu_memory_used_bytes] : [], bytesAxis],
};

function draw(name, history) {
  const holder = $(`#chart-${name}`);
  const [series, columns, yAxis, yScale] = SPECS[name](history);
  const data = [history.t, ...columns];
  const width = Math.max(holder.clientWidth, 200);
  const key = series.map((s) => s.label).join("|");
  const current = charts[name];
  if (current && current.key === key) {
    current.plot.setData(data);
    if (current.plot.width !== width) current.plot.setSize({ width, height: HEIGHT });
    return;
  }
  if (current) current.plot.destroy();
  const options = {
    width,
    height: HEIGHT,
    series: [{}, ...series],
    axes: [{}, { ...yAxis }],
    scales: { y: yScale || { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  charts[name] = { plot: new window.uPlot(options, data, holder), key };
}

/** Redraw every chart from the history; the GPU chart only where there is a GPU. */
export async function refreshCharts() {
  const history = await api("/api/status/history");
  const points = history.t.length;
  setText(
    "#charts-note",
    points
      ? `last ${Math.round((points * history.interval_seconds) / 60)} min, a point every ${history.interval_seconds} s`
      : `collecting: the first point comes after ${history.interval_seconds} s`,
  );
  $("#chart-gpu-card").hidden = history.gpu_memory_used_bytes === null;
  for (const name of Object.keys(SPECS)) {
    if (name === "gpu" && history.gpu_memory_used_bytes === null) continue;
    draw(name, history);
  }
  return history;
}

/** Fit every chart to its card again (the window was resized). */
export function resizeCharts() {
  for (const [name, { plot }] of Object.entries(charts)) {
    const width = Math.max($(`#chart-${name}`).clientWidth, 200);
    if (plot.width !== width) plot.setSize({ width, height: HEIGHT });
  }
}

// The Try it panel: embed two texts, rerank documents, caption and read an image, read a
// document (documents.js), crawl a page.

import { api } from "./api.js";
import { $, busy, el, setText } from "./dom.js";
import { setUpDocuments } from "./documents.js";
import { cosine, setUpImageSearch } from "./imagesearch.js";
import { setUpRerank } from "./rerank.js";

function withModel(body, selector) {
  const model = $(selector).value;
  return model ? { ...body, model } : body;
}

function setUpEmbed() {
  const form = $("#embed-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setText("#embed-result", "");
    busy(form.querySelector("button[type=submit]"), $("#embed-error"), async () => {
      const texts = [$("#embed-a").value, $("#embed-b").value];
      const result = await api("/api/embed", { method: "POST", json: withModel({ texts }, "#embed-model") });
      const [a, b] = result.embeddings;
      const similarity = cosine(a, b);
      $("#embed-result").replaceChildren(
        "Cosine similarity ",
        el("strong", { id: "embed-similarity" }, similarity.toFixed(4)),
        ` · ${result.model_used} · ${result.dimensions} dimensions`,
      );
    });
  });
}

let shownImage = null; // the decoded image on the canvas, for redrawing with OCR boxes

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("the browser cannot show this image"));
    };
    image.src = url;
  });
}

function draw(lines = []) {
  const canvas = $("#image-canvas");
  if (!shownImage) return;
  canvas.width = shownImage.naturalWidth;
  canvas.height = shownImage.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(shownImage, 0, 0);
  context.lineWidth = Math.max(2, Math.round(canvas.width / 300));
  context.strokeStyle = "#e8590c";
  context.fillStyle = "rgba(232, 89, 12, 0.12)";
  for (const line of lines) {
    context.beginPath();
    line.box.forEach(([x, y], index) => (index ? context.lineTo(x, y) : context.moveTo(x, y)));
    context.closePath();
    context.fill();
    context.stroke();
  }
  canvas.hidden = false;
  canvas.dataset.boxes = String(lines.length);
}

function setUpImage() {
  const form = $("#image-form");
  const input = $("#image-file");
  input.addEventListener("change", async () => {
    const file = input.files[0];
    for (const id of ["#caption-result", "#ocr-result", "#caption-error", "#ocr-error"]) setText(id, "");
    if (!file) return;
    try {
      if (shownImage) URL.revokeObjectURL(shownImage.src);
      shownImage = await loadImage(file);
      draw();
    } catch (error) {
      shownImage = null;
      $("#image-canvas").hidden = true;
      setText("#ocr-error", error.message);
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    const upload = (selector) => {
      const data = new FormData();
      data.append("image", file, file.name);
      if ($(selector).value) data.append("model", $(selector).value);
      return data;
    };
    busy(form.querySelector("button[type=submit]"), null, async () => {
      setText("#caption-result", "…");
      setText("#ocr-result", "…");
      const caption = api("/api/caption", { method: "POST", form: upload("#caption-model") })
        .then((r) => setText("#caption-result", r.caption))
        .catch((error) => {
          setText("#caption-result", "");
          setText("#caption-error", error.message);
        });
      const ocr = api("/api/ocr", { method: "POST", form: upload("#ocr-model") })
        .then((r) => {
          setText("#ocr-result", r.text || "(no text found)");
          draw(r.lines);
        })
        .catch((error) => {
          setText("#ocr-result", "");
          setText("#ocr-error", error.message);
        });
      for (const id of ["#caption-error", "#ocr-error"]) setText(id, "");
      await Promise.all([caption, ocr]);
    });
  });
}

function setUpCrawl() {
  const form = $("#crawl-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const image = $("#crawl-image");
    busy(form.querySelector("button[type=submit]"), $("#crawl-error"), async () => {
      const body = { url: $("#crawl-url").value.trim(), screenshot: $("#crawl-screenshot").checked };
      $("#crawl-facts").hidden = true;
      $("#crawl-text").hidden = true;
      image.hidden = true;
      const page = await api("/api/crawl", { method: "POST", json: body });
      setText("#crawl-title", page.title || "(no title)");
      setText("#crawl-final-url", page.url);
      setText("#crawl-status", `${page.status_code} · ${Math.round(page.fetch_time_ms)} ms`);
      setText("#crawl-text", page.text);
      $("#crawl-facts").hidden = false;
      $("#crawl-text").hidden = false;
      if (page.screenshot_base64) {
        image.src = `data:image/png;base64,${page.screenshot_base64}`;
        image.hidden = false;
      }
    });
  });
}

export function setUpTryIt() {
  setUpEmbed();
  setUpRerank();
  setUpImageSearch();
  setUpImage();
  setUpDocuments();
  setUpCrawl();
}

/** Fill the model pickers with the configured models of each task. */
export function fillModelSelects(modelsOf) {
  for (const select of document.querySelectorAll("select.model-select")) {
    const chosen = select.value;
    const first = select.options[0];
    const options = modelsOf(select.dataset.task).map((m) =>
      el("option", { value: m.config_id }, m.default ? `${m.config_id} (default)` : m.config_id),
    );
    select.replaceChildren(first, ...options);
    select.value = options.some((o) => o.value === chosen) ? chosen : "";
  }
}

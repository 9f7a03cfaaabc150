// The Try it panel's document reader: a PDF, multi-page TIFF or image through POST /api/ocr,
// each page drawn with its line boxes, and its text.

import { api } from "./api.js";
import { $, busy, el, setText } from "./dom.js";

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the browser cannot show this page"));
    image.src = src;
  });
}

/** A canvas with the page and its boxes (orange: OCR, blue: the PDF's own text layer). */
async function pageCanvas(src, page) {
  const canvas = el("canvas", { className: "page-canvas", dataset: { page: String(page.page) } });
  const image = await loadImage(src);
  canvas.width = page.width || image.naturalWidth;
  canvas.height = page.height || image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  const colour = page.source === "text-layer" ? "25, 113, 194" : "232, 89, 12";
  context.lineWidth = Math.max(2, Math.round(canvas.width / 400));
  context.strokeStyle = `rgb(${colour})`;
  context.fillStyle = `rgba(${colour}, 0.12)`;
  for (const line of page.lines) {
    context.beginPath();
    line.box.forEach(([x, y], index) => (index ? context.lineTo(x, y) : context.moveTo(x, y)));
    context.closePath();
    context.fill();
    context.stroke();
  }
  canvas.dataset.boxes = String(page.lines.length);
  return canvas;
}

async function showPages(pages, imageOf) {
  const out = $("#document-pages-out");
  out.replaceChildren();
  for (const page of pages) {
    const source = page.source === "text-layer" ? "text layer" : "OCR";
    const figure = el(
      "figure",
      { className: "page" },
      el("figcaption", {}, `Page ${page.page} · ${source} · ${page.lines.length} line${page.lines.length === 1 ? "" : "s"}`),
    );
    out.append(figure);
    try {
      figure.append(await pageCanvas(imageOf(page), page));
    } catch (error) {
      figure.append(el("p", { className: "error" }, error.message));
    }
    figure.append(el("pre", { className: "result text-box" }, page.text || "(no text found)"));
  }
}

export function setUpDocuments() {
  const form = $("#document-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("#document-file").files[0];
    if (!file) return;
    busy(form.querySelector("button[type=submit]"), $("#document-error"), async () => {
      setText("#document-summary", "…");
      $("#document-pages-out").replaceChildren();
      const data = new FormData();
      data.append("image", file, file.name);
      data.append("page_images", "true");
      for (const [name, selector] of [["pages", "#document-pages"], ["dpi", "#document-dpi"], ["model", "#document-model"]]) {
        const value = $(selector).value.trim();
        if (value) data.append(name, value);
      }
      if ($("#document-force").checked) data.append("force_ocr", "true");
      try {
        const result = await api("/api/ocr", { method: "POST", form: data });
        const ms = Math.round(result.processing_time_ms);
        if (result.pages) {
          setText("#document-summary", `${result.pages.length} of ${result.page_count} pages · ${result.model_used} · ${ms} ms`);
          await showPages(result.pages, (page) => page.image);
        } else {
          // a plain image: one page, drawn from the file itself
          setText("#document-summary", `1 image · ${result.model_used} · ${ms} ms`);
          const url = URL.createObjectURL(file);
          try {
            await showPages([{ page: 1, source: "ocr", text: result.text, lines: result.lines }], () => url);
          } finally {
            URL.revokeObjectURL(url);
          }
        }
      } catch (error) {
        setText("#document-summary", "");
        throw error;
      }
    });
  });
}
